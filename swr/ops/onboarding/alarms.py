"""The alarms registration creates for an application: status checks on its instance and the
heartbeat-missing alarm; their changes to ALARM are what the stack's EventBridge rule turns
into failovers."""

from __future__ import annotations

from typing import Any

# The template's defaults for AlarmNamePrefix and MetricNamespace (the emulator's world uses them).
DEFAULT_ALARM_PREFIX = "swr-"
DEFAULT_METRIC_NAMESPACE = "swr"
STATUS_CHECK_METRICS = ("StatusCheckFailed_Instance", "StatusCheckFailed_System")
HEARTBEAT_METRIC = "Heartbeat"
HEARTBEAT_ALARM_SUFFIX = "heartbeat-missing"


def alarm_names(app: str, prefix: str = DEFAULT_ALARM_PREFIX) -> list[str]:
    return [*(f"{prefix}{app}-{metric}" for metric in STATUS_CHECK_METRICS), f"{prefix}{app}-{HEARTBEAT_ALARM_SUFFIX}"]


def create_alarms(
    cloudwatch: Any,
    app: str,
    instance_id: str,
    *,
    prefix: str = DEFAULT_ALARM_PREFIX,
    namespace: str = DEFAULT_METRIC_NAMESPACE,
) -> list[str]:
    """Status-check alarms on the instance and the heartbeat-missing alarm on the app; their
    state changes to ALARM are what the stack's EventBridge rule turns into failovers."""
    names = alarm_names(app, prefix)
    for metric in STATUS_CHECK_METRICS:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{prefix}{app}-{metric}",
            Namespace="AWS/EC2",
            MetricName=metric,
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
        )
    cloudwatch.put_metric_alarm(
        AlarmName=names[-1],
        Namespace=namespace,
        MetricName=HEARTBEAT_METRIC,
        Dimensions=[{"Name": "App", "Value": app}],
        Statistic="SampleCount",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",  # no heartbeat at all is the hang we want to catch
    )
    return names
