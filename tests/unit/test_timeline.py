"""The step timeline, on histories written by hand in the shape of GetExecutionHistory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from swr.timeline import StepStatus, Timeline, build_timeline, fetch_timeline, readable_cause

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
ARN = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:rms-1"
MACHINE = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:swr-failover"
FUNCTION = "arn:aws:lambda:ap-northeast-1:123456789012:function:swr-"


class History:
    """Appends events the way Step Functions numbers and links them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, at: float, kind: str, previous: int = 0, **details: Any) -> int:
        event: dict[str, Any] = {
            "timestamp": T0 + timedelta(seconds=at),
            "type": kind,
            "id": len(self.events) + 1,
            "previousEventId": previous,
        }
        event.update(details)
        self.events.append(event)
        return int(event["id"])

    def entered(self, at: float, state_type: str, name: str, previous: int) -> int:
        details = {"name": name, "input": "{}", "inputDetails": {"truncated": False}}
        return self.add(at, f"{state_type}StateEntered", previous, stateEnteredEventDetails=details)

    def exited(self, at: float, state_type: str, name: str, previous: int) -> int:
        details = {"name": name, "output": "{}", "outputDetails": {"truncated": False}}
        return self.add(at, f"{state_type}StateExited", previous, stateExitedEventDetails=details)

    def lambda_task(self, at: float, name: str, previous: int, took: float, failures: list[str] | None = None) -> int:
        """A Task on a bare Lambda ARN: each failure is followed by a retry, then success."""
        entered = self.entered(at, "Task", name, previous)
        last = entered
        for error in failures or []:
            scheduled = self.add(
                at, "LambdaFunctionScheduled", last, lambdaFunctionScheduledEventDetails={"resource": FUNCTION + name}
            )
            started = self.add(at, "LambdaFunctionStarted", scheduled)
            last = self.add(
                at + 0.5,
                "LambdaFunctionFailed",
                started,
                lambdaFunctionFailedEventDetails={"error": error, "cause": _cause(error, "try again")},
            )
            at += 2.0
        scheduled = self.add(
            at, "LambdaFunctionScheduled", last, lambdaFunctionScheduledEventDetails={"resource": FUNCTION + name}
        )
        started = self.add(at, "LambdaFunctionStarted", scheduled)
        done = self.add(
            at + took, "LambdaFunctionSucceeded", started, lambdaFunctionSucceededEventDetails={"output": "{}"}
        )
        return self.exited(at + took, "Task", name, done)


def _cause(error: str, message: str) -> str:
    return json.dumps({"errorType": error, "errorMessage": message, "stackTrace": ["  File ..."]})


def described(status: str, stop: float | None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "executionArn": ARN,
        "stateMachineArn": MACHINE,
        "name": "rms-1",
        "status": status,
        "startDate": T0,
        "input": json.dumps({"detail-type": "RMS Fault", "detail": {"app": "demo"}}),
    }
    if stop is not None:
        result["stopDate"] = T0 + timedelta(seconds=stop)
    result.update(extra)
    return result


