"""EventBridge: rules deliver to Step Functions, Lambda and SNS targets, with AWS's retries and
dead-letter queues (patch 2), and PutEvents refuses what EventBridge refuses (patch 34). The
events CloudWatch alarms emit (patch 3) are in cloudwatch.py."""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from swr.emulator.moto_bridge import _state
from swr.emulator.moto_bridge._state import LOG, _api_client, _hooks, _Patches, _require
from swr.emulator.moto_bridge.authorization import _authorize, denials
from swr.emulator.moto_bridge.iam import as_emulator
from swr.emulator.moto_bridge.lambda_runtime import _invoke_async
from swr.emulator.moto_bridge.timing import _new_uuid, _sim_time, _sleep, _spawn

# --------------------------------------------------------------------------------------------------
# 2. EventBridge rules start executions / invoke Lambdas
# --------------------------------------------------------------------------------------------------

_OUR_TARGET_SERVICES = ("states", "lambda", "sns")


def _iso_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except ValueError:
            return value  # already a timestamp string
    else:
        moment = dt.datetime.now(tz=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aws_event(message: dict[str, Any]) -> dict[str, Any]:
    """moto's internal event message -> the envelope AWS delivers to targets (ISO time, no extras)."""
    keys = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
    event = {k: copy.deepcopy(message[k]) for k in keys if k in message}
    event["time"] = _iso_time(message.get("time"))
    return event


def _target_input(target: dict[str, Any], message: dict[str, Any], transform: bool) -> str:
    event = _aws_event(message)
    if not transform:
        return json.dumps(event)
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse as jsonpath  # moto's own dependency; parsed once (patch 46)

        found = jsonpath(target["InputPath"]).find(event)
        return json.dumps(found[0].value if found else None)
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        if not str(transformer.get("InputTemplate") or "{").lstrip().startswith(("{", "[")):
            return _filled_text_template(transformer, event)
        parsed = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": message.get("ingestion-time", time.time())},  # type: ignore[typeddict-item]
        )
        return json.dumps(parsed)
    return json.dumps(event)


