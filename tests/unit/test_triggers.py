"""Admit's parsing of what can start a failover."""

from __future__ import annotations

import json
import re

import pytest

from handlers.core.errors import MalformedTrigger
from handlers.core.triggers import TriggerKind, parse_trigger
from rms_hooks.fault_notifier import fault_entry


def alarm_event(state: str = "ALARM", dimensions: dict | None = None) -> dict:
    return {
        "id": "evt-alarm-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": "2026-11-25T10:00:00Z",
        "detail": {
            "alarmName": "swr-demo-StatusCheckFailed_Instance",
            "state": {"value": state, "reason": "Threshold Crossed"},
            "configuration": {
                "metrics": [{"metricStat": {"metric": {"dimensions": dimensions or {"InstanceId": "i-0abc"}}}}]
            },
        },
    }


def test_a_status_check_alarm_names_the_instance():
    trigger = parse_trigger(alarm_event(), "exec-1")
    assert trigger.kind is TriggerKind.ALARM
    assert trigger.instance_id == "i-0abc" and trigger.app is None
    assert trigger.is_fault and trigger.id == "evt-alarm-1"


def test_the_heartbeat_alarm_names_the_application():
    trigger = parse_trigger(alarm_event(dimensions={"App": "demo"}), "exec-1")
    assert trigger.app == "demo" and trigger.instance_id is None


def test_an_alarm_back_to_ok_is_not_a_fault():
    assert not parse_trigger(alarm_event("OK"), "exec-1").is_fault


def test_the_rms_fault_event_rms_hooks_publishes_is_understood():
    entry = fault_entry("demo", "i-0abc", "app_demo", "Cmdline0 failed")
    event = {
        "id": "evt-rms-1",
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "detail": json.loads(entry["Detail"]),
    }
    trigger = parse_trigger(event, "exec-1")
    assert trigger.kind is TriggerKind.RMS_FAULT
    assert (trigger.app, trigger.instance_id) == ("demo", "i-0abc")
    assert "app_demo" in trigger.summary
    assert trigger.generation is None  # a notifier that could not read its generation still reports


def test_an_rms_fault_carries_the_generation_its_instance_runs():
    entry = fault_entry("demo", "i-0abc", "app_demo", "Cmdline0 failed", generation=3)
    event = {"id": "e", "source": entry["Source"], "detail-type": entry["DetailType"]}
    trigger = parse_trigger(event | {"detail": json.loads(entry["Detail"])}, "exec-1")
    assert trigger.generation == 3
    with pytest.raises(MalformedTrigger):
        parse_trigger(event | {"detail": json.loads(entry["Detail"]) | {"generation": -1}}, "exec-1")


def test_an_ec2_stop_is_a_fault_and_a_start_is_not():
    def event(state: str) -> dict:
        return {
            "id": f"evt-{state}",
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": "i-0abc", "state": state},
        }

    assert parse_trigger(event("stopped"), "x").is_fault
    assert not parse_trigger(event("running"), "x").is_fault


def test_a_drill_uses_the_execution_name_as_its_identity():
    trigger = parse_trigger({"kind": "drill", "app": "demo", "requested_by": "alice", "force": True}, "drill-1")
    assert trigger.kind is TriggerKind.DRILL and trigger.id == "drill-1" and trigger.force


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not an object", "must be a JSON object"),
        ({"hello": "world"}, "neither an EventBridge event"),
        ({"kind": "drill"}, "drill request is malformed: app"),
        ({"kind": "resume", "app": "demo"}, "resume request is malformed: interrupted"),
        ({"kind": "resume", "app": "demo", "interrupted": "yesterday's"}, "resume request is malformed: interrupted"),
        ({"id": "e", "source": "aws.s3", "detail-type": "Object Created", "detail": {}}, "not a trigger swr handles"),
        (
            {"id": "e", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {}},
            "alarmName: Field required",
        ),
        (  # would push a later state over Step Functions' 256 KiB: refused before the lease
            {"kind": "drill", "app": "demo", "reason": "x" * 200_000},
            r"drill request is 2000\d\d bytes; swr takes triggers of at most 32768 bytes",
        ),
    ],
)
def test_malformed_input_gets_a_clear_cause(raw, expected):
    with pytest.raises(MalformedTrigger, match=expected):
        parse_trigger(raw, "exec-1")


def test_a_resume_names_the_stopped_execution_and_overrides_maintenance():
    stopped = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:drill-demo-1"
    trigger = parse_trigger({"kind": "resume", "app": "demo", "interrupted": stopped, "requested_by": "bob"}, "r-1")
    assert trigger.kind is TriggerKind.RESUME and trigger.interrupted == stopped and trigger.id == "r-1"
    assert trigger.overrides_maintenance and trigger.summary == "resume by bob of drill-demo-1"
    drill = parse_trigger({"kind": "drill", "app": "demo"}, "d-1")
    assert not drill.overrides_maintenance


def test_listings_read_the_trigger_of_any_input_leniently():
    from swr.trigger_input import app_of, kind_of

    resume = {"kind": "resume", "app": "demo", "interrupted": "arn:..."}
    fault = {"detail-type": "RMS Fault", "source": "swr.rms.demo", "detail": {"app": "demo", "instance_id": "i-1"}}
    heartbeat = {
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"configuration": {"metrics": [{"metricStat": {"metric": {"dimensions": {"App": "demo"}}}}]}},
    }
    ec2 = {"detail-type": "EC2 Instance State-change Notification", "detail": {"instance-id": "i-1"}}
    inputs = (resume, fault, heartbeat, ec2, {})
    assert [kind_of(t) for t in inputs] == ["resume", "rms-fault", "alarm", "ec2-state", "?"]
    assert [app_of(t) for t in inputs] == ["demo", "demo", "demo", None, None]


def test_an_rms_fault_is_taken_only_from_its_own_applications_source():
    detail = {"app": "demo", "instance_id": "i-1", "fault_id": "f-1"}
    own = {"id": "e-1", "detail-type": "RMS Fault", "source": "swr.rms.demo", "detail": detail}
    assert parse_trigger(own, "x").app == "demo"

    for source in ("swr.rms.billing", "swr.rms.demo2"):
        with pytest.raises(MalformedTrigger, match=re.escape("whose faults come only from 'swr.rms.demo'")):
            parse_trigger({**own, "source": source}, "x")
    # The shared source of earlier versions is no RMS fault at all (no rule matches it any more).
    with pytest.raises(MalformedTrigger, match="not a trigger swr handles"):
        parse_trigger({**own, "source": "swr.rms"}, "x")
