"""The logic of each failover step after Admit. Each function is one Task of
statemachine/failover.asl.json; none knows about Lambda."""

from __future__ import annotations

from datetime import datetime

from handlers.core import alarms, clock, failover_metrics, launching, lease, notifications, permits, targets, watch
from handlers.core.errors import AlternateZonesExhausted, LeaseLost, RecordNotFound
from handlers.core.fence import instances
from handlers.core.record import AppRecord, AppState, FailoverSummary, Fence
from handlers.core.record_store import RecordStore
from handlers.core.resumption import ALIVE_STATES, INTERRUPTED
from handlers.core.steps import (
    FailInput,
    FailoverOutcome,
    FailoverPlan,
    FinaliseInput,
    HealthCheck,
    HealthInput,
    PermitInput,
    RegisterInput,
    Replacement,
    ReplacementInput,
    RollbackInput,
    StepError,
    StepInput,
    readable_cause,
)

ADOPTABLE_STATES = ALIVE_STATES  # a permitted replacement that may run the workload
# A power-off EC2 accepted (or finished); anything else left running is a leftover.
POWERED_OFF_OR_GOING = frozenset({"stopping", "stopped", "shutting-down", "terminated", "gone"})


def _record(store: RecordStore, request: StepInput | ReplacementInput) -> AppRecord:
    return lease.require(store.get(request.app), request.execution)


# --- fence branch: handlers/core/fence/ (CutOffInstances, ConfirmFence) ------------------
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


def register_targets(request: RegisterInput, store: RecordStore) -> HealthCheck:
    replacement = request.takeover.replacement
    permits.require_answer_from(request.boot, replacement)
    return targets.register(_record(store, request), replacement)


def check_target_health(request: HealthInput, store: RecordStore) -> HealthCheck:
    _record(store, request)
    return targets.check(request.health)


# --- end states ------------------------------------------------------------------------
def finalise(request: FinaliseInput, store: RecordStore) -> FailoverOutcome:
    replacement = request.takeover.replacement
    record = _record(store, request)
    alarms.retarget(record.alarm_names, replacement.instance_id)
    finished = clock.now()
    replaced = [f for f in record.fences if f.instance_id in request.plan.to_fence]
    fenced = [f"{f.instance_id} ({f.instance_state or '?'}): {'; '.join(f.cut)}" for f in replaced]
    leftovers = [leftover for f in replaced if (leftover := _leftover(f)) is not None]
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
        phase_seconds=_phase_seconds(request, finished),
        fenced=fenced,
        leftovers=leftovers,
    )

    def recovered(r: AppRecord) -> None:
        r.state = AppState.NORMAL
        r.current_instance_id = replacement.instance_id
        r.current_az = replacement.az
        r.current_since = finished
        r.lease = None
        r.failure_cause = None
        r.add_history(summary)

    stored = lease.update(store, request.app, request.execution, recovered)
    watch.follow(stored)
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
        phase_seconds=summary.phase_seconds,
        fenced=fenced,
        leftovers=leftovers,
    )
    notifications.publish(notifications.SUCCEEDED, outcome.model_dump(mode="json"))
    failover_metrics.record_recovered(outcome)
    return outcome


def _leftover(fence: Fence) -> str | None:
    """A replaced instance EC2 never powered off: cut off, but running, and so reported (the
    outcome, the record's history, swr status) with what to do, rather than taken for gone."""
    state = instances.state_of(fence.instance_id)
    if state in POWERED_OFF_OR_GOING:
        return None
    if fence.power:
        why = f"EC2 never accepted the {fence.power} ({'; '.join(fence.attempts) or 'no reason given'})"
    else:
        why = "every path was proven cut before a power-off was accepted"
    return (
        f"{fence.instance_id} is {state}: {why}; {_holding(fence)},"
        f" until it is terminated: aws ec2 terminate-instances --instance-ids {fence.instance_id}"
    )