def _filled_text_template(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """A plain-text InputTemplate (an SNS message, say), filled as AWS fills it: each <variable>
    becomes its value, a string as it is and anything else as JSON; a path the event lacks
    leaves the variable empty."""
    from jsonpath_ng.ext import parse as jsonpath  # moto's own dependency; parsed once (patch 46)

    text = str(transformer["InputTemplate"])
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        found = jsonpath(path).find(event)
        value = found[0].value if found else ""
        text = text.replace(f"<{name}>", value if isinstance(value, str) else json.dumps(value))
    return text


def _topic_policy_allows(policy: dict[str, Any], rule_arn: str) -> bool:
    """Does the topic's policy let EventBridge publish for this rule? An Allow of sns:Publish to
    the service principal events.amazonaws.com (or to anyone, unconditionally) whose
    aws:SourceArn condition, if it has one, names the rule. Deny statements are not read."""

    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    for statement in listed(policy.get("Statement") or []):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if not {"sns:publish", "sns:*", "*"} & {str(a).lower() for a in listed(statement.get("Action"))}:
            continue
        principal, conditions = statement.get("Principal"), statement.get("Condition") or {}
        anyone = principal in ("*", {"AWS": "*"}) and not conditions
        services = listed(principal.get("Service", [])) if isinstance(principal, dict) else []
        if not anyone and "events.amazonaws.com" not in services:
            continue
        sources = [
            arn
            for test in conditions.values()
            for key, arns in test.items()
            if key.lower() == "aws:sourcearn"
            for arn in listed(arns)
        ]
        if not sources or rule_arn in sources:
            return True
    return False


class _TopicPolicyRefuses(Exception):
    """EventBridge may not publish to the topic: AWS fails the delivery the same way."""


def _publish_to_topic(rule_arn: str, topic_arn: str, account: str, region: str, payload: str) -> None:
    from moto.sns.models import sns_backends

    topic = sns_backends[account][region].get_topic(topic_arn)
    if not _topic_policy_allows(json.loads(topic.policy), rule_arn):
        raise _TopicPolicyRefuses(f"the policy of {topic_arn} does not let events.amazonaws.com publish for {rule_arn}")
    topic.publish(message=payload)


def _deliver(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    arn = str(target["Arn"])
    parts = arn.split(":")
    service, region, account = parts[2], parts[3], parts[4]
    payload = _target_input(target, message, transform)
    if service == "states":
        from moto.stepfunctions.responses import get_backend

        # EventBridge starts the execution with the target's role (patch 42's evaluator).
        refused = _authorize(
            str(target.get("RoleArn") or ""),
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": arn},
            region,
            account,
        )
        if refused is not None or not target.get("RoleArn"):
            denials.append(refused or f"target {arn} of {rule_arn} has no role")
            raise _TargetRefuses(refused or f"target {arn} of {rule_arn} has no role to start it with")
        get_backend(account, region).start_execution(arn, str(_new_uuid()), payload)
    elif service == "sns":
        _publish_to_topic(rule_arn, arn, account, region, payload)
    else:
        from moto.awslambda_simple.models import lambda_simple_backends

        fn = lambda_simple_backends[account][region].get_function(arn, None)
        if not _function_policy_allows(fn, rule_arn):
            refused = f"the resource policy of {arn} does not let events.amazonaws.com invoke it for {rule_arn}"
            denials.append(refused)
            raise _TargetRefuses(refused)
        _invoke_async(fn, json.loads(payload))


class _TargetRefuses(Exception):
    pass


def _function_policy_allows(fn: Any, rule_arn: str) -> bool:
    """Lambda's resource-based policy: an EventBridge rule invokes a function only when a
    statement lets events.amazonaws.com call lambda:InvokeFunction, for this rule's ARN when
    it names one (AWS::Lambda::Permission with SourceArn). EventBridge User Guide, "Using
    resource-based policies for Amazon EventBridge" (Lambda targets need the function's
    resource-based policy, not a role)."""
    try:
        policy = fn.policy.get_policy()["Policy"]
    except Exception:  # no statement at all (moto raises its not-found)
        return False
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal", {})
        services = principal.get("Service") if isinstance(principal, dict) else principal
        actions = statement.get("Action")
        if statement.get("Effect") != "Allow" or "events.amazonaws.com" not in _as_list(services):
            continue
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in _as_list(actions)):
            continue
        conditions = {
            key.lower(): value
            for test in ("ArnLike", "ArnEquals", "StringEquals", "StringLike")
            for key, value in statement.get("Condition", {}).get(test, {}).items()
        }
        source = conditions.get("aws:sourcearn")
        if source is None or any(_arn_like(rule_arn, str(s)) for s in _as_list(source)):
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _arn_like(arn: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(arn, pattern)


_THROTTLING_CODES = ("Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded")


class _DeliveryFailed(Exception):
    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


_TARGET_ACTIONS = {
    "states": ("stepfunctions", "StartExecution", "stateMachineArn"),
    "lambda": ("lambda", "Invoke", "FunctionName"),
    "sns": ("sns", "Publish", "TopicArn"),
}


def _attempt(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    """One delivery, answered with the fault the simulation injects for the target's API."""
    arn = str(target["Arn"])
    service, action, key = _TARGET_ACTIONS[arn.split(":")[2]]
    params = {key: arn}
    hooks = _hooks()
    fault = hooks.fault_for(service, action, params) if hooks is not None else None
    if fault is not None:
        retryable = fault.status >= 500 or fault.code in _THROTTLING_CODES
        raise _DeliveryFailed(fault.code, fault.message, retryable)
    try:
        _deliver(rule_arn, target, message, transform)
    except Exception as error:  # e.g. the state machine is gone: not worth a retry
        raise _DeliveryFailed(type(error).__name__, str(error), False) from error


def _deliver_or_dead_letter(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    """The first attempt now; retries, in simulated time, on a thread of their own. EventBridge
    delivers as itself (with the target's role, or by the target's resource policy), not as the
    caller of PutEvents, whose thread this is."""
    with as_emulator():
        try:
            _attempt(rule_arn, target, message, transform)
            return
        except _DeliveryFailed as failure:
            if not failure.retryable:
                _dead_letter(rule_arn, target, message, failure, "non-retryable error", 0)
                return
    _spawn(
        _retry_delivery,
        name=f"swr-event-retry-{target.get('Id', '')}",
        args=(rule_arn, target, message, transform, _sim_time()),
    )


def _retry_delivery(
    rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool, first_attempt: float
) -> None:
    policy = target.get("RetryPolicy") or {}
    max_retries = int(policy.get("MaximumRetryAttempts", 185))
    max_age = float(policy.get("MaximumEventAgeInSeconds", 86400))
    failure = _DeliveryFailed("", "", True)
    for retry in range(1, max_retries + 1):
        _sleep(min(2.0**retry, 60.0))  # exponential backoff, capped at a minute
        if _state._bridge is None:
            return  # the emulator stopped; so did EventBridge
        if _sim_time() - first_attempt > max_age:
            _dead_letter(rule_arn, target, message, failure, "MaximumEventAgeInSeconds", retry - 1)
            return
        try:
            _attempt(rule_arn, target, message, transform)
            return
        except _DeliveryFailed as error:
            failure = error
            if not error.retryable:
                _dead_letter(rule_arn, target, message, error, "non-retryable error", retry)
                return
    _dead_letter(rule_arn, target, message, failure, "MaximumRetryAttempts", max_retries)


def _dead_letter(
    rule_arn: str, target: dict[str, Any], message: dict[str, Any], failure: _DeliveryFailed, why: str, retries: int
) -> None:
    """What EventBridge sends to a target's dead-letter queue: the event, and why in attributes."""
    queue_arn = str((target.get("DeadLetterConfig") or {}).get("Arn") or "")
    if not queue_arn:
        LOG.error("EventBridge rule %s: event for %s dropped (%s: %s)", rule_arn, target["Arn"], failure.code, why)
        return
    _, _, _, region, account, name = queue_arn.split(":")
    attributes = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": str(target["Arn"]),
        "ERROR_CODE": failure.code or "Unknown",
        "ERROR_MESSAGE": failure.message or why,
        "EXHAUSTED_RETRY_CONDITION": why,
        "RETRY_ATTEMPTS": str(retries),
    }
    sqs = _api_client("sqs", region)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(_aws_event(message)),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    LOG.warning("EventBridge rule %s: event for %s sent to %s (%s)", rule_arn, target["Arn"], queue_arn, why)


def _patch_events(p: _Patches) -> None:
    from moto.events.models import Rule

    original = _require(Rule, "send_to_targets")

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        # AWS never fails PutEvents because of a target, and does not deliver to disabled rules or
        # to schedule-only rules; moto does all three.
        if getattr(self, "state", "ENABLED") == "DISABLED":
            return
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        if not self.event_pattern.matches_event(original_event):
            return
        ours: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for target in self.targets:
            service = str(target.get("Arn", "")).split(":")[2:3]
            (ours if service and service[0] in _OUR_TARGET_SERVICES else others).append(target)
        for target in ours:
            _deliver_or_dead_letter(str(self.arn), target, dict(original_event), transform_input)
        if others:
            clone = copy.copy(self)  # moto's own delivery for the other targets, on a shallow copy
            clone.targets = others
            try:
                original(clone, original_event, transform_input)
            except Exception:
                LOG.exception("EventBridge rule %s: moto delivery failed", self.name)

    p.set(Rule, "send_to_targets", send_to_targets)


def _publish_event(account: str, region: str, event: dict[str, Any]) -> None:
    """Route an AWS-service event on the default bus (as moto's put_events does, same id)."""
    from moto.events.models import events_backends

    bus = events_backends[account][region].describe_event_bus("default")
    message = copy.deepcopy(event)
    message["time"] = dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    message["ingestion-time"] = time.time()
    for rule in list(bus.rules.values()):
        rule.send_to_targets(cast(Any, copy.deepcopy(message)))


# --------------------------------------------------------------------------------------------------
# 34. PutEvents limits: entry size and aws.* sources
# --------------------------------------------------------------------------------------------------
# EventBridge User Guide, "Calculating PutEvents event entry size": the total entry size must be
# less than 256 KB, counting Time as 14 bytes and the UTF-8 bytes of Source, DetailType, Detail
# and each Resources entry; an oversize request fails as a whole ("ValidationException: Total size
# of the entries in the request is over the limit."). Sources starting with "aws." are reserved for
# AWS services: such an entry from a caller fails alone, with NotAuthorizedForSourceException.

_MAX_PUT_EVENTS_BYTES = 256 * 1024
_aws_service = threading.local()


@contextmanager
def as_aws_service() -> Iterator[None]:
    """Publish as AWS itself does (EC2 state changes, alarm state changes): aws.* is allowed,
    and no caller's role is asked (patch 42)."""
    previous = getattr(_aws_service, "active", False)
    _aws_service.active = True
    try:
        with as_emulator():
            yield
    finally:
        _aws_service.active = previous


def put_events_entry_size(entry: dict[str, Any]) -> int:
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [] if r is not None)


def _patch_put_events_limits(p: _Patches) -> None:
    from moto.events.exceptions import ValidationException
    from moto.events.models import EventsBackend

    put_events = _require(EventsBackend, "put_events")

    def limited_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if sum(put_events_entry_size(e) for e in events) >= _MAX_PUT_EVENTS_BYTES:
            raise ValidationException("Total size of the entries in the request is over the limit.")
        if getattr(_aws_service, "active", False):
            return list(put_events(self, events))
        refused = {n for n, e in enumerate(events) if str(e.get("Source") or "").startswith("aws.")}
        kept = [e for n, e in enumerate(events) if n not in refused]
        accepted = iter(put_events(self, kept) if kept else [])
        not_authorized = {
            "ErrorCode": "NotAuthorizedForSourceException",
            "ErrorMessage": "Not authorized for the source.",
        }
        return [dict(not_authorized) if n in refused else next(accepted) for n in range(len(events))]

    p.set(EventsBackend, "put_events", limited_put_events)
