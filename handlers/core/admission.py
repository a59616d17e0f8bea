"""Admit: turn a trigger into a decision, and take the lease when the decision is proceed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from botocore.exceptions import ClientError

from handlers.core import clock, lease, notifications, watch
from handlers.core.aws import api_call, client
from handlers.core.errors import AwsThrottled, AwsUnavailable, RecordConflict
from handlers.core.fence.instances import FENCED_BY_TAG
from handlers.core.launching import APP_TAG
from handlers.core.record import AppRecord, AppState, Fence, OperatorConfirmation
from handlers.core.record_store import RecordStore
from handlers.core.resumption import Continuation, continuation
from handlers.core.steps import Admission, AdmitInput, Decision, FailoverPlan, Route
from handlers.core.triggers import Trigger, TriggerKind, parse_trigger

logger = logging.getLogger(__name__)
# A fenced instance in one of these states can have (some of) its fence released.
RELEASING_STATES = frozenset({"terminated", "stopped"})


def admit(request: AdmitInput, store: RecordStore) -> Admission:
    trigger = parse_trigger(request.trigger, request.execution_name)
    tags = _swr_tags_of(trigger.instance_id)
    app = trigger.app or tags.get(APP_TAG)

    def decide(decision: Decision, reason: str, plan: FailoverPlan | None = None) -> Admission:
        return Admission(
            app=app, execution=request.execution, decision=decision, reason=reason, trigger=trigger, plan=plan
        )

    if app is None:
        return decide(Decision.IGNORE, f"{_subject(trigger)} does not belong to a protected application")
    if trigger.kind is TriggerKind.EC2_STATE_CHANGE and FENCED_BY_TAG in tags:
        because = f"{_subject(trigger)} is {trigger.ec2_state} because swr fenced it ({tags[FENCED_BY_TAG]})"
        record = store.get(app) if trigger.ec2_state in RELEASING_STATES else None
        fence = record.fence_of(trigger.instance_id or "") if record is not None else None
        if fence is not None and fence.holds_anything:
            # Housekeeping, no lease: deny entries of a terminated instance would cut off the next
            # instance given its address; a deleted mount target can come back.
            return decide(Decision.RELEASE, f"{because}: releasing what its fence holds")
        return decide(Decision.IGNORE, because)

    for _ in range(lease.CONFLICT_RETRIES):
        record = store.get(app)
        if record is None:
            return decide(Decision.IGNORE, f"application {app!r} is not registered with swr")
        if record.lease_held_by(request.execution):
            # A retried Admit of this same execution: the lease is already ours; decide the
            # same way again (a resume's continuation reads only what the take left as is).
            carried = _continuation(trigger, record)
            return _proceed(decide, record, "lease already held by this execution", carried)
        refusal = refusal_of(trigger, record, request.execution)
        if refusal is not None:
            if _remember_refused_fault(store, record, trigger, refusal[0]) is False:
                continue  # somebody wrote first: decide again on what they wrote
            return decide(*refusal)
        carried = _continuation(trigger, record) or _orphaned(record)
        if carried is None or carried.route is Route.FENCE_AND_LAUNCH:
            taken = lease.take(record, request.execution)
        else:
            taken = lease.take_over(record, request.execution)
        taken.remember_trigger(trigger.id)
        if trigger.fault_id:
            taken.remember_trigger(_fault_key(trigger.fault_id))
        if trigger.fence_confirmation:
            _confirm_down(taken, trigger, request.execution)
        try:
            stored = store.save(taken)
        except RecordConflict:
            continue  # somebody wrote first: decide again on what they wrote
        admission = _proceed(decide, stored, trigger.summary, carried)
        assert admission.plan is not None
        watch.follow(stored)  # the failover owns the instance now: its terminate starts nothing
        _announce_start(app, request.execution, trigger, admission.plan)
        return admission
    raise RecordConflict(f"record of {app!r} kept changing while admitting {trigger.id}")


def _fault_key(fault_id: str) -> str:
    return f"fault:{fault_id}"


def _remember_refused_fault(store: RecordStore, record: AppRecord, trigger: Trigger, decision: Decision) -> bool | None:
    """An RMS fault turned away (maintenance, FAILED, another instance's) is remembered by its
    fault id, so that publishing it again later (a replay) is refused too. None: nothing to do."""
    if (
        decision is not Decision.IGNORE
        or not trigger.fault_id
        or _fault_key(trigger.fault_id) in record.recent_triggers
    ):
        return None
    remembered = record.model_copy(deep=True)
    remembered.remember_trigger(_fault_key(trigger.fault_id))
    try:
        store.save(remembered)
    except RecordConflict:
        return False
    return True


def _confirm_down(record: AppRecord, trigger: Trigger, execution: str) -> None:
    """Record the operator's word that the current (old) instance is down: its fence counts as
    confirmed, with who and why, as Pacemaker's manual fence confirmation does."""
    confirmation = OperatorConfirmation(
        by=trigger.requested_by or "operator", reason=trigger.fence_confirmation or "", at=clock.now()
    )
    fence = record.fence_of(record.current_instance_id)
    if fence is None:
        fence = Fence(
            instance_id=record.current_instance_id,
            execution=execution,
            az=record.current_az,
            subnet_id="",
            started_at=confirmation.at,
            security_group_id=record.blackhole_security_group_id,
        )
        record.fences.append(fence)
    fence.operator = confirmation


def _continuation(trigger: Trigger, record: AppRecord) -> Continuation | None:
    if trigger.kind is not TriggerKind.RESUME or trigger.interrupted is None:
        return None
    return continuation(record, trigger.interrupted)


def _orphaned(record: AppRecord) -> Continuation | None:
    """A lease whose holder ended without finishing (stopped, or its clean-up failed): the
    trigger continues that failover as a resume would, rather than waiting out the lease."""
    if record.state is not AppState.SWITCHING or record.lease is None:
        return None
    return continuation(record, record.lease.holder)


def _proceed(
    decide: Callable[..., Admission], record: AppRecord, reason: str, carried: Continuation | None
) -> Admission:
    if carried is None or carried.route is Route.FENCE_AND_LAUNCH:
        reason = f"{reason}; {carried.reason}" if carried else reason
        plan = _plan(record)
        if carried is not None and carried.orphans:
            plan = plan.model_copy(update={"rolled_back": [*plan.rolled_back, *carried.orphans]})
        return decide(Decision.PROCEED, reason, plan)
    admission: Admission = decide(Decision.PROCEED, f"{reason}; {carried.reason}", carried.plan)
    return admission.model_copy(
        update={"route": carried.route, "takeover": carried.takeover, "boot": carried.boot, "error": carried.error}
    )


def _announce_start(app: str, execution: str, trigger: Trigger, plan: FailoverPlan) -> None:
    # Informational: the lease is already taken, so a failed publish must not stop the failover.
    try:
        notifications.publish(
            notifications.STARTED,
            {
                "app": app,
                "execution": execution,
                "trigger": trigger.summary,
                "old_instance_id": plan.old_instance_id,
                "failed_az": plan.failed_az,
                "generation": plan.generation,
            },
        )
    except (AwsThrottled, AwsUnavailable, ClientError) as error:
        logger.warning("could not publish Failover Started: %s", error)


def refusal_of(
    trigger: Trigger, record: AppRecord, execution: str, still_running: Callable[[str], bool] | None = None
) -> tuple[Decision, str] | None:
    """Why this trigger must not start a failover now, or None to proceed. ``still_running``
    says whether an execution runs (by default, asked of Step Functions)."""
    holder_runs = still_running or _still_running
    if trigger.id in record.recent_triggers:
        return Decision.IGNORE, f"trigger {trigger.id} was already admitted (duplicate delivery)"
    if trigger.fault_id and _fault_key(trigger.fault_id) in record.recent_triggers:
        return Decision.IGNORE, (
            f"RMS fault {trigger.fault_id} was already decided on: published again (a replay), it changes nothing"
        )
    if trigger.generation is not None and trigger.generation < record.generation:
        return Decision.IGNORE, (
            f"RMS fault raised by generation {trigger.generation}, but {record.app!r} runs generation"
            f" {record.generation}: it belongs to an earlier run (replayed or delayed)"
        )
    if (
        trigger.kind is TriggerKind.RMS_FAULT
        and trigger.observed_at is not None
        and record.current_since is not None
        and trigger.observed_at < record.current_since
    ):
        return Decision.IGNORE, (
            f"RMS fault raised at {_iso(trigger.observed_at)}, before {record.current_instance_id} became current"
            f" at {_iso(record.current_since)}: it belongs to an earlier run (replayed or delayed)"
        )
    if trigger.kind is TriggerKind.ALARM and trigger.alarm_name not in record.alarm_names:
        return Decision.IGNORE, (
            f"alarm {trigger.alarm_name} is not one of {record.app!r}'s alarms ({', '.join(record.alarm_names)})"
        )
    if trigger.kind is TriggerKind.ALARM and trigger.alarm_previous_state == trigger.alarm_state:
        return Decision.IGNORE, (
            f"alarm {trigger.alarm_name} was {trigger.alarm_previous_state} already: not a fresh transition"
        )
    if trigger.kind is TriggerKind.RESUME:
        return _resume_refusal(trigger, record)
    if not trigger.is_fault:
        return Decision.IGNORE, f"{trigger.summary}: not a fault"
    # Only a holder that still runs keeps others out: one that ended (its clean-up failed, or
    # it was stopped) leaves its failover to the next trigger, whatever the lease's expiry says.
    if record.state is AppState.SWITCHING and record.lease is not None and holder_runs(record.lease.holder):
        return Decision.IN_PROGRESS, f"failover already in progress (execution {record.lease.holder})"
    if record.maintenance is not None and not trigger.overrides_maintenance:
        m = record.maintenance
        return Decision.IGNORE, (
            f"application {record.app!r} is in maintenance mode: automatic failover suspended"
            f" (since {m.since.isoformat(timespec='seconds').replace('+00:00', 'Z')} by {m.by}: {m.reason})"
        )
    if record.state is AppState.FAILED and trigger.kind is not TriggerKind.DRILL:
        return Decision.IGNORE, (
            f"application {record.app!r} is FAILED ({record.failure_cause}); operator action required"
            " (swr resume after fixing the cause)"
        )
    if trigger.instance_id is not None and trigger.instance_id != record.current_instance_id:
        return Decision.IGNORE, (
            f"{_subject(trigger)} is not the current instance of {record.app!r}"
            f" ({record.current_instance_id}); stale or caused by swr itself"
        )
    return None


def _resume_refusal(trigger: Trigger, record: AppRecord) -> tuple[Decision, str] | None:
    """A resume continues one stopped failover: the one the record says is unfinished."""
    wanted = trigger.interrupted or ""
    if record.state is AppState.SWITCHING and record.lease is not None:
        holder = record.lease.holder
        if _still_running(holder):
            return Decision.IN_PROGRESS, f"failover in progress (execution {holder}): nothing to resume"
        if holder != wanted:
            return Decision.IGNORE, (
                f"the stopped failover of {record.app!r} is execution {holder}, not {wanted}: resume that one"
            )
        return None
    if record.state is AppState.FAILED:
        last = record.history[-1].execution if record.history else None
        if last != wanted:
            return Decision.IGNORE, f"the failover of {record.app!r} that ended FAILED is {last}, not {wanted}"
        return None
    return Decision.IGNORE, (
        f"nothing to resume: {record.app!r} is {record.state} on {record.current_instance_id} in {record.current_az}"
    )


def _plan(record: AppRecord) -> FailoverPlan:
    assert record.lease is not None
    return FailoverPlan(
        generation=record.generation,
        old_instance_id=record.current_instance_id,
        failed_az=record.current_az,
        started_at=record.lease.acquired_at,
        tried_azs=[record.current_az],
    )


def _swr_tags_of(instance_id: str | None) -> dict[str, str]:
    """The swr tags of the instance a trigger names: which app it runs, whether swr fenced it."""
    if instance_id is None:
        return {}
    with api_call(f"read tags of {instance_id}"):
        response = client("ec2").describe_tags(
            Filters=[
                {"Name": "resource-id", "Values": [instance_id]},
                {"Name": "key", "Values": [APP_TAG, FENCED_BY_TAG]},
            ]
        )
    return {str(tag["Key"]): str(tag["Value"]) for tag in response.get("Tags", [])}


def _still_running(execution_arn: str) -> bool:
    """An expired lease can be taken over only when its holder is gone."""
    try:
        with api_call("describe the lease holder"):
            status = client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise
    return bool(status == "RUNNING")


def _subject(trigger: Trigger) -> str:
    if trigger.instance_id:
        return f"instance {trigger.instance_id}"
    if trigger.alarm_name:
        return f"alarm {trigger.alarm_name}"
    return f"trigger {trigger.id}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
