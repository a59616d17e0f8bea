"""What can start a failover, parsed into one model.

EventBridge delivers the raw event as the execution input; a drill or a resume is a small
JSON object an operator (``swr drill``, ``swr resume``) starts the execution with. Anything
else is malformed.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.core.errors import MalformedTrigger

# An application's RMS faults come from source "swr.rms.<app>": its instance role may publish
# only that source, and only its stack's rule matches it (rms_hooks.fault_notifier.source_of).
RMS_SOURCE_PREFIX = "swr.rms."
# Step Functions keeps a state's input and output under 256 KiB (Developer Guide, "Step
# Functions service quotas"); the trigger rides along in every state, beside the plan and fence.
MAX_TRIGGER_BYTES = 32 * 1024
RMS_DETAIL_TYPE = "RMS Fault"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
EC2_DETAIL_TYPE = "EC2 Instance State-change Notification"
# EC2 states that mean the workload is gone or going; pending/running are not faults.
EC2_FAULT_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})


class TriggerKind(StrEnum):
    ALARM = "alarm"
    RMS_FAULT = "rms-fault"
    EC2_STATE_CHANGE = "ec2-state-change"
    DRILL = "drill"
    RESUME = "resume"  # continue a failover whose execution stopped before it finished


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TriggerKind
    id: str  # dedupe key: the EventBridge event id, or the drill's execution name
    summary: str
    app: str | None = None  # known directly for RMS faults, drills and heartbeat alarms
    instance_id: str | None = None
    observed_at: datetime | None = None
    alarm_name: str | None = None
    alarm_state: str | None = None
    alarm_previous_state: str | None = None  # the state the alarm changed from
    ec2_state: str | None = None
    force: bool = False  # a drill that overrides maintenance mode
    interrupted: str | None = None  # a resume: the execution whose failover it continues
    requested_by: str | None = None  # a drill or a resume: the operator
    # A resume: the operator has confirmed by other means that the old instance is down.
    fence_confirmation: str | None = None
    fault_id: str | None = None  # an RMS fault: the notifier's id, the same however often it is sent
    generation: int | None = None  # an RMS fault: the generation its instance ran, when it said

    @property
    def is_fault(self) -> bool:
        if self.kind is TriggerKind.ALARM:
            return self.alarm_state == "ALARM"
        if self.kind is TriggerKind.EC2_STATE_CHANGE:
            return self.ec2_state in EC2_FAULT_STATES
        return True

    @property
    def overrides_maintenance(self) -> bool:
        # Maintenance suspends automatic failover; an operator's forced drill or an explicit
        # resume of a failover already under way is not automatic.
        return (self.kind is TriggerKind.DRILL and self.force) or self.kind is TriggerKind.RESUME


class _Envelope(BaseModel):
    id: str = Field(min_length=1)
    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime | None = None
    detail: dict[str, Any]


class _AlarmDetail(BaseModel):
    alarmName: str
    state: dict[str, Any]
    previousState: dict[str, Any] = Field(default_factory=dict)
    configuration: dict[str, Any] = Field(default_factory=dict)


class _RmsDetail(BaseModel):
    app: str = Field(min_length=1)
    instance_id: str = Field(min_length=1)
    user_application: str = ""
    reason: str = ""
    occurred_at: datetime | None = None
    fault_id: str | None = Field(default=None, max_length=128)
    generation: int | None = Field(default=None, ge=0)  # the swr:generation the instance ran


class _Ec2Detail(BaseModel):
    instance_id: str = Field(alias="instance-id", min_length=1)
    state: str


class _Drill(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    app: str = Field(min_length=1)
    reason: str = "drill"
    requested_by: str = "operator"
    force: bool = False


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    app: str = Field(min_length=1)
    interrupted: str = Field(pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$")
    requested_by: str = "operator"
    # Why the operator takes the old instance to be down, when swr could not prove it cut off.
    confirm_fenced: str | None = Field(default=None, min_length=1, max_length=1000)


def parse_trigger(raw: Any, execution_name: str) -> Trigger:
    """Parse the execution input; raise MalformedTrigger with a cause an operator can read."""
    if not isinstance(raw, dict):
        raise MalformedTrigger(f"execution input must be a JSON object, got {type(raw).__name__}")
    size = len(json.dumps(raw, separators=(",", ":")).encode())
    if size > MAX_TRIGGER_BYTES:
        # Every state of the workflow carries the trigger: one this large would push a state
        # over Step Functions' 256 KiB limit later, with the lease taken. Refused before.
        raise MalformedTrigger(
            f"{_describe(raw)} is {size} bytes; swr takes triggers of at most {MAX_TRIGGER_BYTES} bytes"
            " (alarm, RMS and EC2 events are a few KiB): nothing was changed"
        )
    try:
        if raw.get("kind") == TriggerKind.DRILL:
            return _drill(raw, execution_name)
        if raw.get("kind") == TriggerKind.RESUME:
            return _resume(raw, execution_name)
        if "detail-type" in raw:
            return _event(raw)
    except ValidationError as error:
        raise MalformedTrigger(f"{_describe(raw)} is malformed: {_first_problems(error)}") from error
    raise MalformedTrigger(
        "execution input is neither an EventBridge event (alarm state change, RMS fault, EC2 state change)"
        ' nor a drill ({"kind": "drill", "app": "..."}) nor a resume ({"kind": "resume", "app": "...",'
        ' "interrupted": "EXECUTION_ARN"}); keys: ' + ", ".join(sorted(map(str, raw)))
    )


def _drill(raw: dict[str, Any], execution_name: str) -> Trigger:
    drill = _Drill.model_validate(raw)
    return Trigger(
        kind=TriggerKind.DRILL,
        id=execution_name,
        app=drill.app,
        summary=f"drill by {drill.requested_by}: {drill.reason}",
        requested_by=drill.requested_by,
        force=drill.force,
    )


def _resume(raw: dict[str, Any], execution_name: str) -> Trigger:
    resume = _Resume.model_validate(raw)
    confirmed = f", confirming the old instance down: {resume.confirm_fenced}" if resume.confirm_fenced else ""
    return Trigger(
        kind=TriggerKind.RESUME,
        id=execution_name,
        app=resume.app,
        interrupted=resume.interrupted,
        requested_by=resume.requested_by,
        fence_confirmation=resume.confirm_fenced,
        summary=f"resume by {resume.requested_by} of {resume.interrupted.rsplit(':', 1)[-1]}{confirmed}",
    )


def _event(raw: dict[str, Any]) -> Trigger:
    envelope = _Envelope.model_validate(raw)
    if envelope.detail_type == ALARM_DETAIL_TYPE:
        alarm = _AlarmDetail.model_validate(envelope.detail)
        dimensions = _alarm_dimensions(alarm.configuration)
        state = str(alarm.state.get("value", ""))
        return Trigger(
            kind=TriggerKind.ALARM,
            id=envelope.id,
            app=dimensions.get("App"),
            instance_id=dimensions.get("InstanceId"),
            observed_at=envelope.time,
            alarm_name=alarm.alarmName,
            alarm_state=state,
            alarm_previous_state=str(alarm.previousState.get("value", "")) or None,
            summary=f"alarm {alarm.alarmName} is {state}: {alarm.state.get('reason', '')}".rstrip(": "),
        )
    if envelope.source.startswith(RMS_SOURCE_PREFIX) and envelope.detail_type == RMS_DETAIL_TYPE:
        rms = _RmsDetail.model_validate(envelope.detail)
        if envelope.source != RMS_SOURCE_PREFIX + rms.app:
            # Only app's own instances may publish its source: a fault naming another application
            # is forged (or misconfigured) and must not fail that application over.
            raise MalformedTrigger(
                f"event {envelope.id} from {envelope.source!r} reports a fault of application {rms.app!r},"
                f" whose faults come only from {RMS_SOURCE_PREFIX + rms.app!r}: not admitted, nothing changed"
            )
        return Trigger(
            kind=TriggerKind.RMS_FAULT,
            id=envelope.id,
            app=rms.app,
            instance_id=rms.instance_id,
            observed_at=rms.occurred_at or envelope.time,
            fault_id=rms.fault_id,
            generation=rms.generation,
            summary=f"RMS reports {rms.user_application or rms.app} Faulted: {rms.reason}".rstrip(": "),
        )
    if envelope.detail_type == EC2_DETAIL_TYPE:
        ec2 = _Ec2Detail.model_validate(envelope.detail)
        return Trigger(
            kind=TriggerKind.EC2_STATE_CHANGE,
            id=envelope.id,
            instance_id=ec2.instance_id,
            observed_at=envelope.time,
            ec2_state=ec2.state,
            summary=f"instance {ec2.instance_id} is {ec2.state}",
        )
    raise MalformedTrigger(
        f"event {envelope.id} from {envelope.source!r} with detail-type {envelope.detail_type!r}"
        " is not a trigger swr handles"
    )


def _alarm_dimensions(configuration: dict[str, Any]) -> dict[str, str]:
    dimensions: dict[str, str] = {}
    for metric in configuration.get("metrics", []) or []:
        found = ((metric or {}).get("metricStat") or {}).get("metric", {}).get("dimensions") or {}
        dimensions.update({str(k): str(v) for k, v in found.items()})
    return dimensions


def _describe(raw: dict[str, Any]) -> str:
    if raw.get("kind") in (TriggerKind.DRILL, TriggerKind.RESUME):
        return f"{raw['kind']} request"
    return f"event {raw.get('id', '?')} ({raw.get('detail-type', '?')})"


def _first_problems(error: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors()[:3]]
    return "; ".join(problems)
