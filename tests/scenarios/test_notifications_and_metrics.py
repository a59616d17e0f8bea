"""What the on-call people see of a failover: the notifications the stack's rules send to its
topic (a subscriber queue stands in for the mailbox), the failover metrics the Finalise and
Fail steps write (EMF, turned into CloudWatch metrics as CloudWatch Logs does), and the
dashboard that shows them."""

from __future__ import annotations

import json
from typing import Any

from handlers.core import failover_metrics
from rms_hooks.config import HooksConfig
from rms_hooks.heartbeat import Heartbeat
from swr.emulator import Emulator
from tests.helpers.scenarios import assert_safe, finished

SECOND_AZ, THIRD_AZ = "ap-northeast-1c", "ap-northeast-1d"


def subscribe_a_queue(emu: Emulator) -> str:
    """A queue subscribed to the stack's notification topic: it gets what the mailbox gets."""
    sns, sqs = emu.boto3_client("sns"), emu.boto3_client("sqs")
    (target,) = emu.boto3_client("events").list_targets_by_rule(Rule="swr-notify-started")["Targets"]
    url = sqs.create_queue(QueueName="oncall-mailbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=target["Arn"], Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return str(url)


def messages(emu: Emulator, url: str, count: int, timeout: float = 600.0) -> list[str]:
    """Up to ``count`` messages, waiting at most ``timeout`` simulated seconds for them."""
    sqs, received = emu.boto3_client("sqs"), []

    def enough() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            received.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(received) >= count

    emu.wait_until(enough, timeout)
    return received


def datapoints(emu: Emulator, name: str, dimensions: dict[str, str], statistic: str = "Sum") -> list[float]:
    return emu.metric_datapoints(name, dimensions, statistic)


def test_a_recovered_failover_tells_the_on_call_topic_it_started_and_succeeded(emulator: Emulator):
    mailbox = subscribe_a_queue(emulator)
    emulator.inject("rms-fault")
    report = emulator.report(emulator.wait_for_failover())
    assert report["outcome"] == "recovered", report
    assert_safe(emulator)

    started, succeeded = sorted(messages(emulator, mailbox, 2), key=lambda text: "SUCCEEDED" in text)
    old, new = report["old"], report["new"]
    assert started.startswith("swr: failover of demo STARTED\n")
    assert f"Old instance: {old['instance_id']} in {old['az']}, being cut off" in started
    assert f"Why: {emulator.store.require('demo').history[-1].trigger}\n" in started
    duration = round(emulator.store.require("demo").history[-1].duration_seconds, 1)
    assert succeeded.startswith(f"swr: failover of demo SUCCEEDED in {duration} s\n")
    assert f"New instance: {new['instance_id']} in {new['az']}" in succeeded
    assert f"Old instance: {old['instance_id']} in {old['az']}, fenced" in succeeded
    for text in (started, succeeded):
        assert f"Execution: {report['execution_arn']}\n" in text
        assert f"#/v2/executions/details/{report['execution_arn']}" in text
        assert "<" not in text, f"a variable was left unfilled: {text}"


def test_a_failed_failover_tells_the_on_call_topic_the_error_and_the_cause(emulator: Emulator):
    mailbox = subscribe_a_queue(emulator)
    emulator.simulation.unhealthy_azs.update({SECOND_AZ, THIRD_AZ})  # type: ignore[union-attr]
    emulator.inject("rms-fault")
    described = finished(emulator, emulator.wait_for_failover())
    assert described["status"] == "FAILED"
    assert_safe(emulator)

    texts = messages(emulator, mailbox, 2)
    (failed,) = [text for text in texts if "FAILED" in text.splitlines()[0]]
    assert failed.startswith("swr: failover of demo FAILED\n")
    assert "Error: AlternateZonesExhausted\n" in failed
    assert "no AZ is left to try" in failed.split("Cause: ", 1)[1].splitlines()[0]
    assert "run swr resume demo" in failed
    assert f"Execution: {described['executionArn']}\n" in failed

    # One failed failover counted, with how long it took to give up.
    assert datapoints(emulator, "Failovers", {"App": "demo", "Outcome": "failed"}) == [1.0]
    (gave_up_after,) = datapoints(emulator, "FailoverDuration", {"App": "demo", "Outcome": "failed"}, "Maximum")
    assert gave_up_after > 0
    assert datapoints(emulator, "Failovers", {"App": "demo", "Outcome": "recovered"}) == []


def test_a_recovered_failover_is_counted_and_timed_phase_by_phase_in_cloudwatch(emulator: Emulator):
    emulator.inject("rms-fault")
    report = emulator.report(emulator.wait_for_failover())
    assert report["outcome"] == "recovered", report
    summary = emulator.store.require("demo").history[-1]

    assert datapoints(emulator, "Failovers", {"App": "demo", "Outcome": "recovered"}) == [1.0]
    (duration,) = datapoints(emulator, "FailoverDuration", {"App": "demo", "Outcome": "recovered"}, "Maximum")
    assert duration == round(summary.duration_seconds, 1)  # the figure the record keeps, to a tenth
    phases = {
        phase: datapoints(emulator, "PhaseDuration", {"App": "demo", "Phase": phase}, "Maximum")
        for phase in failover_metrics.PHASES
    }
    assert phases == {phase: [summary.phase_seconds[phase]] for phase in failover_metrics.PHASES}
    # The fence runs beside the launch: of the two, the longer is on the way to the permit.
    sequential = (
        phases["fence"][0] + phases["launch_to_running"][0] - min(phases["fence"][0], phases["launch_to_running"][0])
    )
    assert sequential + phases["boot_gate"][0] + phases["healthy"][0] <= duration
    # Unbounded values (instance ids, executions) never become dimensions.
    listed = emulator.boto3_client("cloudwatch").list_metrics(Namespace=emulator.stack.MetricNamespace)["Metrics"]  # type: ignore[union-attr]
    names = {d["Name"] for m in listed if m["MetricName"] in failover_metrics.DIMENSIONS for d in m["Dimensions"]}
    assert names == {"App", "Outcome", "Phase"}


def dashboard_metrics(body: dict[str, Any]) -> list[list[str]]:
    return [
        metric for widget in body["widgets"] if widget["type"] == "metric" for metric in widget["properties"]["metrics"]
    ]


def test_the_dashboard_shows_metrics_that_exist_after_a_failover_and_a_heartbeat(emulator: Emulator):
    stack = emulator.stack
    assert stack is not None
    emulator.inject("rms-fault")
    assert emulator.report(emulator.wait_for_failover())["outcome"] == "recovered"
    config = HooksConfig(
        app="demo", region=emulator.region, user_application="app_demo", metric_namespace=stack.MetricNamespace
    )
    beat = Heartbeat(config, emulator.boto3_client("cloudwatch"), run=lambda argv, timeout: (0, "Online"))
    beat.beat()

    cloudwatch = emulator.boto3_client("cloudwatch")
    (entry,) = cloudwatch.list_dashboards(DashboardNamePrefix="swr-demo")["DashboardEntries"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=entry["DashboardName"])["DashboardBody"])
    ours = [m for m in dashboard_metrics(body) if m[0] == stack.MetricNamespace]
    assert {m[1] for m in ours} == {*failover_metrics.DIMENSIONS, "Heartbeat"}
    absent = []
    for namespace, name, *pairs in ours:
        if "failed" in pairs:
            continue  # this failover recovered: nothing failed to count
        dimensions = [{"Name": k, "Value": v} for k, v in zip(pairs[::2], pairs[1::2], strict=True)]
        if not cloudwatch.list_metrics(Namespace=namespace, MetricName=name, Dimensions=dimensions)["Metrics"]:
            absent.append(f"{name} {dict(zip(pairs[::2], pairs[1::2], strict=True))}")
    assert absent == [], "the dashboard names metrics nothing emits"
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    registered = {a["AlarmArn"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="swr-demo-")["MetricAlarms"]}
    assert registered and registered <= set(alarms), "the dashboard misses an alarm of the application"


def test_the_notification_key_encrypts_for_the_on_call_topic_only(emulator: Emulator):
    # EventBridge may use the topic's key only with the topic's own ARN as encryption context
    # (what SNS passes); the template names the topic's ARN without referring to the topic.
    (target,) = emulator.boto3_client("events").list_targets_by_rule(Rule="swr-notify-started")["Targets"]
    sns, kms = emulator.boto3_client("sns"), emulator.boto3_client("kms")
    key = sns.get_topic_attributes(TopicArn=target["Arn"])["Attributes"]["KmsMasterKeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    (statement,) = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": target["Arn"]}}
