"""End a failover that cannot finish: record FAILED, release the lease, clean up, announce."""

from handlers.core.failover import fail
from handlers.core.record_store import RecordStore
from handlers.core.steps import FailInput
from handlers.shell import lambda_step


@lambda_step(FailInput)
def handler(request: FailInput, store: RecordStore) -> object:
    return fail(request, store)
