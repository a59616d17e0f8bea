"""Lambda handlers run in-process by the moto bridge canary tests."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

CALLS: dict[str, int] = {}
RECEIVED: list[Any] = []
RECEIVED_EVENT = threading.Event()
_calls_lock = threading.Lock()

logger = Logger(service="swr-canary")
metrics = Metrics(namespace="SwrCanary", service="swr-canary")


class PermitRefused(Exception):
    """A domain error whose class name Step Functions must see as the error name."""


def _count(name: str) -> int:
    with _calls_lock:
        CALLS[name] = CALLS.get(name, 0) + 1
        return CALLS[name]


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _count("echo")
    return {
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "has_time_left": context.get_remaining_time_in_millis() > 0,
        "request_id": context.aws_request_id,
    }


def refuse(event: dict[str, Any], context: Any) -> None:
    _count("refuse")
    raise PermitRefused(f"no permit for {event.get('who', 'anyone')}")


def record(event: Any, context: Any) -> None:
    RECEIVED.append(event)
    RECEIVED_EVENT.set()


def heartbeat_at_once(event: dict[str, Any], context: Any) -> None:
    """Like a boot gate that sees its permit before the permit's Lambda has returned."""
    boto3.client("stepfunctions").send_task_heartbeat(taskToken=event["token"])
    RECEIVED.append(event)
    RECEIVED_EVENT.set()


def environment(event: dict[str, Any], context: Any) -> dict[str, str | None]:
    """What the handler sees of the named environment variables while it runs."""
    return {name: os.environ.get(name) for name in event["names"]}


def count_instances(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Proves a handler's own boto3 calls reach the same moto backends."""
    reservations = boto3.client("ec2").describe_instances()["Reservations"]
    return {"instances": sum(len(r["Instances"]) for r in reservations)}


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def powertools(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("powertools canary")
    metrics.add_metric(name="CanaryInvocations", unit=MetricUnit.Count, value=1)
    return {"ok": True}


def not_json(event: Any, context: Any) -> Any:
    return {1, 2}


def call_ec2(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make one EC2 call, named by the event (patch 42's canary)."""
    getattr(boto3.client("ec2"), str(event["action"]))()
    return {"ok": True}