def recovered_history() -> History:
    """Admit, Decide, the Parallel fence/launch (isolate retried once), waits, the permit
    callback, register, a health poll loop, finalise, Recovered."""
    h = History()
    start = h.add(0.0, "ExecutionStarted", executionStartedEventDetails={"input": "{}"})
    admit = h.lambda_task(0.1, "Admit", start, took=0.4)
    decide = h.entered(0.5, "Choice", "Decide", admit)
    decide = h.exited(0.5, "Choice", "Decide", decide)
    parallel = h.entered(0.6, "Parallel", "FenceAndLaunch", decide)
    branches = h.add(0.6, "ParallelStateStarted", parallel)
    # The two branches interleave; previousEventId keeps each on its own thread.
    isolate = h.entered(0.7, "Task", "IsolateOldInstance", branches)
    launch = h.entered(0.7, "Task", "LaunchReplacement", branches)
    s1 = h.add(0.7, "LambdaFunctionScheduled", isolate, lambdaFunctionScheduledEventDetails={"resource": "x"})
    s2 = h.add(0.7, "LambdaFunctionScheduled", launch, lambdaFunctionScheduledEventDetails={"resource": "y"})
    st1 = h.add(0.8, "LambdaFunctionStarted", s1)
    st2 = h.add(0.8, "LambdaFunctionStarted", s2)
    failed = h.add(
        1.0,
        "LambdaFunctionFailed",
        st1,
        lambdaFunctionFailedEventDetails={"error": "AwsThrottled", "cause": _cause("AwsThrottled", "throttled")},
    )
    ok2 = h.add(2.0, "LambdaFunctionSucceeded", st2, lambdaFunctionSucceededEventDetails={"output": "{}"})
    h.exited(2.0, "Task", "LaunchReplacement", ok2)
    s1b = h.add(3.0, "LambdaFunctionScheduled", failed, lambdaFunctionScheduledEventDetails={"resource": "x"})
    st1b = h.add(3.0, "LambdaFunctionStarted", s1b)
    ok1 = h.add(4.1, "LambdaFunctionSucceeded", st1b, lambdaFunctionSucceededEventDetails={"output": "{}"})
    isolate_done = h.exited(4.1, "Task", "IsolateOldInstance", ok1)
    terminate = h.lambda_task(4.2, "TerminateOldInstance", isolate_done, took=0.3)
    gone = h.entered(4.5, "Choice", "OldInstanceGone?", terminate)
    gone = h.exited(4.5, "Choice", "OldInstanceGone?", gone)
    fenced = h.entered(4.5, "Pass", "OldInstanceFenced", gone)
    fenced = h.exited(4.5, "Pass", "OldInstanceFenced", fenced)
    h.add(4.6, "ParallelStateSucceeded", fenced)
    parallel_done = h.exited(4.6, "Parallel", "FenceAndLaunch", fenced)
    wait = h.entered(4.6, "Wait", "WaitForReplacementBoot", parallel_done)
    wait = h.exited(19.6, "Wait", "WaitForReplacementBoot", wait)
    # A service integration with a callback: TaskScheduled/Started/Submitted, then Succeeded.
    permit = h.entered(19.7, "Task", "IssuePermit", wait)
    scheduled = h.add(
        19.7,
        "TaskScheduled",
        permit,
        taskScheduledEventDetails={"resourceType": "lambda", "resource": "invoke.waitForTaskToken"},
    )
    started = h.add(19.7, "TaskStarted", scheduled, taskStartedEventDetails={"resourceType": "lambda"})
    submitted = h.add(19.8, "TaskSubmitted", started, taskSubmittedEventDetails={"resourceType": "lambda"})
    done = h.add(80.0, "TaskSucceeded", submitted, taskSucceededEventDetails={"resourceType": "lambda"})
    permit = h.exited(80.0, "Task", "IssuePermit", done)
    last = h.lambda_task(80.1, "RegisterTargets", permit, took=0.2)
    for poll in range(2):
        at = 80.3 + poll * 10.2
        wait = h.entered(at, "Wait", "WaitForTargetHealth", last)
        wait = h.exited(at + 10.0, "Wait", "WaitForTargetHealth", wait)
        check = h.lambda_task(at + 10.0, "CheckTargetHealth", wait, took=0.1)
        choice = h.entered(at + 10.1, "Choice", "TargetHealthy?", check)
        last = h.exited(at + 10.1, "Choice", "TargetHealthy?", choice)
    final = h.lambda_task(100.8, "FinaliseFailover", last, took=0.5)
    recovered = h.entered(101.3, "Succeed", "Recovered", final)
    h.add(101.3, "ExecutionSucceeded", recovered, executionSucceededEventDetails={"output": '{"outcome":"recovered"}'})
    return h


def test_every_state_entered_is_a_step_in_order_with_times() -> None:
    description = described("SUCCEEDED", 101.3, output='{"outcome": "recovered"}')
    timeline = build_timeline(description, recovered_history().events)

    names = [s.name for s in timeline.steps]
    assert names[:5] == ["Admit", "Decide", "FenceAndLaunch", "IsolateOldInstance", "LaunchReplacement"]
    assert names.count("WaitForTargetHealth") == 2 and names.count("CheckTargetHealth") == 2
    assert names[-1] == "Recovered"
    assert timeline.status == "SUCCEEDED" and timeline.clock == "wall"
    assert timeline.duration_seconds == 101.3
    assert timeline.output == {"outcome": "recovered"}
    assert timeline.input["detail"]["app"] == "demo"

    by_name = {s.name: s for s in timeline.steps}
    wait = by_name["WaitForReplacementBoot"]
    assert wait.type == "Wait" and wait.offset_seconds == 4.6 and wait.duration_seconds == 15.0
    assert wait.entered_at == T0 + timedelta(seconds=4.6)
    permit = by_name["IssuePermit"]
    assert permit.duration_seconds == 60.3 and permit.status is StepStatus.OK and permit.attempts == 1
    assert all(s.status is StepStatus.OK for s in timeline.steps)
    assert by_name["Recovered"].duration_seconds == 0.0  # a Succeed state has no Exited event