def rollback_replacement(request: RollbackInput, store: RecordStore) -> FailoverPlan:
    """Take the permit back from a replacement that did not make it and plan the next attempt in
    another AZ. The replacement joins the instances the fence branch cuts off (FenceAndLaunch
    runs again): it may have mounted the data and started the workload, and the next replacement
    gets no permit before it is cut off."""
    replacement = request.takeover.replacement

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
            "rolled_back": list(dict.fromkeys([*request.plan.rolled_back, replacement.instance_id])),
        }
    )
    if not launching.remaining_azs(stored, plan):
        raise AlternateZonesExhausted(
            f"replacement {replacement.instance_id} in {replacement.az} failed ({request.error.Error}:"
            f" {readable_cause(request.error.Cause)}) and no AZ is left to try (tried {', '.join(plan.tried_azs)})"
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
    adopted: tuple[str, str] | None = None  # (instance, AZ) the record names from now on
    if held or request.error.Error not in {LeaseLost.__name__, RecordNotFound.__name__}:
        for instance in launching.instances_of(request.execution):
            if instance["InstanceId"] == permitted and instances.state(instance) in ADOPTABLE_STATES:
                # The old instance was proven cut off before the permit: this one alone may hold
                # the data. Terminating it would take the workload down for a step that failed
                # after it started; leaving it unnamed would hide it. It is named instead.
                adopted = (str(permitted), str(instance["Placement"]["AvailabilityZone"]))
                actions.append(
                    f"{permitted} holds the start permit and may run the workload: the record names it as"
                    f" the current instance; it is not in the target groups (swr resume continues from there)"
                )
                continue
            instances.terminate_instance(instance["InstanceId"])
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
            if adopted is not None:
                r.current_instance_id, r.current_az = adopted
                r.current_since = clock.now()
            r.add_history(summary)

        watch.follow(lease.update(store, request.app, request.execution, failed))
        actions.append(f"record of {request.app!r} set FAILED and lease released")
    elif not held:
        actions.append("record left untouched: this execution does not hold the lease")
    if record is not None:
        actions += [_holding(f) for f in record.fences if f.execution == request.execution]
    notifications.publish(
        notifications.FAILED,
        {"app": request.app, "execution": request.execution, "error": request.error.Error, "cause": cause},
    )
    failover_metrics.record_failed(request.app, request.execution, request.plan, request.error.Error)
    return StepError(Error=request.error.Error, Cause=f"{cause} | {'; '.join(actions) or 'nothing to clean up'}")


def _phase_seconds(request: FinaliseInput, finished: datetime) -> dict[str, float]:
    plan, takeover = request.plan, request.takeover
    marks: dict[str, tuple[datetime | None, datetime | None]] = {
        "detect": (request.trigger.observed_at, plan.started_at),
        "fence": (plan.started_at, takeover.fence.confirmed_at),
        "launch_to_running": (takeover.replacement.launched_at, takeover.replacement.running_at),
        "boot_gate": (takeover.replacement.running_at, request.boot.started_at),
        "healthy": (request.health.registered_at, request.health.healthy_at),
        "total": (plan.started_at, finished),
    }
    return {name: round((end - start).total_seconds(), 1) for name, (start, end) in marks.items() if start and end}


def _holding(fence: Fence) -> str:
    """What a failed failover leaves standing against an instance it fenced (it stays so)."""
    held = [f"{len(fence.acl_entries)} network ACL deny entries"] if fence.acl_entries else []
    held += [f"mount target {r.mount_target_id} deleted" for r in fence.removed_mount_targets]
    if fence.isolated_at:
        held.append(f"interfaces in {fence.security_group_id}")
    if fence.power:
        held.append(f"{fence.power} requested")
    proof = "cut off" if fence.confirmed_at else "not proven cut off"
    return (
        f"{fence.instance_id} ({fence.instance_state or '?'}, {proof}) keeps its fence: {', '.join(held) or 'nothing'}"
    )
