"""Launch the replacement from the recorded launch spec in an alternate AZ."""

from handlers.core.failover import launch_replacement
from handlers.core.record_store import RecordStore
from handlers.core.steps import StepInput
from handlers.shell import lambda_step


@lambda_step(StepInput)
def handler(request: StepInput, store: RecordStore) -> object:
    return launch_replacement(request, store)