def test_parallel_branches_are_nested_and_kept_apart_by_previous_event_id() -> None:
    timeline = build_timeline(described("SUCCEEDED", 101.3), recovered_history().events)
    by_name = {s.name: s for s in timeline.steps}

    assert by_name["FenceAndLaunch"].type == "Parallel" and by_name["FenceAndLaunch"].depth == 0
    for inner in ("IsolateOldInstance", "LaunchReplacement", "TerminateOldInstance", "OldInstanceFenced"):
        assert by_name[inner].depth == 1 and by_name[inner].parent == "FenceAndLaunch", inner
    assert by_name["WaitForReplacementBoot"].depth == 0
    # The failure and the retry belong to IsolateOldInstance, although LaunchReplacement's
    # events came in between.
    isolate, launch = by_name["IsolateOldInstance"], by_name["LaunchReplacement"]
    assert (isolate.attempts, isolate.retries, isolate.retried_errors) == (2, 1, ["AwsThrottled"])
    assert isolate.duration_seconds == 3.4 and isolate.error is None and isolate.status is StepStatus.OK
    assert (launch.attempts, launch.retries) == (1, 0)
    assert launch.duration_seconds == 1.3
    assert timeline.retries == 1


def test_to_simulated_maps_wall_timestamps_into_warped_time() -> None:
    warp = 100.0

    def to_simulated(wall: datetime) -> float:
        return T0.timestamp() + (wall - T0).total_seconds() * warp

    timeline = build_timeline(described("SUCCEEDED", 101.3), recovered_history().events, to_simulated)

    assert timeline.clock == "simulated"
    assert timeline.duration_seconds == 10130.0
    wait = next(s for s in timeline.steps if s.name == "WaitForReplacementBoot")
    assert wait.offset_seconds == 460.0 and wait.duration_seconds == 1500.0
    assert timeline.render()[0].endswith("(simulated seconds from its start)")


def test_render_shows_offset_name_duration_and_status() -> None:
    lines = build_timeline(described("SUCCEEDED", 101.3), recovered_history().events).render()

    assert lines[0].startswith("execution rms-1  SUCCEEDED")
    isolate = next(line for line in lines if "IsolateOldInstance" in line)
    assert isolate.split() == ["+", "0.7s", "IsolateOldInstance", "3.4s", "ok", "after", "1", "retry", "(AwsThrottled)"]
    admit = next(line for line in lines if "Admit" in line)
    assert admit.split() == ["+", "0.1s", "Admit", "0.4s", "ok"]
    # branch states are indented under their Parallel
    parallel = next(n for n, line in enumerate(lines) if "FenceAndLaunch" in line)
    assert lines[parallel + 1].index("IsolateOldInstance") > lines[parallel].index("FenceAndLaunch")
    assert lines[-1].split() == ["total", "101.3s", "SUCCEEDED", "(1", "retry)"]


