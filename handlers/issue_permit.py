"""Write the start permit for the replacement (the boot gate answers the task token)."""

from handlers.core.failover import issue_permit
from handlers.core.record_store import RecordStore
from handlers.core.steps import PermitInput
from handlers.shell import lambda_step


@lambda_step(PermitInput)
def handler(request: PermitInput, store: RecordStore) -> object:
    return issue_permit(request, store)
