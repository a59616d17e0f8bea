"""A Step Functions execution as a timeline of the states it went through.

Built from ``DescribeExecution`` and ``GetExecutionHistory`` only, so it works against AWS,
the embedded emulator or any other endpoint. Each state entered becomes one step with its
times, the retries seen (a failed attempt followed by a re-schedule), and the error and
cause when it failed. The emulator runs time warped: pass ``to_simulated`` to read the
history's wall-clock timestamps as simulated seconds; on AWS leave it out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from handlers.core.steps import readable_cause

ToSimulated = Callable[[datetime], float]

CONTAINERS = frozenset({"Parallel", "Map"})
# Events that start one attempt of a Task (a Retry re-schedules; a Catch does not).
SCHEDULED = frozenset({"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"})
SUCCEEDED = frozenset({"LambdaFunctionSucceeded", "TaskSucceeded", "ActivitySucceeded"})
# Events that end one attempt of a Task in failure; their details carry error and cause.
ATTEMPT_FAILED = frozenset(
    {
        "LambdaFunctionFailed",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStartFailed",
        "LambdaFunctionTimedOut",
        "TaskFailed",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "TaskTimedOut",
        "ActivityFailed",
        "ActivityScheduleFailed",
        "ActivityTimedOut",
    }
)
CONTAINER_FAILED = frozenset({"ParallelStateFailed", "MapStateFailed", "ParallelStateAborted", "MapStateAborted"})
EXECUTION_ENDED = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})


class StepStatus(StrEnum):
    OK = "ok"
    CAUGHT = "caught"  # failed, and a Catch took the execution on to another state
    FAILED = "failed"  # the execution ended here
    RUNNING = "running"
    ABORTED = "aborted"  # the execution was stopped or timed out while in this state


class Step(BaseModel):
    name: str
    type: str  # Task, Parallel, Wait, Choice, Pass, Succeed, Fail, Map
    depth: int = 0  # 0 at the top level, +1 inside each Parallel/Map branch
    parent: str | None = None
    entered_at: datetime
    exited_at: datetime | None = None
    offset_seconds: float  # from the start of the execution
    duration_seconds: float | None = None
    attempts: int = 0  # Task attempts scheduled
    retries: int = 0  # attempts that followed a failed one
    retried_errors: list[str] = Field(default_factory=list)  # the error of each failed attempt that was retried
    status: StepStatus = StepStatus.RUNNING
    error: str | None = None
    cause: str | None = None


class Timeline(BaseModel):
    execution_arn: str
    name: str
    state_machine_arn: str | None = None
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    clock: Literal["simulated", "wall"]
    started_at: datetime
    stopped_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    cause: str | None = None
    input: Any = None
    output: Any = None
    steps: list[Step] = Field(default_factory=list)

    @property
    def retries(self) -> int:
        return sum(step.retries for step in self.steps)

    def render(self) -> list[str]:
        return render(self)


# --- fetching -----------------------------------------------------------------------------
def fetch_timeline(sfn: Any, execution_arn: str, to_simulated: ToSimulated | None = None) -> Timeline:
    """Describe the execution and read its whole history (every page) with a boto3 client."""
    described = sfn.describe_execution(executionArn=execution_arn)
    return build_timeline(described, fetch_history(sfn, execution_arn), to_simulated)


def fetch_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        # The paginator would do, but a plain loop also works with clients built without
        # the service's paginator model (and with endpoints that ignore maxResults).
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token:
            return events


def warped(start: datetime, warp: float) -> ToSimulated | None:
    """An emulator endpoint runs ``warp`` times faster than the wall clock: anchored at the
    execution's start, its history reads in simulated seconds. None on AWS (warp 1)."""
    if warp == 1.0:
        return None
    anchor = start.timestamp()

    def to_simulated(wall: datetime) -> float:
        return anchor + (wall.timestamp() - anchor) * warp

    return to_simulated


# --- building -----------------------------------------------------------------------------
class _Open:
    """A step being built, with what the next events need to attach to it."""

    def __init__(self, step: Step, parent: _Open | None, entered: float) -> None:
        self.step = step
        self.parent = parent
        self.entered = entered
        self.exited: float | None = None
        self.last_attempt_failed = False

    @property
    def is_open(self) -> bool:
        return self.exited is None


