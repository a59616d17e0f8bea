"""Report whether the replacement reached running; fail it when it died or timed out."""

from handlers.core.failover import check_replacement
from handlers.core.record_store import RecordStore
from handlers.core.steps import ReplacementInput
from handlers.shell import lambda_step


@lambda_step(ReplacementInput)
def handler(request: ReplacementInput, store: RecordStore) -> object:
    return check_replacement(request, store)
