"""CloudWatch: alarm state changes emit their events (patch 3), and the embedded metric format
a function writes becomes metrics (patch 24)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, cast

from swr.emulator.moto_bridge._state import LOG, _hooks, _Patches, _require
from swr.emulator.moto_bridge.events import _iso_time, _publish_event
from swr.emulator.moto_bridge.lambda_runtime import _invocation
from swr.emulator.moto_bridge.timing import _new_uuid

# --------------------------------------------------------------------------------------------------
# 3. CloudWatch alarm state changes emit events
# --------------------------------------------------------------------------------------------------


def _alarm_timestamp(moment: dt.datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _alarm_state(value: str, reason: str, reason_data: str | None, moment: dt.datetime) -> dict[str, Any]:
    state: dict[str, Any] = {"value": value, "reason": reason, "timestamp": _alarm_timestamp(moment)}
    if reason_data:
        state["reasonData"] = reason_data
    return state


def _metric_stat(namespace: str, name: str, dims: Any, period: Any, stat: Any, unit: Any) -> dict[str, Any]:
    metric_stat: dict[str, Any] = {
        "metric": {"namespace": namespace, "name": name, "dimensions": {d.name: d.value for d in dims or []}},
        "period": int(period) if period is not None else None,
        "stat": stat,
    }
    if unit:
        metric_stat["unit"] = unit
    return metric_stat


def _alarm_configuration(alarm: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if alarm.description:
        config["description"] = alarm.description
    if getattr(alarm, "rule", None):  # composite alarm
        config["alarmRule"] = alarm.rule
        return config
    metrics: list[dict[str, Any]] = []
    if alarm.metric_data_queries:
        for q in alarm.metric_data_queries:
            entry: dict[str, Any] = {"id": q.id, "returnData": str(q.return_data).lower() != "false"}
            if q.label:
                entry["label"] = q.label
            if q.expression:
                entry["expression"] = q.expression
            if q.metric_stat:
                ms = q.metric_stat
                entry["metricStat"] = _metric_stat(
                    ms.metric.namespace, ms.metric.metric_name, ms.metric.dimensions, ms.period, ms.stat, ms.unit
                )
            metrics.append(entry)
    else:
        metrics.append(
            {
                # AWS gives single-metric alarms a generated id; keep it stable per alarm.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
                "metricStat": _metric_stat(
                    alarm.namespace,
                    alarm.metric_name,
                    alarm.dimensions,
                    alarm.period,
                    alarm.statistic or alarm.extended_statistic,
                    alarm.unit,
                ),
                "returnData": True,
            }
        )
    config["metrics"] = metrics
    return config


def _alarm_event(account: str, region: str, alarm: Any, previous: dict[str, Any]) -> dict[str, Any]:
    moment = alarm.state_updated_timestamp
    return {
        "version": "0",
        "id": str(_new_uuid()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": _iso_time(moment),
        "region": region,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": _alarm_state(alarm.state_value, alarm.state_reason, alarm.state_reason_data, moment),
            "previousState": previous,
            "configuration": _alarm_configuration(alarm),
        },
    }


def _patch_cloudwatch(p: _Patches) -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    original = _require(CloudWatchBackend, "set_alarm_state")

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        previous = None
        if alarm is not None:
            previous = _alarm_state(
                alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp
            )
        original(self, alarm_name, reason, reason_data, state_value)
        if alarm is None or previous is None or previous["value"] == alarm.state_value:
            return  # AWS emits only on an actual change of state value
        event = _alarm_event(self.account_id, self.region_name, alarm, previous)
        _publish_event(self.account_id, self.region_name, event)
        hooks = _hooks()
        if hooks is not None:
            hooks.on_alarm_event(event)

    p.set(CloudWatchBackend, "set_alarm_state", set_alarm_state)


# --------------------------------------------------------------------------------------------------
# 24. Embedded metric format becomes metrics
# --------------------------------------------------------------------------------------------------
# A Lambda function's metrics (Powertools Metrics) are EMF documents in its log; CloudWatch Logs
# extracts them into CloudWatch metrics. The in-process handlers have no such path: Powertools'
# flush is where the document is written, so the same data points go into moto's CloudWatch
# there. The emulator keeps EMF off its own stdout (POWERTOOLS_METRICS_DISABLED in its process);
# what decides, as on AWS, is the function's own environment from its template.

_TRUE = ("1", "true", "yes", "on")


def emf_metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, PutMetricData MetricData) per directive of one EMF document, as CloudWatch
    Logs extracts it: every metric under every dimension set, at the document's timestamp. A
    dimension set naming a key the document lacks is skipped, as CloudWatch skips it."""
    meta = document.get("_aws") or {}
    moment = dt.datetime.fromtimestamp(int(meta.get("Timestamp") or time.time() * 1000) / 1000, tz=dt.UTC)
    timestamp = moment.replace(tzinfo=None)  # moto keeps naive UTC, as its own PutMetricData does
    extracted: list[tuple[str, list[dict[str, Any]]]] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        data: list[dict[str, Any]] = []
        for names in directive.get("Dimensions") or [[]]:
            if not all(name in document for name in names):
                continue
            dimensions = [{"Name": name, "Value": str(document[name])} for name in names]
            for definition in directive.get("Metrics") or []:
                values = document.get(definition["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if value is None:
                        continue
                    data.append(
                        {
                            "MetricName": definition["Name"],
                            "Dimensions": dimensions,
                            "Timestamp": timestamp,
                            "Value": float(value),
                            "Unit": definition.get("Unit") or "None",
                        }
                    )
        if data:
            extracted.append((str(directive["Namespace"]), data))
    return extracted


def _put_emf(fn: Any, document: dict[str, Any]) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    variables = getattr(fn, "environment_vars", None) or {}
    if str(variables.get("POWERTOOLS_METRICS_DISABLED", "")).lower() in _TRUE:
        return
    _, _, _, region, account = str(fn.function_arn).split(":")[:5]
    backend = cloudwatch_backends[account][region]
    for namespace, data in emf_metric_data(document):
        backend.put_metric_data(namespace, data)


def _patch_emf_metrics(p: _Patches) -> None:
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    original = _require(AmazonCloudWatchEMFProvider, "flush_metrics")

    def flush_metrics(self: Any, raise_on_empty_metrics: bool = False) -> None:
        fn = getattr(_invocation, "function", None)
        if fn is None:
            original(self, raise_on_empty_metrics)
            return
        if not self.metric_set:
            return  # in one process, steps running at once share Powertools' metric set: a
            # concurrent flush may have taken these already
        document = self.serialize_metric_set()
        try:
            _put_emf(fn, cast(dict[str, Any], document))
        except Exception:  # metrics never fail the function that wrote them
            LOG.warning("EMF from %s not turned into metrics", fn.function_name, exc_info=True)
        original(self, raise_on_empty_metrics)  # prints the document unless the process disables it
        self.clear_metrics()  # a disabled flush keeps them; they are in CloudWatch now

    p.set(AmazonCloudWatchEMFProvider, "flush_metrics", flush_metrics)
