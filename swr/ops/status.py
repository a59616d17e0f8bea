"""Status of every protected application: one swr stack protects one application, so the
applications are found through the stacks whose outputs say so, and each one's record,
instance and alarms are read from there. Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from handlers.core import watch
from handlers.core.record import AppRecord, FailoverSummary, Fence, Maintenance
from handlers.core.record_store import RecordStore
from swr.ops.common import Client, rules_of
from swr.stack import USABLE_STATUSES, StackOutputs


class LeaseStatus(BaseModel):
    holder: str
    acquired_at: datetime
    expires_at: datetime
    holder_status: str  # RUNNING, or how the holder ended: a stopped failover to resume


class AppStatus(BaseModel):
    app: str
    stack: str
    registered: bool
    state: str | None = None
    maintenance: Maintenance | None = None
    instance_id: str | None = None
    az: str | None = None
    instance_state: str | None = None
    generation: int | None = None
    lease: LeaseStatus | None = None
    failure_cause: str | None = None
    failovers: int = 0
    last_failover: FailoverSummary | None = None
    last_failover_seconds: float | None = None
    alarms: dict[str, str] = {}
    fences: list[str] = []  # what each fence still holds against an instance, and until when
    leftovers: list[str] = []  # fenced instances EC2 never powered off: they run until terminated
    watch_drift: list[str] = []  # EC2 state-change rules that do not match what the record names


def discover_stacks(cloudformation: Any) -> list[tuple[str, StackOutputs]]:
    """Every deployed swr stack in the region, by name."""
    found: list[tuple[str, StackOutputs]] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            if stack.get("StackStatus") not in USABLE_STATUSES:
                continue
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            try:
                found.append((str(stack["StackName"]), StackOutputs.model_validate(outputs)))
            except ValidationError:
                continue  # not an swr stack
    return sorted(found, key=lambda pair: pair[1].AppName)


def settled_record(client: Client, table: str, app: str) -> tuple[AppRecord | None, str | None]:
    """The record and how its lease holder stands (None without a lease), read so that the two
    agree: a failover that ends between reading the record and describing its execution has
    released the lease by then, so a holder seen finished is checked against a second read
    (a stopped failover's record does not change)."""
    store = RecordStore(table, client("dynamodb"))
    record = store.get(app)
    for _ in range(5):
        if record is None or record.lease is None:
            return record, None
        status = holder_status(client, record.lease.holder)
        if status == "RUNNING":
            return record, status
        again = store.get(app)
        if again == record:
            return record, status
        record = again
    raise RuntimeError(f"the record of {app} keeps changing: try again")


def holder_status(client: Client, execution_arn: str) -> str:
    """RUNNING, how the execution ended, or GONE (no longer listed)."""
    try:
        return str(client("stepfunctions").describe_execution(executionArn=execution_arn)["status"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise
        return "GONE"


def status_of(client: Client, stack_name: str, stack: StackOutputs) -> AppStatus:
    record, lease_holder_status = settled_record(client, stack.RecordTableName, stack.AppName)
    if record is None:
        return AppStatus(app=stack.AppName, stack=stack_name, registered=False)
    last = record.history[-1] if record.history else None
    return AppStatus(
        app=record.app,
        stack=stack_name,
        registered=True,
        state=record.state.value,
        maintenance=record.maintenance,
        instance_id=record.current_instance_id,
        az=record.current_az,
        instance_state=_instance_state(client, record.current_instance_id),
        generation=record.generation,
        lease=(
            LeaseStatus(
                holder=record.lease.holder,
                acquired_at=record.lease.acquired_at,
                expires_at=record.lease.expires_at,
                holder_status=lease_holder_status or "GONE",
            )
            if record.lease
            else None
        ),
        failure_cause=record.failure_cause,
        failovers=len(record.history),
        last_failover=last,
        last_failover_seconds=last.duration_seconds if last else None,
        alarms=_alarms(client, record),
        fences=[_fence(f) for f in record.fences],
        leftovers=_leftovers(client, record),
        watch_drift=_watch_drift(client, record, stack),
    )


def _watch_drift(client: Client, record: AppRecord, stack: StackOutputs) -> list[str]:
    drift = []
    for wanted in watch.watches(record, rules_of(stack)):
        try:
            rule = client("events").describe_rule(Name=wanted.rule)
        except ClientError as error:
            drift.append(f"rule {wanted.rule} cannot be read ({error})")
            continue
        matched = watch.watched(rule.get("EventPattern"), rule.get("State"))
        if sorted(matched) != sorted(wanted.instance_ids):
            drift.append(
                f"rule {wanted.rule} matches {', '.join(matched) or 'no instance'}, the record wants"
                f" {', '.join(wanted.instance_ids) or 'none'}: EC2 state changes go unseen or start needless"
                f" work; `swr deploy` points it again"
            )
    return drift


def _fence(fence: Fence) -> str:
    held = [f"{len(fence.acl_entries)} network ACL deny entries (until it is terminated)"] if fence.acl_entries else []
    held += [
        f"mount target {r.mount_target_id} deleted in {r.subnet_id} (until it can open no new NFS session)"
        for r in fence.removed_mount_targets
    ]
    proof = "cut off: " + "; ".join(fence.cut) if fence.confirmed_at else "not proven cut off"
    if fence.operator is not None:
        proof += f"; {fence.operator.by} confirmed it down: {fence.operator.reason}"
    return (
        f"{fence.instance_id} ({fence.instance_state or '?'}) is fenced, {proof}; holds {', '.join(held) or 'nothing'}"
    )


def _leftovers(client: Client, record: AppRecord) -> list[str]:
    """Fenced instances that still run: what the failover that fenced them reported, or their state."""
    reported = {text.split(" ", 1)[0]: text for summary in record.history for text in summary.leftovers}
    found = []
    for fence in record.fences:
        if fence.instance_id == record.current_instance_id:
            continue
        state = _instance_state(client, fence.instance_id)
        if state in ("pending", "running"):
            found.append(
                reported.get(fence.instance_id)
                or f"{fence.instance_id} is {state}: fenced by {fence.execution.rsplit(':', 1)[-1]} but not"
                f" powered off; terminate it: aws ec2 terminate-instances --instance-ids {fence.instance_id}"
            )
    return found


def _instance_state(client: Client, instance_id: str) -> str:
    try:
        reservations = client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return "gone"
        raise
    instances = [i for r in reservations for i in r.get("Instances", [])]
    return str(instances[0]["State"]["Name"]) if instances else "gone"


def _alarms(client: Client, record: AppRecord) -> dict[str, str]:
    if not record.alarm_names:
        return {}
    alarms = client("cloudwatch").describe_alarms(AlarmNames=record.alarm_names).get("MetricAlarms", [])
    states = {str(a["AlarmName"]): str(a["StateValue"]) for a in alarms}
    return {name: states.get(name, "MISSING") for name in record.alarm_names}
