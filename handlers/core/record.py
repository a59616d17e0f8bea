"""The application record: the one model of what swr stores per protected application.

Registration (how to rebuild the workload) and runtime state (where it runs now, who is
switching it) live in one DynamoDB item keyed by ``app``, so a single conditional write
can move both at once. ``version`` is the optimistic-concurrency counter every write checks.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, model_validator

# What an application may be called: the one definition for the control plane (a name check
# elsewhere uses this, not a copy); rms_hooks/config.py keeps a copy, as the instance-side
# hooks import nothing of the control plane.
APP_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
AppName = Annotated[str, StringConstraints(pattern=APP_NAME_PATTERN.pattern)]

RECENT_TRIGGERS_KEPT = 50
HISTORY_KEPT = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class AppState(StrEnum):
    NORMAL = "NORMAL"
    SWITCHING = "SWITCHING"
    FAILED = "FAILED"


class Maintenance(_Model):
    """Automatic failover suspended by an operator. Kept apart from ``state`` because it is
    orthogonal to it: a FAILED application can be put in maintenance while it is repaired,
    and ending maintenance must not make it look NORMAL."""

    since: datetime
    by: str
    reason: str


class LaunchSpec(_Model):
    """Everything needed to launch a replacement, recorded at registration so that a
    failover never has to read the failed instance (whose API may be impaired)."""

    image_id: str
    instance_types: list[str] = Field(min_length=1)
    security_group_ids: list[str] = Field(min_length=1)
    instance_profile_arn: str | None = None
    key_name: str | None = None
    user_data: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class SubnetChoice(_Model):
    az: str
    subnet_id: str


class EfsMount(_Model):
    file_system_id: str
    mount_point: str = "/mnt/swr"


class Lease(_Model):
    holder: str  # execution ARN
    acquired_at: datetime
    expires_at: datetime


class AclEntry(_Model):
    """A deny entry swr put in a network ACL to cut an instance's address off. Removed once the
    instance is terminated: its address goes back to the subnet and will be reused."""

    network_acl_id: str
    rule_number: int
    egress: bool
    cidr: str


class RemovedMountTarget(_Model):
    """A mount target in the fenced instance's own subnet, deleted to break its NFS session
    (network ACLs do not see traffic inside a subnet); created again once that is safe."""

    mount_target_id: str
    file_system_id: str
    subnet_id: str
    az: str
    security_groups: list[str] = Field(default_factory=list)


class OperatorConfirmation(_Model):
    """An operator's word that an instance is down, given where swr could not prove it (as
    Pacemaker's manual fence confirmation): who, why, when."""

    by: str
    reason: str
    at: datetime


class Fence(_Model):
    """How one instance is cut off from the shared data and the clients: what swr did to it,
    and when the cut was confirmed. A permit is issued only when every instance the failover
    replaces has a fence confirmed by that failover's execution."""

    instance_id: str
    execution: str  # the execution that fences it
    az: str
    subnet_id: str
    addresses: list[str] = Field(default_factory=list)
    started_at: datetime
    security_group_id: str
    isolated_at: datetime | None = None  # every interface in the blackhole group
    registered_in: list[str] = Field(default_factory=list)  # target groups it was (being) served by
    acl_entries: list[AclEntry] = Field(default_factory=list)
    removed_mount_targets: list[RemovedMountTarget] = Field(default_factory=list)
    power: str = ""  # what swr asked of EC2: "terminate", or "stop" once terminate was refused
    instance_state: str = ""  # as last seen
    unanswered: str | None = None  # the instance's AZ did not answer the last call about it: why
    attempts: list[str] = Field(default_factory=list)  # what did not work, last round
    confirmed_at: datetime | None = None
    confirmed_in: str | None = None  # the execution whose ConfirmFence saw every path cut
    cut: list[str] = Field(default_factory=list)  # how each path is cut, as last confirmed
    operator: OperatorConfirmation | None = None

    @property
    def holds_anything(self) -> bool:
        """Something in the account still stands for this fence and must be undone later."""
        return bool(self.acl_entries or self.removed_mount_targets)


