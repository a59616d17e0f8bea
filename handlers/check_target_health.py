"""Poll the replacement's target health until healthy or the health timeout."""

from handlers.core.failover import check_target_health
from handlers.core.record_store import RecordStore
from handlers.core.steps import HealthInput
from handlers.shell import lambda_step


@lambda_step(HealthInput)
def handler(request: HealthInput, store: RecordStore) -> object:
    return check_target_health(request, store)
