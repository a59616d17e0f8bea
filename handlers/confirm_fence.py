"""Fence, proof: is every instance the failover replaces cut off, by means AWS documents?
(the permit's precondition)"""

from handlers.core.fence.confirmation import confirm
from handlers.core.record_store import RecordStore
from handlers.core.steps import FenceInput
from handlers.shell import lambda_step


@lambda_step(FenceInput)
def handler(request: FenceInput, store: RecordStore) -> object:
    return confirm(request, store)