def failed_history() -> History:
    """CheckTargetHealth fails with ReplacementUnhealthy (bare Lambda ARN), is caught, the
    rollback runs out of AZs (lambda:invoke integration, TaskFailed), FailFailover records
    it, and the Fail state ends the execution with the cause."""
    h = History()
    start = h.add(0.0, "ExecutionStarted")
    register = h.lambda_task(50.0, "RegisterTargets", start, took=0.2)
    check = h.entered(60.0, "Task", "CheckTargetHealth", register)
    scheduled = h.add(60.0, "LambdaFunctionScheduled", check)
    started = h.add(60.0, "LambdaFunctionStarted", scheduled)
    unhealthy = _cause("ReplacementUnhealthy", "i-0new targets unhealthy after 300 s")
    failed = h.add(
        60.1,
        "LambdaFunctionFailed",
        started,
        lambdaFunctionFailedEventDetails={"error": "ReplacementUnhealthy", "cause": unhealthy},
    )
    check = h.exited(60.1, "Task", "CheckTargetHealth", failed)  # the Catch took it to RollbackReplacement
    rollback = h.entered(60.2, "Task", "RollbackReplacement", check)
    last = rollback
    for attempt in range(2):
        scheduled = h.add(60.2 + attempt * 2, "TaskScheduled", last, taskScheduledEventDetails={"resource": "invoke"})
        started = h.add(60.2 + attempt * 2, "TaskStarted", scheduled)
        last = h.add(
            60.5 + attempt * 2,
            "TaskFailed",
            started,
            taskFailedEventDetails={
                "resourceType": "lambda",
                "resource": "invoke",
                "error": "IsolationNotConfirmed" if attempt == 0 else "AlternateZonesExhausted",
                "cause": _cause("x", "no AZ left: tried ap-northeast-1c, ap-northeast-1d"),
            },
        )
    # This endpoint emits no TaskStateExited after a caught failure: the next state entered
    # closes the step.
    fail_task = h.lambda_task(62.6, "FailFailover", last, took=0.4)
    fail = h.entered(63.0, "Fail", "FailoverFailed", fail_task)
    h.add(
        63.0,
        "ExecutionFailed",
        fail,
        executionFailedEventDetails={
            "error": "AlternateZonesExhausted",
            "cause": "no AZ left: tried ap-northeast-1c, ap-northeast-1d | record FAILED; lease released",
        },
    )
    return h


def test_a_failed_execution_shows_each_failure_its_retries_and_the_cause() -> None:
    timeline = build_timeline(
        described(
            "FAILED",
            63.0,
            error="AlternateZonesExhausted",
            cause="no AZ left: tried ap-northeast-1c, ap-northeast-1d | record FAILED; lease released",
        ),
        failed_history().events,
    )
    by_name = {s.name: s for s in timeline.steps}

    check = by_name["CheckTargetHealth"]
    assert check.status is StepStatus.CAUGHT and check.error == "ReplacementUnhealthy"
    assert readable_cause(check.cause) == "i-0new targets unhealthy after 300 s"
    rollback = by_name["RollbackReplacement"]
    assert rollback.status is StepStatus.CAUGHT
    assert (rollback.attempts, rollback.retries, rollback.retried_errors) == (2, 1, ["IsolationNotConfirmed"])
    assert rollback.error == "AlternateZonesExhausted" and rollback.duration_seconds == 2.4
    assert by_name["FailFailover"].status is StepStatus.OK
    fail = by_name["FailoverFailed"]
    assert fail.status is StepStatus.FAILED and fail.type == "Fail"
    assert fail.error == "AlternateZonesExhausted" and "lease released" in (fail.cause or "")
    assert timeline.error == "AlternateZonesExhausted"

    lines = timeline.render()
    text = "\n".join(lines)
    assert "caught" in next(line for line in lines if "CheckTargetHealth" in line)
    assert "ReplacementUnhealthy: i-0new targets unhealthy after 300 s" in text  # the message, not the JSON
    assert "errorType" not in text
    assert lines[-3].split()[:3] == ["total", "63.0s", "FAILED"]
    assert lines[-2] == "  error: AlternateZonesExhausted"
    assert lines[-1].startswith("  cause: no AZ left")


def test_an_uncaught_failure_inside_a_parallel_fails_the_branch_the_parallel_and_stops_the_other() -> None:
    h = History()
    start = h.add(0.0, "ExecutionStarted")
    parallel = h.entered(0.0, "Parallel", "FenceAndLaunch", start)
    branches = h.add(0.0, "ParallelStateStarted", parallel)
    isolate = h.entered(0.1, "Task", "IsolateOldInstance", branches)
    launch = h.entered(0.1, "Task", "LaunchReplacement", branches)
    h.add(0.1, "LambdaFunctionScheduled", launch)
    scheduled = h.add(0.1, "LambdaFunctionScheduled", isolate)
    failed = h.add(
        5.0,
        "LambdaFunctionFailed",
        scheduled,
        lambdaFunctionFailedEventDetails={"error": "IsolationNotConfirmed", "cause": "eni-1 still in sg-app"},
    )
    h.add(5.0, "ParallelStateFailed", failed)
    h.add(5.1, "ExecutionFailed", failed, executionFailedEventDetails={"error": "IsolationNotConfirmed"})

    timeline = build_timeline(described("FAILED", 5.1), h.events)
    by_name = {s.name: s for s in timeline.steps}

    assert by_name["IsolateOldInstance"].status is StepStatus.FAILED
    assert by_name["IsolateOldInstance"].cause == "eni-1 still in sg-app"
    assert by_name["FenceAndLaunch"].status is StepStatus.FAILED
    assert by_name["FenceAndLaunch"].error == "IsolationNotConfirmed"
    assert by_name["LaunchReplacement"].status is StepStatus.ABORTED
    assert timeline.error == "IsolationNotConfirmed"  # from the history when describe has none


