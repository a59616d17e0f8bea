"""Fence a replacement that never became healthy and plan the next AZ."""

from handlers.core.failover import rollback_replacement
from handlers.core.record_store import RecordStore
from handlers.core.steps import RollbackInput
from handlers.shell import lambda_step


@lambda_step(RollbackInput)
def handler(request: RollbackInput, store: RecordStore) -> object:
    return rollback_replacement(request, store)
