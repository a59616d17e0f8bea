"""Point the application's CloudWatch alarms at the instance that now runs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.core.aws import api_call, client

# The fields of DescribeAlarms output that PutMetricAlarm takes back unchanged.
_COPIED = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
)


def retarget(alarm_names: list[str], new_instance_id: str) -> list[str]:
    """Rewrite the InstanceId dimension of every named alarm; returns the alarms changed."""
    if not alarm_names:
        return []
    cloudwatch = client("cloudwatch")
    with api_call("read the application's alarms"):
        alarms = cloudwatch.describe_alarms(AlarmNames=alarm_names, AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    changed: list[str] = []
    for alarm in alarms:
        dimensions = alarm.get("Dimensions", [])
        if not any(d["Name"] == "InstanceId" for d in dimensions):
            continue  # e.g. the heartbeat alarm, keyed by application
        described: Mapping[str, Any] = alarm  # read by the names in _COPIED, not literal keys
        request: dict[str, Any] = {key: described[key] for key in _COPIED if described.get(key) not in (None, [])}
        request["Dimensions"] = [
            {"Name": d["Name"], "Value": new_instance_id if d["Name"] == "InstanceId" else d["Value"]}
            for d in dimensions
        ]
        with api_call(f"retarget alarm {alarm['AlarmName']}"):
            cloudwatch.put_metric_alarm(**request)
        changed.append(alarm["AlarmName"])
    return changed
