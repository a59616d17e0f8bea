"""No trigger is lost silently: the stack's rules retry a delivery that fails and keep what
they cannot deliver in the dead-letter queue, with the reason, for an operator to act on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from handlers.core.record import AppState
from rms_hooks import fault_notifier
from swr.emulator import Emulator
from swr.emulator.faults import THROTTLING
from tests.helpers.scenarios import assert_safe
from tests.scenarios.test_notifications_and_metrics import messages, subscribe_a_queue

ACCESS_DENIED = ("AccessDeniedException", "not authorized to perform: states:StartExecution", 400)


def rms_fault(emu: Emulator) -> dict:
    """The event RMS's fault script publishes from the instance."""
    occurred_at = datetime.fromtimestamp(emu.clock.now(), tz=UTC)  # the instance's clock is the world's
    return fault_notifier.fault_entry(
        "demo", emu.primary_instance_id, "app_demo", "resource Cmdline0 failed", occurred_at=occurred_at
    )


def dead_letters(emu: Emulator, wait: float = 500.0) -> list[dict]:
    """What the dead-letter queue holds, waiting up to ``wait`` simulated seconds for something."""
    sqs = emu.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName="swr-trigger-dead-letters")["QueueUrl"]
    found: list[dict] = []

    def arrived() -> bool:
        found.extend(
            sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
        )
        return bool(found)

    emu.wait_until(arrived, timeout=wait)
    return found


def test_a_throttled_trigger_is_retried_and_still_starts_the_failover(emulator: Emulator):
    throttle = emulator.faults.add("stepfunctions", "StartExecution", THROTTLING, count=3)

    emulator.boto3_client("events").put_events(Entries=[rms_fault(emulator)])
    report = emulator.report(emulator.wait_for_failover())

    assert throttle.hits == 3, "the first deliveries were not throttled"
    assert report["outcome"] == "recovered"
    assert dead_letters(emulator, wait=20) == []
    assert_safe(emulator)


def test_a_trigger_that_cannot_be_delivered_waits_in_the_dead_letter_queue_with_its_reason(emulator: Emulator):
    # The rule's role lost states:StartExecution: EventBridge does not retry that.
    emulator.faults.add("stepfunctions", "StartExecution", ACCESS_DENIED, count=1)
    emulator.boto3_client("events").put_events(Entries=[rms_fault(emulator)])

    (letter,) = dead_letters(emulator)
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes["RULE_ARN"].endswith(":rule/swr-rms-fault")
    assert attributes["TARGET_ARN"] == emulator.state_machine_arn
    assert attributes["ERROR_CODE"] == "AccessDeniedException"
    event = json.loads(letter["Body"])
    assert (event["source"], event["detail"]["app"]) == ("swr.rms.demo", "demo")
    # nothing started, nothing changed: the operator decides (a drill, once the role is fixed)
    assert emulator.executions() == []
    record = emulator.store.require("demo")
    assert record.state is AppState.NORMAL and record.current_instance_id == emulator.primary_instance_id


def test_a_trigger_admit_cannot_decide_on_waits_in_the_dead_letter_queue_and_on_call_is_told(emulator: Emulator):
    # Lambda fails every call of the admit function, past the ASL's retries: the workflow keeps
    # the trigger and announces it without Lambda.
    crash = ("ServiceException", "The Lambda service encountered an internal error.", 500)
    emulator.faults.add("lambda", "Invoke", crash, where=lambda params: str(params["FunctionName"]).endswith("-admit"))
    mailbox = subscribe_a_queue(emulator)
    event = rms_fault(emulator)

    emulator.boto3_client("events").put_events(Entries=[event])

    assert emulator.wait_until(lambda: bool(emulator.executions()) and not _running(emulator), timeout=600)
    (execution,) = emulator.executions()
    described = emulator.boto3_client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert (described["status"], described["error"]) == ("FAILED", "Lambda.ServiceException")
    (letter,) = dead_letters(emulator, wait=60)
    kept = json.loads(letter["Body"])
    assert kept["execution"] == execution["executionArn"] and kept["error"] == "Lambda.ServiceException"
    assert kept["trigger"]["detail"]["instance_id"] == emulator.primary_instance_id  # the event as delivered
    (told,) = messages(emulator, mailbox, 1)
    assert told.startswith("swr: a failover trigger for demo was NOT ADMITTED")
    assert "swr-trigger-dead-letters" in told and execution["executionArn"] in told
    # Nothing changed: no lease, no fence, the application as it was.
    record = emulator.store.require("demo")
    assert record.state is AppState.NORMAL and record.lease is None and record.fences == []
    assert record.current_instance_id == emulator.primary_instance_id


def _running(emu: Emulator) -> bool:
    return any(e["status"] == "RUNNING" for e in emu.executions())
