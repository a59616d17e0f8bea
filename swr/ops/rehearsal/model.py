"""What a rehearsal reports: Admit's verdict, the launch candidates, the checks, and the
failover it would run, step by step."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from handlers.core.record import AppState
from handlers.core.steps import Decision


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"  # worth knowing; a real drill would still proceed
    PROBLEM = "problem"  # a real drill would fail or be refused


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    detail: str


class AdmitVerdict(BaseModel):
    """What Admit would decide for a drill started now."""

    decision: Decision
    reason: str
    force: bool

    @property
    def proceeds(self) -> bool:
        return self.decision is Decision.PROCEED


class Candidate(BaseModel):
    """One choice launch would try, with what the account says about it."""

    az: str
    instance_type: str
    subnet_id: str
    usable: bool
    note: str = ""


class Rehearsal(BaseModel):
    app: str
    force: bool
    admit: AdmitVerdict
    admit_with_force: AdmitVerdict | None  # only when the drill asked without --force is refused
    state: AppState
    generation: int  # the replacement's
    old_instance_id: str
    old_az: str
    old_instance_state: str
    network_interfaces: list[str]
    blackhole_security_group_id: str
    target_group_arns: list[str]
    registered_in: list[str]  # target groups the old instance is in now
    image_id: str
    candidates: list[Candidate]
    run_request: dict[str, Any]  # RunInstances for the first usable candidate (the first one if none is)
    efs_file_system_id: str
    efs_mount_targets: dict[str, str]  # az -> mount target id
    shared_subnet_mount_targets: list[str]  # mount targets in the old instance's subnet
    fence_timeout_seconds: int
    alarm_names: list[str]
    checks: list[Check]

    @property
    def first_choice(self) -> Candidate | None:
        return next((c for c in self.candidates if c.usable), None)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.PROBLEM]

    @property
    def would_proceed(self) -> bool:
        """A real drill would be admitted and nothing found stands in its way."""
        return self.admit.proceeds and not self.problems

    def _shared_subnet_step(self) -> str:
        shared = ", ".join(self.shared_subnet_mount_targets)
        return f"; delete mount target {shared} (it shares the instance's subnet)" if shared else ""

    def steps(self) -> list[str]:
        """What would happen, in the workflow's order, one line each."""
        if not self.admit.proceeds:
            lines = [f"Admit would turn the drill away ({self.admit.decision}): {self.admit.reason}"]
            if self.admit_with_force is not None:
                verdict = self.admit_with_force
                lines.append(
                    "with --force it would proceed"
                    if verdict.proceeds
                    else f"--force would not help ({verdict.decision}): {verdict.reason}"
                )
            return lines
        groups = ", ".join(self.target_group_arns)
        interfaces = ", ".join(self.network_interfaces) or "none found"
        first = self.first_choice
        later = [c for c in self.candidates if c is not first]
        launch = (
            f"Launch a {first.instance_type} in {first.az} (subnet {first.subnet_id}) from {self.image_id}"
            f" as generation {self.generation}"
            if first is not None
            else f"Launch: no candidate can launch ({'; '.join(c.note for c in self.candidates) or 'none'})"
        )
        mount = self.efs_mount_targets.get(first.az, "no mount target") if first else "?"
        alarms = ", ".join(self.alarm_names) or "none"
        return [
            f"Admit: take the lease of {self.app} for generation {self.generation} (state {self.state} -> SWITCHING)",
            f"Cut {self.old_instance_id} in {self.old_az} ({self.old_instance_state}) off: deregister it from"
            f" {groups}; deny its addresses in the network ACLs of the mount targets' subnets"
            f"{self._shared_subnet_step()}; network interfaces {interfaces} into blackhole group"
            f" {self.blackhole_security_group_id}; terminate it (a forced stop if terminate is refused)",
            f"Confirm the cut: every path to {self.efs_file_system_id} and the clients cut, or"
            f" {self.old_instance_id} stopped or terminated; otherwise fail closed after"
            f" {self.fence_timeout_seconds} s",
            launch
            + (
                "; then, if that has no capacity: " + ", ".join(f"{c.instance_type} in {c.az}" for c in later)
                if later
                else ""
            ),
            f"Permit the replacement (generation {self.generation}); its boot gate mounts"
            f" {self.efs_file_system_id} through {mount} and starts RMS",
            f"Register it in {groups} and wait until it is healthy",
            f"Finalise: alarms {alarms} to the replacement, record NORMAL, lease released",
        ]
