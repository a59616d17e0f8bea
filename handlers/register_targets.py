"""Register the replacement in the application's target groups."""

from handlers.core.failover import register_targets
from handlers.core.record_store import RecordStore
from handlers.core.steps import TakeoverInput
from handlers.shell import lambda_step


@lambda_step(TakeoverInput)
def handler(request: TakeoverInput, store: RecordStore) -> object:
    return register_targets(request, store)
