"""Finalise: retarget alarms, record the new instance, release the lease, announce success."""

from handlers.core.failover import finalise
from handlers.core.record_store import RecordStore
from handlers.core.steps import FinaliseInput
from handlers.shell import lambda_step


@lambda_step(FinaliseInput)
def handler(request: FinaliseInput, store: RecordStore) -> object:
    return finalise(request, store)