class Permit(_Model):
    """The start permit the replacement's boot gate waits for. Its task token is not here, where
    every instance of the application can read it, but in the item ``token_key`` names, which
    only the permitted instance's credentials may read (see PermitToken)."""

    generation: int
    instance_id: str
    token_key: str = ""
    issued_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _without_an_old_token(cls, data: Any) -> Any:
        # A permit written before the token left the record (its task has long ended).
        if isinstance(data, dict) and "task_token" in data:
            data = {k: v for k, v in data.items() if k != "task_token"}
        return data


class PermitToken(_Model):
    """The permit's task token, stored under a key that IAM lets only the permitted instance
    read: ``<app>#permit#<aws:userid>``, where an instance role's aws:userid is
    ``<role id>:<instance id>`` (IAM User Guide, "IAM policy elements: Variables and tags").
    DynamoDB deletes it after ``expires_at`` (the table's time to live)."""

    key: str
    task_token: str
    instance_id: str
    generation: int
    expires_at: int  # epoch seconds: the table's TTL attribute

    @staticmethod
    def key_for(app: str, role_id: str, instance_id: str) -> str:
        return f"{app}{PERMIT_TOKEN_INFIX}{role_id}:{instance_id}"


PERMIT_TOKEN_INFIX = "#permit#"


class FailoverSummary(_Model):
    execution: str
    trigger: str
    outcome: Literal["recovered", "failed"]
    old_instance_id: str
    old_az: str
    new_instance_id: str | None = None
    new_az: str | None = None
    started_at: datetime
    finished_at: datetime
    attempts: int = 1
    # The failover's phases (failover_metrics.PHASES) and "total", in seconds. Records written
    # before the phases were so named call it step_seconds: read either, write phase_seconds.
    phase_seconds: dict[str, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("phase_seconds", "step_seconds")
    )
    cause: str | None = None
    fenced: list[str] = Field(default_factory=list)  # each replaced instance: its state, how it was cut off
    leftovers: list[str] = Field(default_factory=list)  # replaced instances EC2 never powered off

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class AppRecord(_Model):
    app: AppName

    # registration
    launch_spec: LaunchSpec
    subnets: list[SubnetChoice] = Field(min_length=2)  # order = preference
    target_group_arns: list[str] = Field(min_length=1)
    efs: EfsMount
    alarm_names: list[str] = Field(default_factory=list)
    blackhole_security_group_id: str
    health_timeout_seconds: int = Field(default=600, ge=30)
    # How long the fence may take to prove the old instance cut off before the failover fails
    # closed: fence_aws recommends 240-600 s fence timeouts; a 300 s deregistration delay fits.
    fence_timeout_seconds: int = Field(default=600, ge=60)
    lease_seconds: int = Field(default=3600, ge=300)

    # runtime
    state: AppState = AppState.NORMAL
    maintenance: Maintenance | None = None
    current_instance_id: str
    current_az: str
    current_since: datetime | None = None  # when a failover made it current (None: registered so)
    generation: int = 0
    lease: Lease | None = None
    fences: list[Fence] = Field(default_factory=list)  # until released; across failovers
    permit: Permit | None = None
    failure_cause: str | None = None
    recent_triggers: list[str] = Field(default_factory=list)
    history: list[FailoverSummary] = Field(default_factory=list)
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _before_fences(cls, data: Any) -> Any:
        # Records written before fences were a list kept one proof of isolation under "fence".
        if isinstance(data, dict) and "fence" in data:
            return {key: value for key, value in data.items() if key != "fence"}
        return data

    def fence_of(self, instance_id: str) -> Fence | None:
        return next((f for f in self.fences if f.instance_id == instance_id), None)

    def lease_held_by(self, execution: str) -> bool:
        return self.lease is not None and self.lease.holder == execution

    def azs_in_preference_order(self) -> list[str]:
        seen: list[str] = []
        for choice in self.subnets:
            if choice.az not in seen:
                seen.append(choice.az)
        return seen

    def subnets_in(self, az: str) -> list[str]:
        return [c.subnet_id for c in self.subnets if c.az == az]

    def remember_trigger(self, trigger_id: str) -> None:
        self.recent_triggers = [*self.recent_triggers, trigger_id][-RECENT_TRIGGERS_KEPT:]

    def add_history(self, summary: FailoverSummary) -> None:
        self.history = [*self.history, summary][-HISTORY_KEPT:]
