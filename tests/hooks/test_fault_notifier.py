"""The fault notifier as RMS runs it on the instance: a fault reaches the workflow, or waits in
the local spool until the API is back, in order and without loss."""

from __future__ import annotations

import json
from typing import Any

from handlers.core.record import AppState
from rms_hooks.fault_notifier import Outcome, Publisher, PublishError
from tests.helpers.hooks import Served, run_hook, write_config
from tests.helpers.scenarios import assert_safe


def notify(served: Served, reason: str, *, api_down: bool = False, instance_id: str | None = None, **env: str):
    return run_hook(
        "fault_notifier",
        "--config",
        str(served.config),
        "--user-application",
        "app_demo",
        "--reason",
        reason,
        "--instance-id",
        instance_id or served.emu.primary_instance_id,
        env=served.env(api_down=api_down, **env),
    )


def flush(served: Served, *, api_down: bool = False):
    return run_hook("fault_notifier", "--flush", "--config", str(served.config), env=served.env(api_down=api_down))


def rms_faults(served: Served) -> list[tuple[dict[str, Any], str]]:
    """(fault detail, Admit's decision) of every execution an RMS fault started, oldest first
    (the failover's own EC2 state changes start executions too, which Admit ignores)."""
    sfn = served.emu.boto3_client("stepfunctions")
    found = []
    for execution in served.emu.executions():
        arn = execution["executionArn"]
        event = json.loads(sfn.describe_execution(executionArn=arn)["input"])
        if event.get("source") != "swr.rms.demo":
            continue
        decision = "?"
        for step in sfn.get_execution_history(executionArn=arn, maxResults=20)["events"]:
            details = step.get("lambdaFunctionSucceededEventDetails") or step.get("taskSucceededEventDetails")
            if details is not None:  # the first task to succeed is Admit
                decision = json.loads(details.get("output") or "{}").get("decision", "?")
                break
        found.append((event["detail"], decision))
    return found


def test_a_fault_reported_while_the_api_is_up_starts_a_failover(served: Served) -> None:
    done = notify(served, "resource Cmdline0 failed")

    assert done.returncode == Outcome.PUBLISHED == 0, done.stderr
    assert "swr-notify-fault: published app=demo" in done.stderr
    served.emu.wait_for_failover()
    ((detail, decision),) = rms_faults(served)
    assert decision == "proceed"
    assert (detail["app"], detail["instance_id"]) == ("demo", served.emu.primary_instance_id)
    assert (detail["user_application"], detail["reason"]) == ("app_demo", "resource Cmdline0 failed")
    assert served.spooled() == []
    assert served.emu.store.require("demo").current_instance_id != served.emu.primary_instance_id
    assert_safe(served.emu)


def test_faults_raised_while_the_api_is_down_are_delivered_in_order_when_it_returns(served: Served) -> None:
    first = notify(served, "first: resource Cmdline0 failed", api_down=True)
    second = notify(served, "second: userApplication app_demo Faulted", api_down=True)

    assert (first.returncode, second.returncode) == (Outcome.SPOOLED, Outcome.SPOOLED) == (4, 4)
    assert "swr-notify-fault: spooled" in first.stderr
    assert "1 older fault(s) still spooled; keeping the order" in second.stderr
    spooled = served.spooled()
    assert [d["reason"] for d in spooled] == [
        "first: resource Cmdline0 failed",
        "second: userApplication app_demo Faulted",
    ]
    assert rms_faults(served) == [], "nothing reached the workflow while the API was down"

    still_down = flush(served, api_down=True)
    assert still_down.returncode == 4 and served.spooled() == spooled, "a failed flush keeps everything, in order"

    back = flush(served)

    assert back.returncode == 0, back.stderr
    assert back.stderr.count("delivered-from-spool") == 2 and "flush delivered=2 remaining=0" in back.stderr
    assert served.spooled() == [] and not served.spool.exists()
    served.emu.wait_until_settled()
    delivered = rms_faults(served)
    # Each keeps the time RMS saw it, not the time it was delivered; one incident, one failover.
    assert [d for d, _ in delivered] == spooled
    decisions = sorted(decision for _, decision in delivered)
    assert decisions in (["ignore", "proceed"], ["in_progress", "proceed"]), decisions
    assert_safe(served.emu)


def test_the_next_fault_delivers_the_spooled_ones_before_itself(served: Served) -> None:
    assert notify(served, "older", api_down=True).returncode == Outcome.SPOOLED

    newer = notify(served, "newer")

    assert newer.returncode == Outcome.PUBLISHED, newer.stderr
    assert newer.stderr.index("delivered-from-spool") < newer.stderr.index("published")
    assert served.spooled() == []
    served.emu.wait_until_settled()
    assert [detail["reason"] for detail, _ in rms_faults(served)] == ["older", "newer"]
    assert_safe(served.emu)


