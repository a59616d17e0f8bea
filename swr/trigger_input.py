"""What an execution's input says about its trigger, read leniently: listings and reports
show any execution, whatever it was started with. Admit parses the same input strictly
(handlers/core/triggers.py), and these names come from there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.core.triggers import ALARM_DETAIL_TYPE, EC2_DETAIL_TYPE, RMS_DETAIL_TYPE, TriggerKind

OPERATOR_KINDS = frozenset({TriggerKind.DRILL.value, TriggerKind.RESUME.value})
KIND_OF_DETAIL_TYPE = {RMS_DETAIL_TYPE: "rms-fault", ALARM_DETAIL_TYPE: "alarm", EC2_DETAIL_TYPE: "ec2-state"}


def kind_of(trigger: Mapping[str, Any], unknown: str = "?") -> str:
    """drill, resume, rms-fault, alarm, ec2-state, or another event's detail-type."""
    if trigger.get("kind") in OPERATOR_KINDS:
        return str(trigger["kind"])
    detail_type = str(trigger.get("detail-type", ""))
    return KIND_OF_DETAIL_TYPE.get(detail_type, detail_type or unknown)


def app_of(trigger: Mapping[str, Any]) -> str | None:
    """The application the input names, when it names one: an operator's request, an RMS
    fault, or a heartbeat alarm's App dimension (an instance's alarm or EC2 event names only
    the instance; Admit finds whose it is)."""
    if trigger.get("kind") in OPERATOR_KINDS:
        return str(trigger.get("app"))
    detail = trigger.get("detail")
    if not isinstance(detail, Mapping):
        return None
    if detail.get("app"):
        return str(detail["app"])
    for metric in (detail.get("configuration") or {}).get("metrics") or []:
        dimensions = ((metric or {}).get("metricStat") or {}).get("metric", {}).get("dimensions") or {}
        if dimensions.get("App"):
            return str(dimensions["App"])
    return None
