"""What ``infra/template.yaml`` promises besides its IAM policies: each checkov finding it skips
is named and explained, and its Outputs are exactly what ``swr.stack.StackOutputs`` reads.

cfn-lint and checkov themselves run in ``make lint`` (offline, in their own environment), not
here: these tests stay fast and need nothing but the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from handlers.core import failover_metrics
from rms_hooks import heartbeat
from swr.deploy import load_template
from swr.ops import onboarding
from swr.stack import StackOutputs

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "infra" / "template.yaml")
CHECK_ID = re.compile(r"^CKV_AWS_\d+$")


def checkov_skips(template: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(resource, skip entry) for every checkov skip in the resources' Metadata."""
    return [
        (name, skip)
        for name, resource in (template.get("Resources") or {}).items()
        for skip in (((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or [])
    ]


def bad_skips(template: Mapping[str, Any]) -> list[str]:
    """Skips without a CKV_AWS_<n> id or without a reason."""
    bad = []
    for name, skip in checkov_skips(template):
        entry = skip if isinstance(skip, Mapping) else {}
        check, comment = entry.get("id"), entry.get("comment")
        if not (isinstance(check, str) and CHECK_ID.match(check)):
            bad.append(f"{name}: skip {skip!r} does not name a CKV_AWS_<n> check")
        elif not (isinstance(comment, str) and comment.strip()):
            bad.append(f"{name}: skip of {check} gives no reason")
    return bad


def test_every_checkov_skip_in_the_template_names_its_check_and_says_why():
    skips = checkov_skips(TEMPLATE)
    # 11 functions x 4, 12 log groups, the table, the queue, the bucket and the trail.
    assert len(skips) >= 50
    assert bad_skips(TEMPLATE) == []


def test_a_skip_without_an_id_or_a_reason_is_reported():
    template = {
        "Resources": {
            "Good": {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "why"}]}}},
            "NoReason": {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "  "}]}}},
            "OtherTool": {"Metadata": {"checkov": {"skip": [{"id": "CKV2_AWS_62", "comment": "why"}]}}},
            "BareId": {"Metadata": {"checkov": {"skip": ["CKV_AWS_18"]}}},
            "NoMetadata": {"Type": "AWS::SQS::Queue"},
        }
    }
    assert [line.split(":")[0] for line in bad_skips(template)] == ["NoReason", "OtherTool", "BareId"]


def test_the_template_outputs_exactly_what_swr_reads_from_a_stack():
    outputs = set(TEMPLATE["Outputs"])
    fields = set(StackOutputs.model_fields)
    assert fields - outputs == set(), "StackOutputs reads outputs the template does not declare"
    assert outputs - fields == set(), "the template declares outputs StackOutputs does not read"


# --- the dashboard -----------------------------------------------------------------------------
# What CloudFormation would make of DashboardBody for a stack of app "billing.eu", prefix "ops":
# its ${...} references filled in, with and without the notification resources.
STACK = {
    "NamePrefix": "ops",
    "AppName": "billing.eu",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "210987654321",
    "AWS::Partition": "aws",
    "FailoverStateMachine": "arn:aws:states:eu-west-1:210987654321:stateMachine:ops-failover",
    "TriggerDeadLetterQueue.QueueName": "ops-trigger-dead-letters",
    "NotificationDeadLetterQueue.QueueName": "ops-notification-dead-letters",
}
REFERENCE = re.compile(r"\$\{([^}!]+)\}")


def substituted(expression: Any, values: Mapping[str, str], notifications: bool) -> str:
    if isinstance(expression, str):
        return expression
    if "Fn::If" in expression:
        condition, when_true, when_false = expression["Fn::If"]
        assert condition == "WithNotifications"
        return substituted(when_true if notifications else when_false, values, notifications)
    text, variables = (expression["Fn::Sub"], {}) if isinstance(expression["Fn::Sub"], str) else expression["Fn::Sub"]
    known = {**values, **{k: substituted(v, values, notifications) for k, v in variables.items()}}
    return REFERENCE.sub(lambda match: known[match.group(1)], text)