def build_timeline(
    described: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    to_simulated: ToSimulated | None = None,
) -> Timeline:
    """The timeline of one execution from its description and its history events."""

    def seconds(when: datetime) -> float:
        return to_simulated(when) if to_simulated is not None else when.timestamp()

    ordered = sorted(events, key=lambda e: int(e.get("id", 0)))
    start_dt = described.get("startDate") or (ordered[0]["timestamp"] if ordered else datetime.now(UTC))
    start = seconds(start_dt)
    steps: list[_Open] = []
    owner: dict[int, _Open] = {}  # event id -> the step the event belongs to
    ended_at: float | None = None
    ended_error: tuple[str | None, str | None] = (None, None)

    def via_previous(event: Mapping[str, Any]) -> _Open | None:
        return owner.get(int(event.get("previousEventId") or 0))

    def close(entry: _Open, at: float) -> None:
        entry.exited = at
        if entry.step.error is not None or entry.last_attempt_failed:
            entry.step.status = StepStatus.CAUGHT
        elif entry.step.status is StepStatus.RUNNING:
            entry.step.status = StepStatus.OK
        if entry.step.type in CONTAINERS:
            # A branch failed and the container was caught: the other branches were stopped.
            for inner in steps:
                if inner.is_open and _inside(inner, entry):
                    inner.exited = at
                    inner.step.status = StepStatus.CAUGHT if inner.step.error else StepStatus.ABORTED

    for event in ordered:
        kind = str(event.get("type", ""))
        event_id = int(event.get("id", 0))
        at = seconds(event["timestamp"])

        if kind.endswith("StateEntered") and "stateEnteredEventDetails" in event:
            previous = via_previous(event)
            parent: _Open | None = None
            if previous is not None:
                if previous.is_open and previous.step.type in CONTAINERS:
                    parent = previous  # the first state of a branch or iteration
                else:
                    parent = previous.parent
                    if previous.is_open and previous.step.type not in CONTAINERS:
                        # No Exited event before the next state (a Catch, on some endpoints).
                        close(previous, at)
            type_name = kind[: -len("StateEntered")] or "State"
            step = Step(
                name=str(event["stateEnteredEventDetails"].get("name", "?")),
                type=type_name,
                depth=parent.step.depth + 1 if parent else 0,
                parent=parent.step.name if parent else None,
                entered_at=_utc(at),
                offset_seconds=round(at - start, 3),
            )
            entry = _Open(step, parent, at)
            steps.append(entry)
            owner[event_id] = entry

        elif kind.endswith("StateExited") and "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"].get("name")
            found = _latest_open(steps, name=name)
            if found is not None:
                close(found, at)
                owner[event_id] = found

        elif kind in SCHEDULED or kind in SUCCEEDED or kind in ATTEMPT_FAILED or kind.startswith(("Task", "Lambda")):
            found = via_previous(event) or _latest_open(steps, type_="Task")
            if found is None:
                continue
            owner[event_id] = found
            step = found.step
            if kind in SCHEDULED:
                step.attempts += 1
                if found.last_attempt_failed:
                    step.retries += 1
                    step.retried_errors.append(step.error or "?")
                    step.error = step.cause = None
                found.last_attempt_failed = False
            elif kind in SUCCEEDED:
                found.last_attempt_failed = False
                step.error = step.cause = None
            elif kind in ATTEMPT_FAILED:
                found.last_attempt_failed = True
                step.error, step.cause = _error_and_cause(event, kind)

        elif kind in CONTAINER_FAILED:
            container_type = "Parallel" if kind.startswith("Parallel") else "Map"
            found = _latest_open(steps, type_=container_type)
            if found is not None:
                owner[event_id] = found
                failed_child = next((s for s in reversed(steps) if s.parent is found and s.step.error), None)
                if failed_child is not None:
                    found.step.error, found.step.cause = failed_child.step.error, failed_child.step.cause
                elif found.step.error is None:
                    found.step.error = "States.Aborted" if "Aborted" in kind else "States.BranchFailed"
                found.last_attempt_failed = True

        elif kind.startswith(("Parallel", "Map")):  # ...Started, ...Succeeded, MapIteration*
            container_type = "Parallel" if kind.startswith("Parallel") else "Map"
            found = _latest_open(steps, type_=container_type)
            if found is not None:
                owner[event_id] = found

        elif kind in EXECUTION_ENDED:
            ended_at = at
            if kind != "ExecutionSucceeded":
                ended_error = _error_and_cause(event, kind)

    status = str(described.get("status") or _status_from(ordered))
    stop_dt = described.get("stopDate")
    stopped = seconds(stop_dt) if stop_dt is not None else ended_at
    error = described.get("error") or ended_error[0]
    cause = described.get("cause") or ended_error[1]

    if status != "RUNNING":
        _settle_open_steps(steps, status, stopped, error, cause)
    for entry in steps:
        step = entry.step
        if entry.exited is not None:
            step.exited_at = _utc(entry.exited)
            step.duration_seconds = round(entry.exited - entry.entered, 3)

    return Timeline(
        execution_arn=str(described.get("executionArn", "")),
        name=str(described.get("name") or str(described.get("executionArn", "")).rsplit(":", 1)[-1]),
        state_machine_arn=described.get("stateMachineArn"),
        status=status,
        clock="simulated" if to_simulated is not None else "wall",
        started_at=_utc(start),
        stopped_at=_utc(stopped) if stopped is not None else None,
        duration_seconds=round(stopped - start, 3) if stopped is not None else None,
        error=error,
        cause=cause,
        input=_json(described.get("input")),
        output=_json(described.get("output")),
        steps=[entry.step for entry in steps],
    )


def _latest_open(steps: list[_Open], *, name: str | None = None, type_: str | None = None) -> _Open | None:
    for candidate in reversed(steps):
        if candidate.is_open and name in (None, candidate.step.name) and type_ in (None, candidate.step.type):
            return candidate
    return None


