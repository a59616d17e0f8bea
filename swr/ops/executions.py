"""Failover executions as an operator sees them: start a drill, find the executions that
concern an application, wait for one to finish, and say in a few words how it ended.

Knows nothing of the command line: it takes a Step Functions client and returns models;
the caller turns AWS errors into messages.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from swr.timeline import Timeline, build_timeline, describe_failure, fetch_history, warped
from swr.trigger_input import app_of, kind_of

EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):\d{12}:(?:express|execution):[^:]+:[^:]+$")
# Step Functions' rule for execution names (80 characters, none of these).
EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}$")


class BadExecution(ValueError):
    """Neither an execution ARN nor an execution name."""


class StillRunning(TimeoutError):
    """The execution did not finish in the time the operator was willing to wait."""


@dataclass(frozen=True)
class ExecutionRef:
    """An execution as the operator named it: by ARN (which names its region) or by name
    within the failover state machine."""

    arn: str | None
    name: str | None

    @property
    def region(self) -> str | None:
        match = EXECUTION_ARN.match(self.arn or "")
        return match.group("region") if match else None

    def arn_within(self, state_machine_arn: str) -> str:
        if self.arn:
            return self.arn
        # arn:aws:states:R:A:stateMachine:M -> arn:aws:states:R:A:execution:M:NAME
        return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{self.name}"


def parse_execution(given: str) -> ExecutionRef:
    given = given.strip()
    if EXECUTION_ARN.match(given):
        return ExecutionRef(arn=given, name=None)
    if given.startswith("arn:"):
        raise BadExecution(
            f"not an execution ARN: {given!r} (expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)"
        )
    if not EXECUTION_NAME.match(given):
        raise BadExecution(f"neither an execution ARN nor an execution name: {given!r}")
    return ExecutionRef(arn=None, name=given)


# --- drills -------------------------------------------------------------------------------------
def drill_name(app: str, now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"drill-{app[: 80 - len('drill--') - len(stamp)]}-{stamp}"


def start_drill(
    sfn: Any, state_machine_arn: str, app: str, *, reason: str, requested_by: str, force: bool, now: datetime
) -> str:
    """Start a drill: the same execution an RMS fault starts, with the drill's trigger."""
    payload = {"kind": "drill", "app": app, "reason": reason, "requested_by": requested_by, "force": force}
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=drill_name(app, now), input=json.dumps(payload)
    )
    return str(started["executionArn"])


# --- reading executions -------------------------------------------------------------------------
class ExecutionRow(BaseModel):
    """One execution in a listing."""

    name: str | None
    execution_arn: str
    status: str
    started_at: str
    duration_seconds: float
    trigger: str
    result: str


def json_object(text: Any) -> dict[str, Any]:
    """A JSON object given as text (an execution's input or output), or {}."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def output_of(described: dict[str, Any]) -> dict[str, Any]:
    return json_object(described.get("output"))


def recent_executions(
    sfn: Any, state_machine_arn: str, app: str, *, scan: int, limit: int, warp: float
) -> tuple[list[ExecutionRow], int]:
    """The most recent executions that concern APP (at most ``limit``, looking at the
    ``scan`` most recent), and how many were looked at."""
    listed: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        listed.extend(page.get("executions", []))
        if len(listed) >= scan:
            break
    listed.sort(key=lambda e: e["startDate"], reverse=True)
    rows: list[ExecutionRow] = []
    for execution in listed[:scan]:
        described = dict(sfn.describe_execution(executionArn=str(execution["executionArn"])))
        if concerns(sfn, described, app):
            rows.append(row_of(described, warp))
            if len(rows) >= limit:
                break
    return rows, len(listed[:scan])


def concerns(sfn: Any, described: dict[str, Any], app: str) -> bool:
    """Whether the execution is about APP: by its input (a drill, an RMS fault event, a
    heartbeat alarm's App dimension), by what Admit decided, or by its output."""
    trigger = json_object(described.get("input"))
    if app_of(trigger) == app or output_of(described).get("app") == app:
        return True
    if described["status"] == "SUCCEEDED":
        return False  # a finished execution's output names its app when Admit knew it
    # Failed or still running: Admit's result is in the history (an alarm or EC2 event
    # names an instance, and only Admit knows whose it is).
    for event in fetch_history(sfn, str(described["executionArn"])):
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") == "Admit":
            return bool(json_object(exited.get("output")).get("app") == app)
    return False


def row_of(described: dict[str, Any], warp: float = 1.0) -> ExecutionRow:
    started: datetime = described["startDate"]
    stopped: datetime | None = described.get("stopDate")
    end = stopped or datetime.now(started.tzinfo or UTC)
    return ExecutionRow(
        name=described.get("name"),
        execution_arn=str(described["executionArn"]),
        status=str(described["status"]),
        started_at=started.astimezone(UTC).isoformat(timespec="seconds"),
        duration_seconds=round((end - started).total_seconds() * warp, 1),
        trigger=kind_of(json_object(described.get("input"))),
        result=summary(described),
    )


def summary(described: dict[str, Any]) -> str:
    """The decision or the outcome, in a few words."""
    status = described["status"]
    output = output_of(described)
    if status == "SUCCEEDED":
        if output.get("outcome") == "recovered":
            return f"recovered on {output.get('new_instance_id')} in {output.get('new_az')}"
        if output.get("decision"):
            return f"{output['decision']}: {output.get('reason', '')}".rstrip(": ")
        return "succeeded"
    if status == "RUNNING":
        return "running"
    return f"{status.lower()}: {describe_failure(described.get('error'), described.get('cause'))}"


def recovered(described: dict[str, Any]) -> bool:
    return described["status"] == "SUCCEEDED" and output_of(described).get("outcome") == "recovered"


def wait_for(sfn: Any, arn: str, *, timeout: float, interval: float, on_state: Callable[[str], None]) -> dict[str, Any]:
    """Describe the execution until it ends; ``on_state`` hears each state it enters, once."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while True:
        described = dict(sfn.describe_execution(executionArn=arn))
        for event in fetch_history(sfn, arn):
            details = event.get("stateEnteredEventDetails")
            if details and int(event["id"]) not in seen:
                seen.add(int(event["id"]))
                on_state(str(details.get("name")))
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise StillRunning(f"still running after {timeout:.0f} s: {arn}")
        time.sleep(interval)


def timeline_of(sfn: Any, arn: str, warp: float) -> Timeline:
    """The execution's timeline; with an emulator's ``warp``, in its simulated seconds."""
    described = sfn.describe_execution(executionArn=arn)
    return build_timeline(described, fetch_history(sfn, arn), warped(described["startDate"], warp))


def trigger_line(timeline: Timeline) -> str:
    trigger = timeline.input if isinstance(timeline.input, dict) else {}
    return f"trigger: {kind_of(trigger)}" + (f" for {app_of(trigger)}" if app_of(trigger) else "")


def ending_line(timeline: Timeline) -> str | None:
    output = timeline.output if isinstance(timeline.output, dict) else {}
    if output.get("decision"):
        return f"  decision: {output['decision']}: {output.get('reason', '')}"
    if output.get("outcome"):
        return (
            f"  outcome: {output['outcome']}: {output.get('old_instance_id')} ({output.get('old_az')})"
            f" -> {output.get('new_instance_id')} ({output.get('new_az')})"
        )
    return None