def dashboard(notifications: bool) -> dict[str, Any]:
    body = TEMPLATE["Resources"]["FailoverDashboard"]["Properties"]["DashboardBody"]
    return dict(json.loads(substituted(body, STACK, notifications)))


def metrics_of(body: Mapping[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (metric[0], metric[1], dict(zip(metric[2::2], metric[3::2], strict=True)))
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
    ]


@pytest.mark.parametrize("notifications", [False, True], ids=["without-notifications", "with-notifications"])
def test_the_dashboard_is_json_and_names_only_metrics_swr_publishes_as_they_are_published(notifications: bool):
    body = dashboard(notifications)
    ours = [(name, dims) for namespace, name, dims in metrics_of(body) if namespace == STACK["NamePrefix"]]
    published = {**failover_metrics.DIMENSIONS, onboarding.HEARTBEAT_METRIC: (heartbeat.APP_DIMENSION,)}
    for name, dims in ours:
        assert name in published, f"the dashboard shows {name}, which nothing publishes"
        assert tuple(dims) == published[name], f"{name} is published with {published[name]}, shown with {dims}"
        assert dims["App"] == STACK["AppName"]
    assert {name for name, _ in ours} == set(published), "a published metric is missing from the dashboard"
    shown_outcomes = {d["Outcome"] for name, d in ours if name == failover_metrics.FAILOVERS}
    assert shown_outcomes == {failover_metrics.RECOVERED, failover_metrics.FAILED}
    assert [d["Phase"] for name, d in ours if name == failover_metrics.PHASE_DURATION] == list(failover_metrics.PHASES)

    others = [(namespace, name, dims) for namespace, name, dims in metrics_of(body) if namespace != "ops"]
    states = {name for namespace, name, dims in others if namespace == "AWS/States"}
    assert states == {"ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut"}
    assert all(
        dims == {"StateMachineArn": STACK["FailoverStateMachine"]} for ns, _, dims in others if ns == "AWS/States"
    )
    queues = [dims["QueueName"] for namespace, _, dims in others if namespace == "AWS/SQS"]
    assert queues == ["ops-trigger-dead-letters", *(["ops-notification-dead-letters"] if notifications else [])]
    (alarms,) = [w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm"]
    names = [arn.split(":alarm:")[1] for arn in alarms]
    assert names[:3] == onboarding.alarm_names("billing.eu", prefix="ops-")  # what swr register creates
    assert names[3:] == [
        "ops.ops.trigger-dead-letters",
        *(["ops.ops.notification-dead-letters"] if notifications else []),
    ]


def test_the_state_machine_keeps_task_tokens_out_of_its_logs():
    # IssuePermit hands the boot gate a task token in its payload; with execution data in the
    # logs, anyone who could read the log group could answer it.
    logging_ = TEMPLATE["Resources"]["FailoverStateMachine"]["Properties"]["Logging"]
    assert logging_["Level"] == "ALL" and logging_["IncludeExecutionData"] is False


def test_two_stacks_cannot_give_their_alarms_the_same_name():
    # Alarms are <NamePrefix>-<AppName>-<check>: with a hyphen allowed in the prefix, stacks
    # (swr, a-b) and (swr-a, b) would both name theirs swr-a-b-..., and each stack's alarm rule
    # would match the other's alarms.
    prefix = re.compile(TEMPLATE["Parameters"]["NamePrefix"]["AllowedPattern"])
    app = re.compile(TEMPLATE["Parameters"]["AppName"]["AllowedPattern"])
    assert prefix.match("swr") and prefix.match("billing2")
    assert not prefix.match("swr-a")
    assert app.match("a-b")  # application names keep their hyphens: the prefix ends at the first one
