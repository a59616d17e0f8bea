"""Register the replacement in the application's target groups."""

from handlers.core.failover import register_targets
from handlers.core.record_store import RecordStore
from handlers.core.steps import RegisterInput
from handlers.shell import lambda_step


@lambda_step(RegisterInput)
def handler(request: RegisterInput, store: RecordStore) -> object:
    return register_targets(request, store)