def _inside(entry: _Open, container: _Open) -> bool:
    parent = entry.parent
    while parent is not None:
        if parent is container:
            return True
        parent = parent.parent
    return False


def _settle_open_steps(steps: list[_Open], status: str, stopped: float | None, error: Any, cause: Any) -> None:
    """Give the states still open when the execution ended their status: the one that failed
    it, the containers around it, and the rest stopped with it."""
    still_open = [s for s in steps if s.is_open]
    for entry in still_open:
        entry.exited = stopped if stopped is not None else entry.entered
    if status == "SUCCEEDED":
        for entry in still_open:  # Succeed states and ends of branches have no Exited event
            entry.step.status = StepStatus.OK
        return
    if status != "FAILED":
        for entry in still_open:
            entry.step.status = StepStatus.ABORTED
        return
    leaves = [s for s in still_open if s.step.type not in CONTAINERS]
    culprits = [s for s in leaves if s.step.error or s.last_attempt_failed or s.step.type == "Fail"]
    if not culprits and leaves:
        culprits = [leaves[-1]]
    for entry in still_open:
        if entry in culprits or entry.step.type in CONTAINERS:
            entry.step.status = StepStatus.FAILED
            if entry.step.error is None:
                entry.step.error, entry.step.cause = error, cause
        else:
            entry.step.status = StepStatus.ABORTED


def _error_and_cause(event: Mapping[str, Any], kind: str) -> tuple[str | None, str | None]:
    # The details key follows the event type: TaskFailed -> taskFailedEventDetails.
    details = event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}
    return details.get("error"), details.get("cause")


def _status_from(events: list[Mapping[str, Any]]) -> str:
    for event in reversed(events):
        kind = str(event.get("type", ""))
        if kind in EXECUTION_ENDED:
            return {
                "ExecutionSucceeded": "SUCCEEDED",
                "ExecutionFailed": "FAILED",
                "ExecutionAborted": "ABORTED",
                "ExecutionTimedOut": "TIMED_OUT",
            }[kind]
    return "RUNNING"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- rendering ----------------------------------------------------------------------------
def describe_failure(error: str | None, cause: str | None) -> str:
    message = readable_cause(cause)
    if error and message:
        return f"{error}: {message}"
    return error or message or "no error recorded"


def indented(text: str, first: str, rest: str | None = None) -> list[str]:
    """A possibly multi-line message (a validation error, a stack) kept inside its column."""
    lines = text.splitlines() or [""]
    rest = first if rest is None else rest
    return [first + lines[0]] + [rest + line for line in lines[1:]]


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def status_text(step: Step) -> str:
    text = step.status.value
    if step.retries:
        errors = ", ".join(dict.fromkeys(step.retried_errors))
        text += f" after {step.retries} {'retry' if step.retries == 1 else 'retries'} ({errors})"
    return text


def render(timeline: Timeline) -> list[str]:
    """Text lines: one per state, ``+ 12.0s  CutOffInstances  3.1s  ok``, failures with
    their error and cause, then the total."""
    lines = [heading(timeline)]
    if not timeline.steps:
        lines.append("  (no states entered yet)")
    names = [("  " * s.depth) + s.name for s in timeline.steps]
    name_width = max((len(n) for n in names), default=0)
    offset_width = max((len(f"{s.offset_seconds:.1f}") for s in timeline.steps), default=1)
    duration_width = max((len(seconds_text(s.duration_seconds)) for s in timeline.steps), default=1)
    for step, name in zip(timeline.steps, names, strict=True):
        lines.append(
            f"  + {step.offset_seconds:>{offset_width}.1f}s  {name:<{name_width}}  "
            f"{seconds_text(step.duration_seconds):>{duration_width}}  {status_text(step)}"
        )
        if shows_failure(step):
            indent = " " * (6 + offset_width + 2 * (step.depth + 1))
            lines += indented(describe_failure(step.error, step.cause), indent)
    return lines + ending(timeline)


def heading(timeline: Timeline) -> str:
    clock = "simulated seconds" if timeline.clock == "simulated" else "seconds"
    return f"execution {timeline.name}  {timeline.status}  ({clock} from its start)"


def shows_failure(step: Step) -> bool:
    return step.status in (StepStatus.FAILED, StepStatus.CAUGHT) or bool(
        step.error and step.status is StepStatus.RUNNING
    )


def ending(timeline: Timeline) -> list[str]:
    """The total, the retries, and the execution's own error and cause."""
    if timeline.duration_seconds is not None:
        total = f"  total {timeline.duration_seconds:.1f}s  {timeline.status}"
    else:
        total = f"  {timeline.status} (not finished)"
    if timeline.retries:
        total += f"  ({timeline.retries} {'retry' if timeline.retries == 1 else 'retries'})"
    lines = [total]
    if timeline.status not in ("SUCCEEDED", "RUNNING") or timeline.error:
        lines.append(f"  error: {timeline.error or '(none recorded)'}")
        lines += indented(readable_cause(timeline.cause) or "(none recorded)", "  cause: ", "         ")
    return lines
