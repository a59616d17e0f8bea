"""The start permit: written only when the old instance's isolation is on record."""

from __future__ import annotations

from handlers.core import clock, lease
from handlers.core.errors import PermitRefused
from handlers.core.record import AppRecord, Permit
from handlers.core.record_store import RecordStore
from handlers.core.steps import PermitInput


def issue(request: PermitInput, store: RecordStore) -> AppRecord:
    replacement = request.takeover.replacement

    def grant(record: AppRecord) -> None:
        fence = record.fence
        if fence is None or fence.instance_id != request.plan.old_instance_id:
            raise PermitRefused(
                f"no confirmed isolation of the old instance {request.plan.old_instance_id} on record;"
                f" {replacement.instance_id} must not start the workload"
            )
        if record.generation != replacement.generation:
            raise PermitRefused(
                f"{replacement.instance_id} was launched for generation {replacement.generation},"
                f" the application is at generation {record.generation}"
            )
        record.permit = Permit(
            generation=record.generation,
            instance_id=replacement.instance_id,
            task_token=request.task_token,
            issued_at=clock.now(),
        )

    return lease.update(store, request.app, request.execution, grant)
