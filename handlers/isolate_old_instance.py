"""Fence, first half: isolate the old instance and put the proof on record."""

from handlers.core.failover import isolate_old_instance
from handlers.core.record_store import RecordStore
from handlers.core.steps import FenceInput
from handlers.shell import lambda_step


@lambda_step(FenceInput)
def handler(request: FenceInput, store: RecordStore) -> object:
    return isolate_old_instance(request, store)