def test_a_running_execution_has_open_steps_and_no_total() -> None:
    h = History()
    start = h.add(0.0, "ExecutionStarted")
    admit = h.lambda_task(0.1, "Admit", start, took=0.3)
    h.entered(0.5, "Wait", "WaitForReplacementBoot", admit)

    timeline = build_timeline(described("RUNNING", None), h.events)

    wait = timeline.steps[-1]
    assert wait.status is StepStatus.RUNNING and wait.exited_at is None and wait.duration_seconds is None
    assert timeline.duration_seconds is None
    assert timeline.render()[-1] == "  RUNNING (not finished)"
    assert "-" in timeline.render()[-2].split()


def test_an_aborted_execution_marks_the_open_state_aborted() -> None:
    h = History()
    start = h.add(0.0, "ExecutionStarted")
    h.entered(0.5, "Wait", "WaitForTargetHealth", start)
    h.add(3.0, "ExecutionAborted", 2)

    timeline = build_timeline(described("ABORTED", 3.0), h.events)

    assert timeline.steps[0].status is StepStatus.ABORTED and timeline.steps[0].duration_seconds == 2.5


def test_events_without_previous_event_ids_still_make_a_timeline() -> None:
    events = [e for e in recovered_history().events]
    for event in events:
        event.pop("previousEventId")
    timeline = build_timeline(described("SUCCEEDED", 101.3), events)
    assert [s.name for s in timeline.steps][:3] == ["Admit", "Decide", "FenceAndLaunch"]
    assert timeline.steps[-1].status is StepStatus.OK


class FakeStepFunctions:
    """Serves a history in pages of 7, as GetExecutionHistory does with nextToken."""

    def __init__(self, events: list[dict[str, Any]], description: dict[str, Any]) -> None:
        self.events, self.description, self.calls = events, description, 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == ARN
        return self.description

    def get_execution_history(self, executionArn: str, maxResults: int = 100, nextToken: str | None = None) -> dict:
        self.calls += 1
        start = int(nextToken or 0)
        page: dict[str, Any] = {"events": self.events[start : start + 7]}
        if start + 7 < len(self.events):
            page["nextToken"] = str(start + 7)
        return page


def test_fetch_timeline_reads_every_page() -> None:
    events = recovered_history().events
    sfn = FakeStepFunctions(events, described("SUCCEEDED", 101.3))

    timeline = fetch_timeline(sfn, ARN)

    assert sfn.calls == -(-len(events) // 7)
    assert isinstance(timeline, Timeline) and timeline.steps[-1].name == "Recovered"
    assert json.loads(timeline.model_dump_json())["steps"][0]["name"] == "Admit"


def test_a_multi_line_cause_stays_in_its_column() -> None:
    h = History()
    start = h.add(0.0, "ExecutionStarted")
    check = h.entered(1.0, "Task", "CheckReplacement", start)
    scheduled = h.add(1.0, "LambdaFunctionScheduled", check)
    cause = _cause("StepInputInvalid", "input does not match ReplacementInput:\nreplacement\n  Input should be a dict")
    failed = h.add(
        1.5,
        "LambdaFunctionFailed",
        scheduled,
        lambdaFunctionFailedEventDetails={"error": "StepInputInvalid", "cause": cause},
    )
    h.add(1.6, "ExecutionFailed", failed, executionFailedEventDetails={"error": "StepInputInvalid", "cause": cause})

    lines = build_timeline(described("FAILED", 1.6), h.events).render()

    step = lines.index(next(line for line in lines if "CheckReplacement" in line))
    assert lines[step + 1].strip() == "StepInputInvalid: input does not match ReplacementInput:"
    assert lines[step + 2] == lines[step + 1].split("S")[0] + "replacement"
    assert lines[step + 3].endswith("  Input should be a dict") and lines[step + 3].startswith(" " * 8)
    assert lines[-3:] == [
        "  cause: input does not match ReplacementInput:",
        "         replacement",
        "           Input should be a dict",
    ]
