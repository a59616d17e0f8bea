"""The application record: the one model of what swr stores per protected application.

Registration (how to rebuild the workload) and runtime state (where it runs now, who is
switching it) live in one DynamoDB item keyed by ``app``, so a single conditional write
can move both at once. ``version`` is the optimistic-concurrency counter every write checks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

AppName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]

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


class Fence(_Model):
    """Proof that an instance was isolated; a permit is only issued after one exists for
    the instance being replaced."""

    instance_id: str
    generation: int
    isolated_at: datetime
    security_group_id: str


class Permit(_Model):
    """The start permit the replacement's boot gate waits for."""

    generation: int
    instance_id: str
    task_token: str
    issued_at: datetime


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
    step_seconds: dict[str, float] = Field(default_factory=dict)
    cause: str | None = None

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
    lease_seconds: int = Field(default=3600, ge=300)

    # runtime
    state: AppState = AppState.NORMAL
    maintenance: Maintenance | None = None
    current_instance_id: str
    current_az: str
    generation: int = 0
    lease: Lease | None = None
    fence: Fence | None = None
    permit: Permit | None = None
    failure_cause: str | None = None
    recent_triggers: list[str] = Field(default_factory=list)
    history: list[FailoverSummary] = Field(default_factory=list)
    version: int = 0

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
