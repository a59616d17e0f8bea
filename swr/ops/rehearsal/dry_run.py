"""``rehearse``: what a drill would do now, and what would stop it, read-only."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.core import clock, launching, lease
from handlers.core.admission import refusal_of
from handlers.core.launching import LaunchCandidate
from handlers.core.record import AppRecord, AppState
from handlers.core.record_store import RecordStore
from handlers.core.steps import Decision, FailoverPlan
from handlers.core.triggers import TriggerKind, parse_trigger
from swr.ops.common import Client, NotRegistered
from swr.ops.rehearsal.checks import assess, checks
from swr.ops.rehearsal.facts import Facts
from swr.ops.rehearsal.model import AdmitVerdict, Candidate, Rehearsal
from swr.ops.rehearsal.permissions import permission_checks
from swr.ops.status import holder_status
from swr.stack import StackOutputs


def rehearse(client: Client, stack: StackOutputs, app: str, *, force: bool = False) -> Rehearsal:
    """What ``swr drill APP [--force]`` would do now, and what would stop it. Read-only."""
    record = RecordStore(stack.RecordTableName, client("dynamodb")).get(app)
    if record is None:
        raise NotRegistered(f"application {app!r} has no record in table {stack.RecordTableName}")
    name = "rehearsal-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    execution = stack.StateMachineArn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    admit = _admit(client, record, execution, name, force)
    admit_with_force = None if force or admit.proceeds else _admit(client, record, execution, name, True)

    # The plan Admit would make: the lease's next generation, the failed AZ tried already.
    taken = lease.take(record, execution)
    plan = FailoverPlan(
        generation=taken.generation,
        old_instance_id=record.current_instance_id,
        failed_az=record.current_az,
        started_at=clock.now(),
        tried_azs=[record.current_az],
    )
    facts = Facts.gather(client, stack, record, plan, execution)
    candidates = [assess(facts, candidate) for candidate in facts.candidates]
    first = next((c for c in candidates if c.usable), candidates[0] if candidates else None)
    request = (
        launching.run_request(
            record,
            plan,
            execution,
            _as_launch(first),
            launching.client_token(name, 1, "", ""),
            launching.encrypted_mappings(facts.image or {}),
        )
        if first
        else {}
    )
    request.pop("UserData", None)  # the operator's, possibly secret; the record has it
    found = [*checks(facts, candidates), *permission_checks(client, stack, facts, request)]
    return Rehearsal(
        app=app,
        force=force,
        admit=admit,
        admit_with_force=admit_with_force,
        state=record.state,
        generation=plan.generation,
        old_instance_id=record.current_instance_id,
        old_az=record.current_az,
        old_instance_state=facts.old_state,
        network_interfaces=list(facts.interfaces),
        blackhole_security_group_id=record.blackhole_security_group_id,
        target_group_arns=list(record.target_group_arns),
        registered_in=facts.registered_in,
        image_id=record.launch_spec.image_id,
        candidates=candidates,
        run_request=request,
        efs_file_system_id=record.efs.file_system_id,
        efs_mount_targets={az: mt["MountTargetId"] for az, mt in facts.mount_targets.items()},
        shared_subnet_mount_targets=[
            mt["MountTargetId"]
            for mt in facts.mount_targets.values()
            if facts.old is not None and mt["SubnetId"] == facts.old.get("SubnetId")
        ],
        fence_timeout_seconds=record.fence_timeout_seconds,
        alarm_names=list(record.alarm_names),
        checks=found,
    )


def _as_launch(candidate: Candidate) -> LaunchCandidate:
    return LaunchCandidate(az=candidate.az, instance_type=candidate.instance_type, subnet_id=candidate.subnet_id)


def _admit(client: Client, record: AppRecord, execution: str, name: str, force: bool) -> AdmitVerdict:
    trigger = parse_trigger(
        {"kind": TriggerKind.DRILL.value, "app": record.app, "reason": "rehearsal", "force": force}, name
    )
    # The lease as seen through this client; a holder left in it is one that runs.
    refusal = refusal_of(trigger, _lease_as_seen(client, record), execution, still_running=lambda _: True)
    if refusal is None:
        return AdmitVerdict(decision=Decision.PROCEED, reason=trigger.summary, force=force)
    return AdmitVerdict(decision=refusal[0], reason=refusal[1], force=force)


def _lease_as_seen(client: Client, record: AppRecord) -> AppRecord:
    """The record with its lease settled here, through ``client``: admission asks whether the
    lease's holder still runs with the handlers' own client, which is not this one."""
    if record.state is not AppState.SWITCHING or record.lease is None:
        return record
    if holder_status(client, record.lease.holder) == "RUNNING":  # the holder is alive: its lease keeps others out
        return record
    return record.model_copy(update={"lease": None})  # continued by the next trigger, as Admit would
