"""The logic of each failover step after Admit. Each function is one Task of
statemachine/failover.asl.json; none knows about Lambda."""

from __future__ import annotations

import json
from datetime import datetime

from handlers.core import alarms, clock, failover_metrics, fencing, launching, lease, notifications, permits, targets
from handlers.core.errors import AlternateZonesExhausted, IsolationNotConfirmed, LeaseLost, RecordNotFound
from handlers.core.record import AppRecord, AppState, FailoverSummary, Fence
from handlers.core.record_store import RecordStore
from handlers.core.resumption import INTERRUPTED
from handlers.core.steps import (
    FailInput,
    FailoverOutcome,
    FailoverPlan,
    FenceInput,
    FenceResult,
    FinaliseInput,
    HealthCheck,
    HealthInput,
    PermitInput,
    Replacement,
    ReplacementInput,
    RollbackInput,
    StepError,
    StepInput,
    TakeoverInput,
)


def _record(store: RecordStore, request: StepInput | ReplacementInput) -> AppRecord:
    return lease.require(store.get(request.app), request.execution)


# --- fence branch ----------------------------------------------------------------------
def isolate_old_instance(request: FenceInput, store: RecordStore) -> FenceResult:
    record = _record(store, request)
    fence = fencing.isolate(
        request.plan.old_instance_id,
        record.blackhole_security_group_id,
        record.target_group_arns,
        request.execution,
    )

    def on_record(r: AppRecord) -> None:
        r.fence = Fence(
            instance_id=fence.instance_id,
            generation=request.plan.generation,
            isolated_at=fence.isolated_at or clock.now(),
            security_group_id=fence.security_group_id,
        )

    lease.update(store, request.app, request.execution, on_record)
    return fence


def terminate_old_instance(request: FenceInput, store: RecordStore) -> FenceResult:
    _record(store, request)
    if request.fence is None or not request.fence.isolated:
        # Never terminate what was not isolated first: a half-dead instance keeps its data safe.
        raise IsolationNotConfirmed(f"{request.plan.old_instance_id} has no confirmed isolation")
    return fencing.terminate(request.fence)


# --- launch ----------------------------------------------------------------------------
def launch_replacement(request: StepInput, store: RecordStore) -> Replacement:
    return launching.launch(_record(store, request), request.plan, request.execution)


def check_replacement(request: ReplacementInput, store: RecordStore) -> Replacement:
    _record(store, request)
    return launching.check_running(request.replacement)


# --- permit, targets, health -----------------------------------------------------------
def issue_permit(request: PermitInput, store: RecordStore) -> dict[str, str]:
    record = permits.issue(request, store)
    assert record.permit is not None
    return {"instance_id": record.permit.instance_id, "generation": str(record.permit.generation)}


def register_targets(request: TakeoverInput, store: RecordStore) -> HealthCheck:
    return targets.register(_record(store, request), request.takeover.replacement)


def check_target_health(request: HealthInput, store: RecordStore) -> HealthCheck:
    _record(store, request)
    return targets.check(request.health)


# --- end states ------------------------------------------------------------------------
def finalise(request: FinaliseInput, store: RecordStore) -> FailoverOutcome:
    replacement = request.takeover.replacement
    record = _record(store, request)
    alarms.retarget(record.alarm_names, replacement.instance_id)
    finished = clock.now()
    summary = FailoverSummary(
        execution=request.execution,
        trigger=request.trigger.summary,
        outcome="recovered",
        old_instance_id=request.plan.old_instance_id,
        old_az=request.plan.failed_az,
        new_instance_id=replacement.instance_id,
        new_az=replacement.az,
        started_at=request.plan.started_at,
        finished_at=finished,
        attempts=request.plan.attempt,
        step_seconds=_step_seconds(request, finished),
    )

    def recovered(r: AppRecord) -> None:
        r.state = AppState.NORMAL
        r.current_instance_id = replacement.instance_id
        r.current_az = replacement.az
        r.lease = None
        r.failure_cause = None
        r.add_history(summary)

    stored = lease.update(store, request.app, request.execution, recovered)
    outcome = FailoverOutcome(
        app=request.app,
        execution=request.execution,
        outcome="recovered",
        old_instance_id=summary.old_instance_id,
        old_az=summary.old_az,
        new_instance_id=replacement.instance_id,
        new_az=replacement.az,
        generation=stored.generation,
        duration_seconds=summary.duration_seconds,
        step_seconds=summary.step_seconds,
    )
    notifications.publish(notifications.SUCCEEDED, outcome.model_dump(mode="json"))
    failover_metrics.record_recovered(outcome)
    return outcome


