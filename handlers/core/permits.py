"""The start permit: written only when every instance the failover replaces is proven cut off
(handlers/core/fence/confirmation.py) by this failover's execution."""

from __future__ import annotations

from handlers.core import clock, lease
from handlers.core.errors import PermitRefused
from handlers.core.record import AppRecord, Permit
from handlers.core.record_store import RecordStore
from handlers.core.steps import PermitInput


def issue(request: PermitInput, store: RecordStore) -> AppRecord:
    replacement = request.takeover.replacement

    def grant(record: AppRecord) -> None:
        for instance_id in request.plan.to_fence:
            fence = record.fence_of(instance_id)
            if fence is None or fence.confirmed_in != request.execution:
                raise PermitRefused(
                    f"{instance_id} is not proven cut off from the shared data and the clients by this failover;"
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
