"""Fence, second half: terminate the isolated old instance and report its state."""

from handlers.core.failover import terminate_old_instance
from handlers.core.record_store import RecordStore
from handlers.core.steps import FenceInput
from handlers.shell import lambda_step


@lambda_step(FenceInput)
def handler(request: FenceInput, store: RecordStore) -> object:
    return terminate_old_instance(request, store)
