"""Fence, one round: cut every instance the failover replaces off from the shared data and
the clients."""

from handlers.core.fence.cutoff import cut_off
from handlers.core.record_store import RecordStore
from handlers.core.steps import FenceInput
from handlers.shell import lambda_step


@lambda_step(FenceInput)
def handler(request: FenceInput, store: RecordStore) -> object:
    return cut_off(request, store)