def test_a_spooled_fault_delivered_after_the_failover_changes_nothing(served: Served) -> None:
    # The fault was accepted but the answer was lost (so it was also spooled), or RMS reported
    # it twice: the second delivery arrives after the failover, with a new event id.
    old = served.emu.primary_instance_id
    assert notify(served, "resource Cmdline0 failed").returncode == Outcome.PUBLISHED
    served.emu.wait_for_failover()
    served.emu.wait_until_settled()
    after_failover = served.emu.store.require("demo")
    assert notify(served, "resource Cmdline0 failed", api_down=True, instance_id=old).returncode == Outcome.SPOOLED

    assert flush(served).returncode == 0

    served.emu.wait_until_settled()
    (_, first), (late, second) = rms_faults(served)
    assert (first, second) == ("proceed", "ignore")
    assert late["instance_id"] == old
    record = served.emu.store.require("demo")
    assert (record.state, record.generation, record.current_instance_id) == (
        AppState.NORMAL,
        after_failover.generation,
        after_failover.current_instance_id,
    )
    assert_safe(served.emu)


def test_bad_arguments_and_missing_configuration_publish_and_spool_nothing(served: Served) -> None:
    no_reason = run_hook(
        "fault_notifier", "--config", str(served.config), "--user-application", "app_demo", env=served.env()
    )
    assert no_reason.returncode == Outcome.BAD_USAGE == 2
    assert "missing --reason" in no_reason.stderr

    unknown = run_hook("fault_notifier", "--config", str(served.config), "--colour", "red", env=served.env())
    assert unknown.returncode == 2 and "unrecognized arguments: --colour" in unknown.stderr

    naive = run_hook(
        "fault_notifier",
        "--config",
        str(served.config),
        "--user-application",
        "app_demo",
        "--reason",
        "x",
        "--occurred-at",
        "2027-01-15T03:00:00",
        env=served.env(),
    )
    assert naive.returncode == 2 and "has no time zone" in naive.stderr

    no_app = write_config(served.config.with_name("no-app.json"), region=served.emu.region)
    missing = run_hook(
        "fault_notifier",
        "--config",
        str(no_app),
        "--user-application",
        "app_demo",
        "--reason",
        "x",
        "--instance-id",
        "i-0",
        env=served.env(),
    )
    assert missing.returncode == Outcome.BAD_CONFIG == 3
    assert "missing configuration: app (--app, SWR_APP or 'app' in" in missing.stderr

    absent = run_hook(
        "fault_notifier", "--config", str(served.config.with_name("absent.json")), "--reason", "x", env=served.env()
    )
    assert absent.returncode == 3 and "does not exist" in absent.stderr

    assert served.spooled() == [] and not served.spool.parent.exists()
    assert served.emu.executions() == [], "nothing reached the workflow"


def test_under_rms_the_fault_script_needs_no_arguments(served: Served) -> None:
    # RMS runs its FaultScript with the userApplication in its environment.
    done = run_hook(
        "fault_notifier",
        "--config",
        str(served.config),
        "--instance-id",
        served.emu.primary_instance_id,
        env=served.env(HV_APPLICATION="app_demo", HV_NODENAME="Cmdline0", HV_LAST_DET_REPORT="Faulted"),
    )

    assert done.returncode == 0, done.stderr
    served.emu.wait_for_failover()
    ((detail, decision),) = rms_faults(served)
    assert decision == "proceed" and detail["user_application"] == "app_demo"
    assert "Cmdline0" in detail["reason"] and "Faulted" in detail["reason"]


# --- retries, without the network -----------------------------------------------------------
class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        raise self.error


def test_retries_back_off_with_jitter_and_stop_within_the_time_budget() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    events = Refusing(ConnectionError("connection refused"))
    publisher = Publisher(events, 10.0, sleep=sleep, clock=lambda: now[0], jitter=lambda: 1.0)

    try:
        publisher.publish({"Detail": "{}"})
        raise AssertionError("publish cannot succeed")
    except PublishError as error:
        assert "gave up after" in str(error)
    assert slept[:5] == [0.25, 0.5, 1.0, 2.0, 4.0] and set(slept[5:]) <= {4.0}, "exponential, capped"
    assert sum(slept) <= 10.0 and events.calls == len(slept) + 1


def test_a_refusal_retrying_cannot_change_is_not_retried() -> None:
    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")
    events = Refusing(denied)
    publisher = Publisher(events, 10.0, sleep=lambda _: None)

    try:
        publisher.publish({"Detail": "{}"})
        raise AssertionError("publish cannot succeed")
    except PublishError as error:
        assert error.permanent
    assert events.calls == 1