def rollback_replacement(request: RollbackInput, store: RecordStore) -> FailoverPlan:
    """Fence a replacement that did not make it, then plan the next attempt in another AZ."""
    record = _record(store, request)
    replacement = request.takeover.replacement
    fence = fencing.isolate(
        replacement.instance_id,
        record.blackhole_security_group_id,
        record.target_group_arns,
        request.execution,
    )
    fencing.terminate(fence)

    def next_generation(r: AppRecord) -> None:
        # Once per replacement, so a retried rollback does not skip a generation.
        if r.generation == replacement.generation:
            r.generation += 1
        if r.permit is not None and r.permit.instance_id == replacement.instance_id:
            r.permit = None

    stored = lease.update(store, request.app, request.execution, next_generation)
    plan = request.plan.model_copy(
        update={
            "attempt": request.plan.attempt + 1,
            # An AZ is tried once; a replacement rolled back only because its execution
            # stopped says nothing against its AZ.
            "tried_azs": request.plan.tried_azs
            if request.error.Error == INTERRUPTED
            else [*request.plan.tried_azs, replacement.az],
            "generation": stored.generation,
        }
    )
    if not launching.remaining_azs(stored, plan):
        raise AlternateZonesExhausted(
            f"replacement {replacement.instance_id} in {replacement.az} failed ({request.error.Error}:"
            f" {readable_cause(request.error.Cause)}); it was fenced and no AZ is left to try"
            f" (tried {', '.join(plan.tried_azs)})"
        )
    return plan


def fail(request: FailInput, store: RecordStore) -> StepError:
    """Leave things safe and explicit: FAILED record, lease released, unpermitted
    replacements terminated, a Failed event, and an error an operator can act on."""
    cause = readable_cause(request.error.Cause)
    actions: list[str] = []
    record = store.get(request.app)
    held = record is not None and record.lease_held_by(request.execution)
    permitted = record.permit.instance_id if held and record and record.permit else None
    if held or request.error.Error not in {LeaseLost.__name__, RecordNotFound.__name__}:
        for instance in launching.instances_of(request.execution):
            if instance["InstanceId"] == permitted:
                actions.append(f"left {permitted} running: it holds the start permit")
                continue
            fencing.terminate_instance(instance["InstanceId"])
            actions.append(f"terminated unpermitted replacement {instance['InstanceId']}")
    if held and record is not None and request.plan is not None:
        summary = FailoverSummary(
            execution=request.execution,
            trigger=request.trigger.summary if request.trigger else "",
            outcome="failed",
            old_instance_id=request.plan.old_instance_id,
            old_az=request.plan.failed_az,
            started_at=request.plan.started_at,
            finished_at=clock.now(),
            attempts=request.plan.attempt,
            cause=f"{request.error.Error}: {cause}",
        )

        def failed(r: AppRecord) -> None:
            r.state = AppState.FAILED
            r.failure_cause = f"{request.error.Error}: {cause}"
            r.lease = None
            r.add_history(summary)

        lease.update(store, request.app, request.execution, failed)
        actions.append(f"record of {request.app!r} set FAILED and lease released")
    elif not held:
        actions.append("record left untouched: this execution does not hold the lease")
    notifications.publish(
        notifications.FAILED,
        {"app": request.app, "execution": request.execution, "error": request.error.Error, "cause": cause},
    )
    failover_metrics.record_failed(request.app, request.execution, request.plan, request.error.Error)
    return StepError(Error=request.error.Error, Cause=f"{cause} | {'; '.join(actions) or 'nothing to clean up'}")


def readable_cause(cause: str) -> str:
    """A Lambda failure's Cause is the runtime's JSON report; keep its message."""
    try:
        report = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    if isinstance(report, dict) and "errorMessage" in report:
        return str(report["errorMessage"])
    return cause


def _step_seconds(request: FinaliseInput, finished: datetime) -> dict[str, float]:
    plan, takeover = request.plan, request.takeover
    marks: dict[str, tuple[datetime | None, datetime | None]] = {
        "detect": (request.trigger.observed_at, plan.started_at),
        "isolate": (plan.started_at, takeover.fence.isolated_at),
        "launch_to_running": (takeover.replacement.launched_at, takeover.replacement.running_at),
        "boot_gate": (takeover.replacement.running_at, request.boot.started_at),
        "healthy": (request.health.registered_at, request.health.healthy_at),
        "total": (plan.started_at, finished),
    }
    return {name: round((end - start).total_seconds(), 1) for name, (start, end) in marks.items() if start and end}
