"""Models of the execution's state document: what each step reads and returns.

The ASL keeps one document per execution; each step reads what it needs from it and its
result lands at the ``ResultPath`` named beside each model.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers.core.triggers import Trigger


class _Step(BaseModel):
    # A step reads its part of the larger state document and ignores the rest.
    model_config = ConfigDict(extra="ignore")


class Decision(StrEnum):
    PROCEED = "proceed"
    IGNORE = "ignore"
    IN_PROGRESS = "in_progress"
    RELEASE = "release"  # a fenced instance is gone: undo what its fence holds (no lease)


class Route(StrEnum):
    """The state Decide sends an admitted failover to (statemachine/failover.asl.json): the
    start, or for a resumed failover the step it continues at (handlers/core/resumption.py)."""

    FENCE_AND_LAUNCH = "FenceAndLaunch"
    REGISTER_TARGETS = "RegisterTargets"
    ROLLBACK_REPLACEMENT = "RollbackReplacement"


class FailoverPlan(_Step):
    """$.plan: what this failover replaces, and which launch attempt it is on."""

    generation: int
    old_instance_id: str
    failed_az: str
    started_at: datetime
    attempt: int = 1
    tried_azs: list[str] = Field(default_factory=list)
    # Replacements this failover rolled back: fenced like the old instance before any permit.
    rolled_back: list[str] = Field(default_factory=list)

    @property
    def to_fence(self) -> list[str]:
        """Every instance to cut off before the next replacement may start the workload."""
        return list(dict.fromkeys([self.old_instance_id, *self.rolled_back]))


class AdmitInput(_Step):
    trigger: Any = None
    execution: str = Field(min_length=1)
    execution_name: str = Field(min_length=1)


class Admission(_Step):
    """The state document after Admit ($)."""

    app: str | None
    execution: str
    decision: Decision
    reason: str
    trigger: Trigger
    plan: FailoverPlan | None = None
    route: Route = Route.FENCE_AND_LAUNCH
    # Carried over from a stopped execution when a resume continues past the start.
    takeover: Takeover | None = None
    boot: BootReport | None = None
    error: StepError | None = None


class CutOff(BaseModel):
    """What one round of CutOffInstances did to one instance, and what did not work."""

    instance_id: str
    state: str
    done: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class CutOffRound(_Step):
    """$.cutoff in the fence branch."""

    instances: list[CutOff]


class PathCut(BaseModel):
    """One way an instance reaches the shared data or the clients, and whether it is cut."""

    path: str  # "efs via fsmt-... (address)", "clients via <target group>"
    cut: bool
    how: str
    settling: bool = False  # not cut yet, but AWS is completing the cut (draining, a mount target deleting)


class InstanceCut(BaseModel):
    instance_id: str
    state: str
    cut: bool
    paths: list[PathCut] = Field(default_factory=list)
    note: str = ""  # powered off, or an operator's confirmation: then no path needs looking at

    def summary(self) -> str:
        if self.note:
            return f"{self.instance_id}: {self.note}"
        return f"{self.instance_id}: " + "; ".join(f"{p.path}: {p.how}" for p in self.paths)


class FenceReport(_Step):
    """$.fence in the fence branch (ConfirmFence), $.takeover.fence after it."""

    instances: list[InstanceCut] = Field(default_factory=list)
    confirmed: bool = False
    confirmed_at: datetime | None = None
    rounds: int = 0
    impaired_rounds: int = 0  # rounds in a row in which AWS did not answer about an instance
    next_round_in: int = 5  # seconds WaitForFence waits before the next round
    cut_again: bool = True  # the next round starts with CutOffInstances (else with ConfirmFence)


class Replacement(_Step):
    """$.replacement in the launch branch, $.takeover.replacement after it."""

    instance_id: str
    az: str
    subnet_id: str
    instance_type: str
    generation: int
    attempt: int
    client_token: str
    launched_at: datetime
    running_deadline: datetime
    state: str
    running_at: datetime | None = None
    skipped: list[str] = Field(default_factory=list)  # "az/type: reason" for each refusal


class Takeover(_Step):
    fence: FenceReport
    replacement: Replacement


class BootReport(_Step):
    """$.boot: what the replacement's boot gate reported with the task token."""

    instance_id: str
    az: str
    generation: int
    file_system_id: str
    mount_point: str
    mounted_at: datetime
    started_at: datetime


class HealthCheck(_Step):
    """$.health: target registration and the health poll."""

    instance_id: str
    target_group_arns: list[str]
    registered_at: datetime
    deadline: datetime
    healthy: bool = False
    healthy_at: datetime | None = None
    target_states: dict[str, str] = Field(default_factory=dict)
    checks: int = 0


class StepError(BaseModel):
    """$.error, as written by a Catch."""

    Error: str
    Cause: str = ""

    @field_validator("Cause", mode="before")
    @classmethod
    def _no_cause(cls, value: object) -> object:
        # A callback failure may carry no cause at all (SendTaskFailure without one).
        return "(no cause given)" if value is None else value


def readable_cause(cause: str | None) -> str:
    """A Lambda failure's Cause is the runtime's JSON report: its message is what a person
    reads (FailFailover's own cause quotes it, the control plane's timeline and report show it)."""
    if not cause:
        return ""
    try:
        report = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(report, dict) and report.get("errorMessage"):
        return str(report["errorMessage"])
    return cause


class StepInput(_Step):
    """The common part every step after Admit receives."""

    app: str
    execution: str
    plan: FailoverPlan


class FenceInput(StepInput):
    cutoff: CutOffRound | None = None  # the last round's, once there was one
    fence: FenceReport | None = None


class ReplacementInput(_Step):
    app: str
    execution: str
    replacement: Replacement


class TakeoverInput(StepInput):
    takeover: Takeover


class PermitInput(TakeoverInput):
    task_token: str = Field(min_length=1)


class RegisterInput(TakeoverInput):
    boot: BootReport  # the answer to the permit's task token


class HealthInput(TakeoverInput):
    health: HealthCheck


class FinaliseInput(TakeoverInput):
    trigger: Trigger
    boot: BootReport
    health: HealthCheck


class RollbackInput(StepInput):
    takeover: Takeover
    error: StepError


class FailInput(_Step):
    app: str
    execution: str
    trigger: Trigger | None = None
    plan: FailoverPlan | None = None
    takeover: Takeover | None = None
    error: StepError


class FailoverOutcome(BaseModel):
    app: str
    execution: str
    outcome: str
    old_instance_id: str
    old_az: str
    new_instance_id: str | None = None
    new_az: str | None = None
    generation: int
    duration_seconds: float
    phase_seconds: dict[str, float] = Field(default_factory=dict)  # failover_metrics.PHASES and "total"
    fenced: list[str] = Field(default_factory=list)  # each replaced instance: its state, how it was cut off
    leftovers: list[str] = Field(default_factory=list)  # replaced instances still running: terminate them
    error: str | None = None
    cause: str | None = None


class ReleaseInput(_Step):
    app: str
    execution: str


class ReleaseReport(BaseModel):
    """$.released: what ReleaseFences undid, and the fences that still hold something."""

    released: list[str] = Field(default_factory=list)
    held: list[str] = Field(default_factory=list)
