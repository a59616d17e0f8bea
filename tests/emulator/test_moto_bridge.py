"""Canary tests for swr.emulator.moto_bridge: one (or more) per moto patch.

Each test proves a patch still works against the pinned moto, so that a moto upgrade that moves
the internals we patch fails here, loudly, rather than somewhere in a scenario.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from swr.emulator import moto_bridge
from swr.emulator.moto_bridge import ApiFault, BridgeHooks, lambda_runtime
from tests.emulator import sample_handlers

REGION = "ap-northeast-1"
HANDLERS = "tests.emulator.sample_handlers"
NO_RETRIES = Config(retries={"total_max_attempts": 1})


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


_clients: dict[tuple[str, str | None], Any] = {}


@pytest.fixture
def hooks() -> Iterator[BridgeHooks]:
    hooks = BridgeHooks(warp=lambda: 100.0)
    _clients.clear()
    sample_handlers.CALLS.clear()
    sample_handlers.RECEIVED.clear()
    sample_handlers.RECEIVED_EVENT.clear()
    moto_bridge.start(hooks, region=REGION)
    try:
        yield hooks
    finally:
        moto_bridge.stop()


def client(service: str, endpoint_url: str | None = None) -> Any:
    """One client per service (and endpoint) per test: creating boto3 clients is the slow part."""
    key = (service, endpoint_url)
    if key not in _clients:
        _clients[key] = boto3.client(  # type: ignore[call-overload]
            service, region_name=REGION, config=NO_RETRIES, endpoint_url=endpoint_url
        )
    return _clients[key]


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("placeholder.py", "")
    return buf.getvalue()


ANYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def role_arn(name: str = "canary", policy: dict[str, Any] | None = ANYTHING) -> str:
    """A role for the canaries' functions; by default it may call anything: they test the bridge,
    not IAM (patch 42 authorizes every call a function makes against its role)."""
    iam = client("iam")
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        return arn


def make_function(name: str, handler: str) -> str:
    fn = client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role_arn(),
        Handler=f"{HANDLERS}.{handler}",
        Code={"ZipFile": _zip()},
    )
    return str(fn["FunctionArn"])


def make_state_machine(definition: dict[str, Any], name: str | None = None) -> str:
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name or f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role_arn()
    )["stateMachineArn"]
    return str(arn)


def wait_done(execution_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    sfn = client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        desc: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] != "RUNNING":
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still running after {timeout}s: {execution_arn}")
        time.sleep(0.02)


def run(state_machine_arn: str, payload: Any = None, timeout: float = 10.0) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    arn = client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, input=json.dumps(payload or {}))[
        "executionArn"
    ]
    desc = wait_done(arn, timeout)
    return desc, time.monotonic() - started


def history(execution_arn: str) -> list[dict[str, Any]]:
    return list(client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])


def executions(state_machine_arn: str) -> list[dict[str, Any]]:
    return list(client("stepfunctions").list_executions(stateMachineArn=state_machine_arn)["executions"])


def eventually(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def make_subnet() -> str:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")
    return str(subnet["Subnet"]["SubnetId"])


def run_instance(subnet: str, token: str | None = None, instance_type: str = "m5.large") -> dict[str, Any]:
    kwargs: dict[str, Any] = {"ClientToken": token} if token else {}
    reservation = client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType=instance_type, SubnetId=subnet, **kwargs
    )
    return dict(reservation)


def describe_instance(instance_id: str) -> dict[str, Any]:
    reservations = client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


def task(resource: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, **extra}


# --------------------------------------------------------------------------------------------------
# 1. Lambda runs real code in-process
# --------------------------------------------------------------------------------------------------


def test_invoke_runs_the_handler_in_process_with_a_context(hooks: BridgeHooks) -> None:
    arn = make_function("echo", "echo")
    lam = client("lambda")

    resp = lam.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
    body = json.loads(resp["Payload"].read())

    assert "FunctionError" not in resp
    assert body["event"] == {"a": 1}
    assert body["function_name"] == "echo"
    assert body["arn"] == arn
    assert body["memory"] == 128
    assert body["has_time_left"] is True
    uuid.UUID(body["request_id"])


def test_handler_boto3_calls_reach_the_same_backends(hooks: BridgeHooks) -> None:
    run_instance(make_subnet())
    make_function("count", "count_instances")

    resp = client("lambda").invoke(FunctionName="count", Payload=b"{}")

    assert json.loads(resp["Payload"].read()) == {"instances": 1}


def test_powertools_decorators_accept_the_context(hooks: BridgeHooks) -> None:
    make_function("pt", "powertools")

    resp = client("lambda").invoke(FunctionName="pt", Payload=b"{}")

    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"ok": True}


def test_handler_errors_are_reported_like_the_python_runtime(hooks: BridgeHooks) -> None:
    make_function("refuse", "refuse")
    make_function("marshal", "not_json")
    client("lambda").create_function(
        FunctionName="missing",
        Runtime="python3.11",
        Role=role_arn(),
        Handler="tests.emulator.no_such_module.handler",
        Code={"ZipFile": _zip()},
    )
    lam = client("lambda")

    refused = lam.invoke(FunctionName="refuse", Payload=json.dumps({"who": "node-a"}))
    body = json.loads(refused["Payload"].read())
    assert refused["FunctionError"] == "Unhandled"
    assert body["errorType"] == "PermitRefused"
    assert body["errorMessage"] == "no permit for node-a"
    assert any("sample_handlers.py" in frame for frame in body["stackTrace"])
    assert "moto_bridge" not in body["stackTrace"][0]  # the trace starts in the handler, as on AWS

    marshal = lam.invoke(FunctionName="marshal", Payload=b"{}")
    assert marshal["FunctionError"] == "Unhandled"
    assert json.loads(marshal["Payload"].read())["errorType"] == "Runtime.MarshalError"

    missing = lam.invoke(FunctionName="missing", Payload=b"{}")
    assert missing["FunctionError"] == "Unhandled"
    assert json.loads(missing["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_event_invocation_runs_asynchronously(hooks: BridgeHooks) -> None:
    make_function("record", "record")

    resp = client("lambda").invoke(FunctionName="record", InvocationType="Event", Payload=b'{"x": 1}')

    assert resp["StatusCode"] == 202
    assert sample_handlers.RECEIVED_EVENT.wait(5)
    assert sample_handlers.RECEIVED == [{"x": 1}]


def test_handler_runs_with_its_functions_environment_and_stop_restores_the_process_environment(
    hooks: BridgeHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWR_CANARY_GREETING", "from the shell")
    monkeypatch.delenv("SWR_CANARY_TABLE", raising=False)
    changes: list[str | None] = []
    hooks.on_function_environment = lambda: changes.append(os.environ.get("SWR_CANARY_TABLE"))
    lam = client("lambda")
    lam.create_function(
        FunctionName="env",
        Runtime="python3.11",
        Role=role_arn(),
        Handler=f"{HANDLERS}.environment",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"SWR_CANARY_GREETING": "hello", "SWR_CANARY_TABLE": "records"}},
    )

    def seen() -> Any:
        names = ["SWR_CANARY_GREETING", "SWR_CANARY_TABLE"]
        return json.loads(lam.invoke(FunctionName="env", Payload=json.dumps({"names": names}))["Payload"].read())

    assert seen() == {"SWR_CANARY_GREETING": "hello", "SWR_CANARY_TABLE": "records"}
    assert changes == ["records"]  # told once the variables are in place
    seen()
    assert changes == ["records"]  # the same variables again: nothing changed, nothing to tell

    lam.update_function_configuration(
        FunctionName="env", Environment={"Variables": {"SWR_CANARY_GREETING": "hello", "SWR_CANARY_TABLE": "v2"}}
    )
    assert seen() == {"SWR_CANARY_GREETING": "hello", "SWR_CANARY_TABLE": "v2"}
    assert changes == ["records", "v2"]

    moto_bridge.stop()
    assert os.environ.get("SWR_CANARY_GREETING") == "from the shell"
    assert "SWR_CANARY_TABLE" not in os.environ


def test_lambda_tasks_of_both_resource_forms_run_the_handler(hooks: BridgeHooks) -> None:
    arn = make_function("echo", "echo")
    sm = make_state_machine(
        {
            "StartAt": "Optimised",
            "States": {
                "Optimised": task(
                    "arn:aws:states:::lambda:invoke",
                    Parameters={"FunctionName": "echo", "Payload": {"via": "lambda:invoke"}},
                    ResultSelector={"body.$": "$.Payload"},
                    ResultPath="$.optimised",
                    Next="Bare",
                ),
                "Bare": task(arn, Parameters={"via": "bare-arn"}, ResultPath="$.bare", End=True),
            },
        }
    )

    desc, _ = run(sm, {"start": True})

    assert desc["status"] == "SUCCEEDED", desc
    output = json.loads(desc["output"])
    assert output["optimised"]["body"]["event"] == {"via": "lambda:invoke"}
    assert output["bare"]["event"] == {"via": "bare-arn"}
    assert sample_handlers.CALLS["echo"] == 2


@pytest.mark.parametrize("form", ["lambda:invoke", "bare-arn"])
def test_handler_exception_class_is_the_error_name_for_retry_and_catch(hooks: BridgeHooks, form: str) -> None:
    arn = make_function("refuse", "refuse")
    if form == "lambda:invoke":
        resource, params = "arn:aws:states:::lambda:invoke", {"FunctionName": "refuse", "Payload.$": "$"}
        interval = 30  # the time-warp canary for Retry: 2 x 30 declared seconds in well under 2 s
    else:
        resource, params = arn, {"who.$": "$.who"}
        interval = 1
    sm = make_state_machine(
        {
            "StartAt": "Admit",
            "States": {
                "Admit": task(
                    resource,
                    Parameters=params,
                    Retry=[
                        {
                            "ErrorEquals": ["PermitRefused"],
                            "IntervalSeconds": interval,
                            "MaxAttempts": 2,
                            "BackoffRate": 1,
                        }
                    ],
                    Catch=[{"ErrorEquals": ["PermitRefused"], "ResultPath": "$.error", "Next": "Refused"}],
                    End=True,
                ),
                "Refused": {"Type": "Pass", "End": True},
            },
        }
    )

    desc, elapsed = run(sm, {"who": "node-a"})

    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "PermitRefused"
    assert sample_handlers.CALLS["refuse"] == 3  # first try + 2 retries
    assert elapsed < 2.0
    failed_type = "TaskFailed" if form == "lambda:invoke" else "LambdaFunctionFailed"
    details_key = "taskFailedEventDetails" if form == "lambda:invoke" else "lambdaFunctionFailedEventDetails"
    failures = [e for e in history(desc["executionArn"]) if e["type"] == failed_type]
    assert len(failures) == 3
    assert failures[0][details_key]["error"] == "PermitRefused"
    assert json.loads(failures[0][details_key]["cause"])["errorMessage"] == "no permit for node-a"


def _hold_and_answer(handler: str, output: dict[str, Any], **timing: int) -> dict[str, Any]:
    """Run a waitForTaskToken task on ``handler`` and answer its token from another thread."""
    make_function(handler, handler)
    sm = make_state_machine(
        {
            "StartAt": "Hold",
            "States": {
                "Hold": task(
                    "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    Parameters={"FunctionName": handler, "Payload": {"token.$": "$$.Task.Token"}},
                    TimeoutSeconds=3600,
                    End=True,
                    **timing,
                )
            },
        }
    )

    def answer() -> None:
        assert sample_handlers.RECEIVED_EVENT.wait(5)
        token = sample_handlers.RECEIVED[0]["token"]
        client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))

    responder = threading.Thread(target=answer)
    responder.start()
    desc, _ = run(sm)
    responder.join()
    return desc


def test_wait_for_task_token_is_completed_from_another_thread(hooks: BridgeHooks) -> None:
    desc = _hold_and_answer("record", {"granted": True})

    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"granted": True}


def test_a_heartbeat_sent_while_the_tasks_lambda_still_runs_is_accepted(hooks: BridgeHooks) -> None:
    desc = _hold_and_answer("heartbeat_at_once", {"started": True}, HeartbeatSeconds=600)

    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"started": True}


# --------------------------------------------------------------------------------------------------
# 2. EventBridge rules start executions / invoke Lambdas
# --------------------------------------------------------------------------------------------------


def _put(source: str, detail: dict[str, Any], detail_type: str = "Canary") -> dict[str, Any]:
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
    return dict(client("events").put_events(Entries=[entry]))


def test_rule_with_state_machine_target_starts_one_execution_with_the_event(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    events = client("events")
    events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["swr.canary"]}))
    events.put_targets(Rule="canary", Targets=[{"Id": "sm", "Arn": sm, "RoleArn": role_arn()}])

    resp = _put("swr.canary", {"node": "a"})
    assert resp["FailedEntryCount"] == 0
    eventually(lambda: len(executions(sm)) == 1)
    desc = wait_done(executions(sm)[0]["executionArn"])
    event = json.loads(desc["input"])
    assert event["source"] == "swr.canary"
    assert event["detail-type"] == "Canary"
    assert event["detail"] == {"node": "a"}
    assert event["id"] == resp["Entries"][0]["EventId"]
    assert event["account"] == "123456789012" and event["region"] == REGION
    assert event["time"].endswith("Z") and "T" in event["time"]  # ISO 8601, as AWS delivers it
    uuid.UUID(executions(sm)[0]["name"])

    _put("someone.else", {"node": "b"})
    time.sleep(0.1)
    assert len(executions(sm)) == 1


def _dead_letter_queue() -> tuple[str, str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="canary-dead-letters")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_a_delivery_that_is_throttled_is_retried_until_it_starts_the_execution(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    throttled: list[int] = []

    def throttle_twice(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
        if (service, action) == ("stepfunctions", "StartExecution") and len(throttled) < 2:
            throttled.append(1)
            return ApiFault("ThrottlingException", "Rate exceeded", 400)
        return None

    hooks.fault_for = throttle_twice
    url, queue = _dead_letter_queue()
    events = client("events")
    events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["swr.canary"]}))
    target = {"Id": "sm", "Arn": sm, "RoleArn": role_arn(), "DeadLetterConfig": {"Arn": queue}}
    events.put_targets(Rule="canary", Targets=[{**target, "RetryPolicy": {"MaximumRetryAttempts": 5}}])

    _put("swr.canary", {"node": "a"})

    eventually(lambda: len(executions(sm)) == 1)
    assert len(throttled) == 2
    assert "Messages" not in client("sqs").receive_message(QueueUrl=url)


def test_a_delivery_that_cannot_succeed_goes_to_the_dead_letter_queue_with_its_reason(hooks: BridgeHooks) -> None:
    gone = f"arn:aws:states:{REGION}:123456789012:stateMachine:deleted"
    url, queue = _dead_letter_queue()
    events = client("events")
    events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["swr.canary"]}))
    events.put_targets(
        Rule="canary", Targets=[{"Id": "sm", "Arn": gone, "RoleArn": role_arn(), "DeadLetterConfig": {"Arn": queue}}]
    )

    assert _put("swr.canary", {"node": "a"})["FailedEntryCount"] == 0  # PutEvents never fails for a target

    (letter,) = client("sqs").receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes["RULE_ARN"].endswith(":rule/canary") and attributes["TARGET_ARN"] == gone
    assert attributes["ERROR_CODE"] and attributes["EXHAUSTED_RETRY_CONDITION"] == "non-retryable error"
    assert json.loads(letter["Body"])["detail"] == {"node": "a"}


def test_rule_target_input_path_transformer_and_disabled_rule(hooks: BridgeHooks) -> None:
    sm_path = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sm_tx = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sm_off = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    events = client("events")
    pattern = json.dumps({"source": ["swr.canary"]})
    events.put_rule(Name="on", EventPattern=pattern)
    events.put_targets(
        Rule="on",
        Targets=[
            {"Id": "path", "Arn": sm_path, "RoleArn": role_arn(), "InputPath": "$.detail"},
            {
                "Id": "tx",
                "Arn": sm_tx,
                "RoleArn": role_arn(),
                "InputTransformer": {
                    "InputPathsMap": {"n": "$.detail.node"},
                    "InputTemplate": '{"node": "<n>", "kind": "failover"}',
                },
            },
        ],
    )
    events.put_rule(Name="off", EventPattern=pattern, State="DISABLED")
    events.put_targets(Rule="off", Targets=[{"Id": "off", "Arn": sm_off, "RoleArn": role_arn()}])

    _put("swr.canary", {"node": "a", "extra": 1})

    eventually(lambda: len(executions(sm_path)) == 1 and len(executions(sm_tx)) == 1)
    assert json.loads(wait_done(executions(sm_path)[0]["executionArn"])["input"]) == {"node": "a", "extra": 1}
    assert json.loads(wait_done(executions(sm_tx)[0]["executionArn"])["input"]) == {
        "node": "a",
        "kind": "failover",
    }
    assert executions(sm_off) == []


def test_rule_with_lambda_target_invokes_it_and_other_targets_do_not_break_put_events(
    hooks: BridgeHooks,
) -> None:
    fn = make_function("record", "record")
    stream = f"arn:aws:kinesis:{REGION}:123456789012:stream/canary"  # a target moto cannot deliver to
    events = client("events")
    rule = events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["swr.canary"]}))["RuleArn"]
    events.put_targets(Rule="canary", Targets=[{"Id": "kinesis", "Arn": stream}, {"Id": "fn", "Arn": fn}])
    # The function's resource policy lets this rule invoke it (AWS::Lambda::Permission).
    client("lambda").add_permission(
        FunctionName=fn,
        StatementId="events",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule,
    )

    assert _put("swr.canary", {"node": "a"})["FailedEntryCount"] == 0

    assert sample_handlers.RECEIVED_EVENT.wait(5)
    assert sample_handlers.RECEIVED[0]["detail"] == {"node": "a"}


@pytest.mark.refusals_expected
def test_a_target_eventbridge_may_not_call_goes_to_the_dead_letter_queue(hooks: BridgeHooks) -> None:
    # A state machine target is started with the target's role, which must allow
    # states:StartExecution; a function target is invoked only if its resource policy lets
    # events.amazonaws.com do so for the rule. Neither is retried (EventBridge User Guide,
    # "Event retry policy and using dead-letter queues": permission errors go to the DLQ at once).
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    fn = make_function("record", "record")
    url, queue = _dead_letter_queue()
    events = client("events")
    events.put_rule(Name="canary", EventPattern=json.dumps({"source": ["swr.canary"]}))
    nothing = role_arn("nothing", None)  # no policy: may do nothing
    dead_letters = {"DeadLetterConfig": {"Arn": queue}}
    events.put_targets(
        Rule="canary",
        Targets=[{"Id": "sm", "Arn": sm, "RoleArn": nothing, **dead_letters}, {"Id": "fn", "Arn": fn, **dead_letters}],
    )

    _put("swr.canary", {"node": "a"})

    letters = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    reasons = {m["MessageAttributes"]["TARGET_ARN"]["StringValue"]: m for m in letters["Messages"]}
    assert set(reasons) == {sm, fn} and executions(sm) == []
    assert not sample_handlers.RECEIVED_EVENT.is_set()
    assert any("not authorized to perform states:StartExecution" in d for d in moto_bridge.denials)
    assert any("does not let events.amazonaws.com invoke it" in d for d in moto_bridge.denials)


def test_put_events_refuses_a_request_of_256_kb_or_more_as_a_whole(hooks: BridgeHooks) -> None:
    # EventBridge User Guide, "Calculating PutEvents event entry size": Source, DetailType, Detail
    # and Resources count in UTF-8 bytes (Time 14); the total must stay under 256 KB.
    big = {"Source": "swr.canary", "DetailType": "big", "Detail": json.dumps({"x": "y" * (256 * 1024)})}

    error = _raises(lambda: client("events").put_events(Entries=[big]), "ValidationException", 400)

    assert "Total size of the entries in the request is over the limit" in str(error)
    assert moto_bridge.put_events_entry_size({**big, "Time": 1, "Resources": ["é"]}) == (
        14 + len("swr.canary") + len("big") + len(big["Detail"]) + 2
    )


def test_put_events_refuses_aws_sources_per_entry_except_from_aws_itself(hooks: BridgeHooks) -> None:
    events = client("events")
    entries = [
        {"Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification", "Detail": "{}"},
        {"Source": "swr.canary", "DetailType": "ok", "Detail": "{}"},
    ]

    refused, accepted = events.put_events(Entries=entries)["Entries"]

    assert refused["ErrorCode"] == "NotAuthorizedForSourceException" and "EventId" in accepted
    with moto_bridge.as_aws_service():  # the simulation publishing what EC2 itself would
        assert events.put_events(Entries=entries[:1])["FailedEntryCount"] == 0


def _topic_with_a_subscriber(policy: dict[str, Any] | None) -> tuple[str, str]:
    """A topic (with this policy, if given) and the URL of a queue subscribed to it, raw."""
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name=f"canary-{uuid.uuid4().hex[:6]}")["TopicArn"]
    if policy is not None:
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    url = sqs.create_queue(QueueName=f"subscriber-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue, Attributes={"RawMessageDelivery": "true"})
    return topic, url


def _events_may_publish(rule_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:SourceArn": [rule_arn]}},
            }
        ],
    }


def test_rule_with_topic_target_publishes_the_text_its_transformer_fills(hooks: BridgeHooks) -> None:
    events = client("events")
    rule = events.put_rule(Name="notify", EventPattern=json.dumps({"source": ["swr.canary"]}))["RuleArn"]
    topic, url = _topic_with_a_subscriber(_events_may_publish(rule))
    template = "node <node> is <state>\nseconds: <seconds>, missing: [<missing>]\nsee https://<region>/x"
    transformer = {
        "InputPathsMap": {
            "node": "$.detail.node",
            "state": "$.detail.state",
            "seconds": "$.detail.seconds",
            "missing": "$.detail.nothing",
            "region": "$.region",
        },
        "InputTemplate": template,
    }
    events.put_targets(Rule="notify", Targets=[{"Id": "t", "Arn": topic, "InputTransformer": transformer}])

    _put("swr.canary", {"node": "a", "state": "up", "seconds": 12.5})

    (message,) = client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == f"node a is up\nseconds: 12.5, missing: []\nsee https://{REGION}/x"


def test_a_topic_whose_policy_does_not_let_the_rule_publish_sends_the_event_to_the_dead_letter_queue(
    hooks: BridgeHooks,
) -> None:
    events = client("events")
    events.put_rule(Name="notify", EventPattern=json.dumps({"source": ["swr.canary"]}))
    other_rule = f"arn:aws:events:{REGION}:123456789012:rule/someone-else"
    topic, url = _topic_with_a_subscriber(_events_may_publish(other_rule))
    default_policy_topic, _ = _topic_with_a_subscriber(None)  # the account only: EventBridge may not
    letters, queue = _dead_letter_queue()
    targets = [
        {"Id": "named-other", "Arn": topic, "DeadLetterConfig": {"Arn": queue}},
        {"Id": "default", "Arn": default_policy_topic, "DeadLetterConfig": {"Arn": queue}},
    ]
    events.put_targets(Rule="notify", Targets=targets)

    _put("swr.canary", {"node": "a"})

    found = client("sqs").receive_message(QueueUrl=letters, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    reasons = {m["MessageAttributes"]["TARGET_ARN"]["StringValue"]: m for m in found["Messages"]}
    assert set(reasons) == {topic, default_policy_topic}
    for letter in reasons.values():
        assert letter["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "_TopicPolicyRefuses"
    assert "Messages" not in client("sqs").receive_message(QueueUrl=url)


def test_a_throttled_publish_to_a_topic_is_retried(hooks: BridgeHooks) -> None:
    throttled: list[dict[str, Any]] = []

    def throttle_once(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
        if (service, action) == ("sns", "Publish") and not throttled:
            throttled.append(params)
            return ApiFault("Throttling", "Rate exceeded", 400)
        return None

    hooks.fault_for = throttle_once
    events = client("events")
    rule = events.put_rule(Name="notify", EventPattern=json.dumps({"source": ["swr.canary"]}))["RuleArn"]
    topic, url = _topic_with_a_subscriber(_events_may_publish(rule))
    events.put_targets(Rule="notify", Targets=[{"Id": "t", "Arn": topic, "RetryPolicy": {"MaximumRetryAttempts": 3}}])

    _put("swr.canary", {"node": "a"})

    eventually(lambda: "Messages" in client("sqs").receive_message(QueueUrl=url, VisibilityTimeout=0))
    assert throttled == [{"TopicArn": topic}]


# --------------------------------------------------------------------------------------------------
# 3. CloudWatch alarm state changes emit events
# --------------------------------------------------------------------------------------------------


def test_alarm_state_change_publishes_the_aws_event(hooks: BridgeHooks) -> None:
    seen: list[dict[str, Any]] = []
    hooks.on_alarm_event = seen.append
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    events = client("events")
    events.put_rule(
        Name="alarms",
        EventPattern=json.dumps({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}),
    )
    events.put_targets(Rule="alarms", Targets=[{"Id": "sm", "Arn": sm, "RoleArn": role_arn()}])
    cw = client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="node-a-down",
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed",
        Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )

    cw.set_alarm_state(AlarmName="node-a-down", StateValue="ALARM", StateReason="checks failed")
    cw.set_alarm_state(AlarmName="node-a-down", StateValue="ALARM", StateReason="still failing")

    eventually(lambda: len(executions(sm)) >= 1)
    time.sleep(0.2)
    assert len(executions(sm)) == 1  # no event when the value does not change
    event = json.loads(wait_done(executions(sm)[0]["executionArn"])["input"])
    assert event["source"] == "aws.cloudwatch"
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    alarm_arn = cw.describe_alarms(AlarmNames=["node-a-down"])["MetricAlarms"][0]["AlarmArn"]
    assert event["resources"] == [alarm_arn]
    detail = event["detail"]
    assert detail["alarmName"] == "node-a-down"
    assert detail["state"]["value"] == "ALARM"
    assert detail["state"]["reason"] == "checks failed"
    assert detail["previousState"]["value"] == "OK"
    metric = detail["configuration"]["metrics"][0]
    assert metric["returnData"] is True
    assert metric["metricStat"] == {
        "metric": {
            "namespace": "AWS/EC2",
            "name": "StatusCheckFailed",
            "dimensions": {"InstanceId": "i-0123456789abcdef0"},
        },
        "period": 60,
        "stat": "Maximum",
    }
    assert seen == [event]

    cw.set_alarm_state(AlarmName="node-a-down", StateValue="OK", StateReason="recovered")
    eventually(lambda: len(executions(sm)) == 2)
    assert [e["detail"]["state"]["value"] for e in seen] == ["ALARM", "OK"]


# --------------------------------------------------------------------------------------------------
# 4. Time warp
# --------------------------------------------------------------------------------------------------


def test_wait_state_is_warped(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 50, "End": True}}})

    desc, elapsed = run(sm)

    assert desc["status"] == "SUCCEEDED"
    assert 0.3 < elapsed < 2.0  # 50 simulated s at warp 100 = 0.5 s real
    types = [e["type"] for e in history(desc["executionArn"])]
    assert types == ["ExecutionStarted", "WaitStateEntered", "WaitStateExited", "ExecutionSucceeded"]


def test_timeouts_and_heartbeats_are_warped(hooks: BridgeHooks) -> None:
    make_function("record", "record")
    sfn = client("stepfunctions")

    def hold(**timing: Any) -> str:
        return make_state_machine(
            {
                "StartAt": "Hold",
                "States": {
                    "Hold": task(
                        "arn:aws:states:::lambda:invoke.waitForTaskToken",
                        Parameters={"FunctionName": "record", "Payload": {"token.$": "$$.Task.Token"}},
                        **({"End": True} if "Catch" not in timing else {}),
                        **timing,
                    ),
                    "Caught": {"Type": "Pass", "End": True},
                },
            }
        )

    timeout_sm = hold(TimeoutSeconds=300)
    heartbeat_sm = hold(TimeoutSeconds=3600, HeartbeatSeconds=100)
    caught_sm = hold(
        TimeoutSeconds=3600,  # without it moto defaults TimeoutSeconds to 60 when HeartbeatSeconds is set
        HeartbeatSeconds=100,
        Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}],  # AWS: covers heartbeats too
    )
    program_sm = make_state_machine(
        {"TimeoutSeconds": 100, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1000, "End": True}}}
    )
    started = time.monotonic()
    arns = [
        sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
        for sm in (timeout_sm, heartbeat_sm, caught_sm, program_sm)
    ]
    timed_out, heartbeat, caught, program = (wait_done(arn, timeout=10) for arn in arns)
    elapsed = time.monotonic() - started

    assert (timed_out["status"], timed_out.get("error")) == ("FAILED", "States.Timeout")
    assert (heartbeat["status"], heartbeat.get("error")) == ("FAILED", "States.HeartbeatTimeout")
    assert caught["status"] == "SUCCEEDED"
    assert json.loads(caught["output"])["Error"] == "States.HeartbeatTimeout"
    assert program["status"] == "TIMED_OUT"
    assert elapsed < 6.0  # 300 simulated s = 3 s real at warp 100
    scheduled = [e for e in history(arns[0]) if e["type"] == "TaskScheduled"]
    assert scheduled[0]["taskScheduledEventDetails"]["timeoutInSeconds"] == 300  # declared, not warped
    heartbeat_events = {e["type"]: e for e in history(arns[1])}
    assert heartbeat_events["TaskScheduled"]["taskScheduledEventDetails"]["heartbeatInSeconds"] == 100
    assert heartbeat_events["TaskTimedOut"]["taskTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"


def test_warp_is_read_live_and_zero_pauses(hooks: BridgeHooks) -> None:
    factor = [0.0]
    hooks.warp = lambda: factor[0]
    sm = make_state_machine({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}})
    arn = client("stepfunctions").start_execution(stateMachineArn=sm, input="{}")["executionArn"]
    time.sleep(0.3)
    assert client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"  # paused

    factor[0] = 1000.0  # takes effect within one real slice (0.5 s)

    assert wait_done(arn, timeout=3)["status"] == "SUCCEEDED"


# --------------------------------------------------------------------------------------------------
# 5. Cached interpreter clients
# --------------------------------------------------------------------------------------------------


def test_interpreter_reuses_one_client_for_many_tasks(hooks: BridgeHooks) -> None:
    arn = make_function("echo", "echo")
    sm = make_state_machine(
        {
            "StartAt": "One",
            "States": {
                "One": task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "echo"}, Next="Two"),
                "Two": task(arn, End=True),
            },
        }
    )

    desc, _ = run(sm)
    run(sm)

    assert desc["status"] == "SUCCEEDED"
    assert sample_handlers.CALLS["echo"] == 4
    # One client for the four tasks (none at all when an earlier bridge in the process made it).
    assert moto_bridge._client_creations <= 1


# --------------------------------------------------------------------------------------------------
# 6. Idempotent RunInstances
# --------------------------------------------------------------------------------------------------


def test_run_instances_honours_client_token(hooks: BridgeHooks) -> None:
    launched: list[list[str]] = []
    hooks.on_instances_launched = launched.append
    subnet = make_subnet()

    first = run_instance(subnet, token="failover-1")
    again = run_instance(subnet, token="failover-1")
    other = run_instance(subnet, token="failover-2")

    first_id = first["Instances"][0]["InstanceId"]
    assert again["ReservationId"] == first["ReservationId"]
    assert again["Instances"][0]["InstanceId"] == first_id
    assert other["Instances"][0]["InstanceId"] != first_id
    assert len(launched) == 2  # the replay launched nothing
    all_ids = [i["InstanceId"] for r in client("ec2").describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(all_ids) == 2
    with pytest.raises(ClientError) as err:
        run_instance(subnet, token="failover-1", instance_type="c5.large")
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatch"


# --------------------------------------------------------------------------------------------------
# 7. EC2 lifecycle is not instant
# --------------------------------------------------------------------------------------------------


def _state_names(state: str) -> list[str]:
    filters = [{"Name": "instance-state-name", "Values": [state]}]
    reservations = client("ec2").describe_instances(Filters=filters)["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def test_new_instances_are_pending_until_the_simulation_runs_them(hooks: BridgeHooks) -> None:
    launched: list[list[str]] = []
    hooks.on_instances_launched = launched.append

    reservation = run_instance(make_subnet())
    instance_id = reservation["Instances"][0]["InstanceId"]

    assert reservation["Instances"][0]["State"] == {"Code": 0, "Name": "pending"}
    assert launched == [[instance_id]]
    assert describe_instance(instance_id)["State"] == {"Code": 0, "Name": "pending"}
    assert _state_names("pending") == [instance_id] and _state_names("running") == []

    moto_bridge.set_instance_state(instance_id, "running")

    assert describe_instance(instance_id)["State"] == {"Code": 16, "Name": "running"}
    assert _state_names("running") == [instance_id]
    assert moto_bridge.instance_state(instance_id) == "running"
    for state, code in (("stopping", 64), ("stopped", 80), ("pending", 0), ("running", 16)):
        moto_bridge.set_instance_state(instance_id, state)
        assert describe_instance(instance_id)["State"] == {"Code": code, "Name": state}


def test_terminate_leaves_instances_shutting_down_until_the_simulation_ends_them(hooks: BridgeHooks) -> None:
    terminating: list[list[str]] = []
    hooks.on_instances_terminating = terminating.append
    instance_id = run_instance(make_subnet())["Instances"][0]["InstanceId"]
    moto_bridge.set_instance_state(instance_id, "running")
    ec2 = client("ec2")

    resp = ec2.terminate_instances(InstanceIds=[instance_id])

    assert resp["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    assert describe_instance(instance_id)["State"] == {"Code": 32, "Name": "shutting-down"}
    assert _state_names("shutting-down") == [instance_id]
    assert terminating == [[instance_id]]

    ec2.terminate_instances(InstanceIds=[instance_id])  # repeated: no second hook call
    assert terminating == [[instance_id]]

    moto_bridge.set_instance_state(instance_id, "terminated")

    assert describe_instance(instance_id)["State"] == {"Code": 48, "Name": "terminated"}
    assert _state_names("terminated") == [instance_id] and _state_names("shutting-down") == []
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert moto_bridge.instance_state(instance_id) == "terminated"
    with pytest.raises(ValueError):
        moto_bridge.set_instance_state(instance_id, "running")


def test_simulation_can_kill_a_running_instance(hooks: BridgeHooks) -> None:
    instance_id = run_instance(make_subnet())["Instances"][0]["InstanceId"]
    moto_bridge.set_instance_state(instance_id, "running")

    moto_bridge.set_instance_state(instance_id, "terminated")

    assert describe_instance(instance_id)["State"] == {"Code": 48, "Name": "terminated"}
    with pytest.raises(KeyError):
        moto_bridge.instance_state("i-00000000000000000")


def test_instance_and_primary_eni_share_one_set_of_security_groups(hooks: BridgeHooks) -> None:
    ec2 = client("ec2")
    subnet = make_subnet()
    vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    app, fence = (
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"] for name in ("app", "fence")
    )
    instance = client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[app]
    )["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]

    def groups() -> tuple[list[str], list[str]]:
        found = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
        described = describe_instance(instance["InstanceId"])["SecurityGroups"]
        return [g["GroupId"] for g in found], [g["GroupId"] for g in described]

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[fence])
    assert groups() == ([fence], [fence])  # the launch group is gone: the fence holds

    ec2.modify_instance_attribute(InstanceId=instance["InstanceId"], Groups=[app])
    assert groups() == ([app], [app])


# --------------------------------------------------------------------------------------------------
# 8. Target health from the simulation
# --------------------------------------------------------------------------------------------------


def test_target_health_comes_from_the_simulation_for_registered_instances(hooks: BridgeHooks) -> None:
    subnet = make_subnet()
    vpc = client("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    a, b = (run_instance(subnet)["Instances"][0]["InstanceId"] for _ in range(2))
    for instance_id in (a, b):
        moto_bridge.set_instance_state(instance_id, "running")
    elb = client("elbv2")
    tg = elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": a}, {"Id": b}])
    elb.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": b}])

    def health(target_group_arn: str, instance_id: str) -> tuple[str, str | None, str | None]:
        assert target_group_arn == tg_arn
        return ("unhealthy", "Target.FailedHealthChecks", "Health checks failed")

    def describe(*ids: str) -> dict[str, dict[str, Any]]:
        targets = {"Targets": [{"Id": i} for i in ids]} if ids else {}
        found = elb.describe_target_health(TargetGroupArn=tg_arn, **targets)["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"] for d in found}

    assert describe()[a]["State"] == "healthy"  # hook unset: moto's answer

    hooks.target_health = health

    assert describe() == {
        a: {"State": "unhealthy", "Reason": "Target.FailedHealthChecks", "Description": "Health checks failed"}
    }
    assert describe(b)[b]["State"] == "draining"  # deregistered: draining for the delay (patch 28)
    assert describe("i-00000000000000000")["i-00000000000000000"]["Reason"] == "Target.NotRegistered"


# --------------------------------------------------------------------------------------------------
# 9. API fault injection
# --------------------------------------------------------------------------------------------------


def _fault_when(
    hooks: BridgeHooks, service: str, action: str, fault: ApiFault, times: int | None = None
) -> list[dict[str, Any]]:
    """Answer every call of ``action`` (or the first ``times``) with ``fault``."""
    seen: list[dict[str, Any]] = []

    def fault_for(s: str, a: str, params: dict[str, Any]) -> ApiFault | None:
        if (s, a) == (service, action) and (times is None or len(seen) < times):
            seen.append(params)
            return fault
        return None

    hooks.fault_for = fault_for
    return seen


def _raises(call: Any, code: str, status: int) -> ClientError:
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return err.value


def test_fault_ec2_query_protocol(hooks: BridgeHooks) -> None:
    subnet = make_subnet()
    seen = _fault_when(hooks, "ec2", "RunInstances", ApiFault("RequestLimitExceeded", "Request limit exceeded."))

    err = _raises(lambda: run_instance(subnet), "RequestLimitExceeded", 400)

    assert err.response["Error"]["Message"] == "Request limit exceeded."
    assert seen[0]["SubnetId"] == subnet and seen[0]["InstanceType"] == "m5.large"
    assert client("ec2").describe_instances()["Reservations"] == []  # nothing executed


def test_fault_dynamodb_json_protocol(hooks: BridgeHooks) -> None:
    ddb = client("dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    seen = _fault_when(hooks, "dynamodb", "GetItem", ApiFault("ThrottlingException", "Rate exceeded"))

    _raises(lambda: ddb.get_item(TableName="t", Key={"pk": {"S": "a"}}), "ThrottlingException", 400)

    assert seen[0]["TableName"] == "t" and seen[0]["Key"] == {"pk": {"S": "a"}}
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})  # other actions unaffected


def test_fault_elbv2_query_protocol_server_error(hooks: BridgeHooks) -> None:
    seen = _fault_when(hooks, "elbv2", "RegisterTargets", ApiFault("ServiceUnavailable", "try later", 503))
    tg = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/tg/0123456789abcdef"

    _raises(
        lambda: client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": "i-0"}]),
        "ServiceUnavailable",
        503,
    )
    assert seen[0]["TargetGroupArn"] == tg


@pytest.mark.parametrize(
    ("service", "action", "call"),
    [
        ("stepfunctions", "ListStateMachines", lambda: client("stepfunctions").list_state_machines()),
        ("events", "PutEvents", lambda: _put("swr.canary", {})),
        ("cloudwatch", "DescribeAlarms", lambda: client("cloudwatch").describe_alarms()),
        ("efs", "DescribeFileSystems", lambda: client("efs").describe_file_systems()),
        ("lambda", "ListFunctions", lambda: client("lambda").list_functions()),
    ],
)
def test_fault_other_protocols(hooks: BridgeHooks, service: str, action: str, call: Any) -> None:
    _fault_when(hooks, service, action, ApiFault("InternalError", "boom", 500))

    _raises(call, "InternalError", 500)


def test_fault_describe_execution(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    desc, _ = run(sm)
    seen = _fault_when(hooks, "stepfunctions", "DescribeExecution", ApiFault("ThrottlingException", "slow down"))

    _raises(
        lambda: client("stepfunctions").describe_execution(executionArn=desc["executionArn"]),
        "ThrottlingException",
        400,
    )
    assert seen == [{"executionArn": desc["executionArn"]}]


def test_fault_reaches_the_interpreters_own_lambda_calls(hooks: BridgeHooks) -> None:
    arn = make_function("echo", "echo")
    sm = make_state_machine(
        {
            "StartAt": "Opt",
            "States": {
                "Opt": task(
                    "arn:aws:states:::lambda:invoke",
                    Parameters={"FunctionName": "echo"},
                    Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.opt", "Next": "Bare"}],
                    End=True,
                ),
                "Bare": task(
                    arn,
                    Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.bare", "Next": "Done"}],
                    End=True,
                ),
                "Done": {"Type": "Pass", "End": True},
            },
        }
    )
    _fault_when(hooks, "lambda", "Invoke", ApiFault("TooManyRequestsException", "Rate exceeded", 429))

    desc, _ = run(sm)

    output = json.loads(desc["output"])
    # Both resource forms name it as AWS does (patch 32: moto said "Exception" for the bare ARN).
    assert output["opt"]["Error"] == "Lambda.TooManyRequestsException"
    assert output["bare"]["Error"] == "Lambda.TooManyRequestsException"
    assert "echo" not in sample_handlers.CALLS


def test_a_bare_arn_lambda_task_retries_a_lambda_service_exception_as_on_aws(hooks: BridgeHooks) -> None:
    # Step Functions Developer Guide, "Handle Lambda service exceptions": Lambda errors are
    # reported as Lambda.<exception>, and a Retry on Lambda.ServiceException matches them.
    arn = make_function("echo", "echo")
    retry = {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 2}
    sm = make_state_machine({"StartAt": "Bare", "States": {"Bare": task(arn, Retry=[retry], End=True)}})
    _fault_when(hooks, "lambda", "Invoke", ApiFault("ServiceException", "internal error", 500), times=1)

    desc, _ = run(sm, {"hello": 1})

    assert desc["status"] == "SUCCEEDED"
    failed = [e for e in history(desc["executionArn"]) if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == ["Lambda.ServiceException"]


def test_fault_hook_returning_none_changes_nothing(hooks: BridgeHooks) -> None:
    calls: list[tuple[str, str]] = []

    def fault_for(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
        calls.append((service, action))
        return None

    hooks.fault_for = fault_for
    subnet = make_subnet()
    instance_id = run_instance(subnet)["Instances"][0]["InstanceId"]
    make_function("echo", "echo")
    sm = make_state_machine(
        {
            "StartAt": "T",
            "States": {"T": task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "echo"}, End=True)},
        }
    )
    desc, _ = run(sm)

    assert describe_instance(instance_id)["InstanceId"] == instance_id
    assert desc["status"] == "SUCCEEDED"
    assert ("ec2", "RunInstances") in calls and ("lambda", "Invoke") in calls
    assert ("stepfunctions", "StartExecution") in calls


# --------------------------------------------------------------------------------------------------
# 10. Named executions by default
# --------------------------------------------------------------------------------------------------


def test_unnamed_executions_get_uuid_names(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sfn = client("stepfunctions")

    first = sfn.start_execution(stateMachineArn=sm)["executionArn"]
    second = sfn.start_execution(stateMachineArn=sm)["executionArn"]

    assert first != second
    for arn in (first, second):
        uuid.UUID(arn.rsplit(":", 1)[1])
        assert wait_done(arn)["status"] == "SUCCEEDED"


# --------------------------------------------------------------------------------------------------
# Lifecycle and server mode
# --------------------------------------------------------------------------------------------------


def test_server_shares_backends_and_patches_with_the_in_process_mock(hooks: BridgeHooks) -> None:
    in_process_fn = make_function("echo", "echo")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):  # fails fast instead of hanging in ThreadedMotoServer
            moto_bridge.start_server(busy.getsockname()[1])
    url = moto_bridge.start_server()
    assert url.startswith("http://127.0.0.1:")
    remote = {s: client(s, endpoint_url=url) for s in ("lambda", "stepfunctions", "ec2")}

    assert remote["lambda"].get_function(FunctionName="echo")["Configuration"]["FunctionArn"] == in_process_fn
    sm = remote["stepfunctions"].create_state_machine(
        name="remote",
        definition=json.dumps(
            {
                "StartAt": "T",
                "States": {"T": task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "echo"}, End=True)},
            }
        ),
        roleArn=role_arn(),
    )["stateMachineArn"]
    assert client("stepfunctions").describe_state_machine(stateMachineArn=sm)["name"] == "remote"
    arn = remote["stepfunctions"].start_execution(stateMachineArn=sm)["executionArn"]
    assert wait_done(arn)["status"] == "SUCCEEDED"  # interpreter + in-process handler via the server

    _fault_when(hooks, "ec2", "DescribeInstances", ApiFault("RequestLimitExceeded", "slow down"))
    _raises(lambda: remote["ec2"].describe_instances(), "RequestLimitExceeded", 400)

    moto_bridge.stop_server()
    with pytest.raises(Exception):  # noqa: B017 - connection refused, whatever botocore calls it
        client("ec2", endpoint_url=url).describe_regions()


def test_stop_ends_running_executions(hooks: BridgeHooks) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    make_function("record", "record")
    waiting = make_state_machine({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10**7, "End": True}}})
    holding = make_state_machine(
        {
            "StartAt": "H",
            "States": {
                "H": task(
                    "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    Parameters={"FunctionName": "record", "Payload": {"token.$": "$$.Task.Token"}},
                    TimeoutSeconds=10**7,
                    End=True,
                )
            },
        }
    )
    for sm in (waiting, holding):
        client("stepfunctions").start_execution(stateMachineArn=sm)
    assert sample_handlers.RECEIVED_EVENT.wait(5)
    backend: Any = stepfunctions_parser_backends["123456789012"][REGION]
    running = [e for m in backend.state_machines for e in m.executions]
    assert len(running) == 2

    moto_bridge.stop()
    try:
        # Their threads end (the held task ends FAILED: moto lets the interrupted task's error win).
        eventually(lambda: all(e.exec_status != ExecutionStatus.RUNNING for e in running), timeout=3)
    finally:
        moto_bridge.start(hooks, region=REGION)


def test_stop_then_start_gives_a_fresh_world_and_removes_patches(hooks: BridgeHooks) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.responses import BaseResponse

    assert LambdaSimpleBackend.invoke.__module__ == lambda_runtime.__name__
    make_function("echo", "echo")

    moto_bridge.stop()
    assert LambdaSimpleBackend.invoke.__module__ == "moto.awslambda_simple.models"
    assert BaseResponse.call_action.__module__ == "moto.core.responses"
    moto_bridge.start(hooks, region=REGION)

    assert LambdaSimpleBackend.invoke.__module__ == lambda_runtime.__name__
    assert client("lambda").list_functions()["Functions"] == []
    make_function("echo", "echo")
    assert json.loads(client("lambda").invoke(FunctionName="echo", Payload=b"{}")["Payload"].read())["event"] == {}


# --- 13. atomic conditional writes -----------------------------------------------------------
def test_only_one_of_many_concurrent_conditional_writes_wins(hooks: BridgeHooks) -> None:
    import concurrent.futures

    from botocore.exceptions import ClientError

    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName="leases",
        AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="leases", Item={"app": {"S": "demo"}, "version": {"N": "1"}})

    def take(holder: int) -> bool:
        try:
            dynamodb.put_item(
                TableName="leases",
                Item={"app": {"S": "demo"}, "version": {"N": "2"}, "holder": {"N": str(holder)}},
                ConditionExpression="version = :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            return True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    for _ in range(5):
        dynamodb.put_item(TableName="leases", Item={"app": {"S": "demo"}, "version": {"N": "1"}})
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            winners = sum(pool.map(take, range(16)))
        assert winners == 1


# --- 4b / 14. waits follow a simulated clock; Lambda tasks run inside hooks.invoking() ------------
def test_waits_follow_the_simulated_clock_and_lambda_tasks_are_bracketed(hooks: BridgeHooks) -> None:
    from contextlib import contextmanager

    from swr.emulator.clock import WarpClock

    clock = WarpClock(100.0)
    brackets: list[float] = []  # simulated seconds each task took

    @contextmanager
    def invoking() -> Iterator[None]:
        entered = clock.now()
        with clock.paused(charge=5.0):
            time.sleep(0.2)  # 20 simulated seconds of CPU if the clock ran: it must not
            yield
        brackets.append(clock.now() - entered)

    hooks.warp, hooks.sim_now, hooks.invoking = clock.effective_warp, clock.now, invoking
    arn = make_function("echo", "echo")
    sm = make_state_machine(
        {
            "StartAt": "Step",
            "States": {
                "Step": task(arn, Next="W"),
                "W": {"Type": "Wait", "Seconds": 30, "Next": "Again"},
                "Again": task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "echo"}, End=True),
            },
        }
    )
    desc, _ = run(sm)

    assert desc["status"] == "SUCCEEDED"
    assert len(brackets) == 2  # both task forms
    # Each task costs its charge, not the real CPU inside it (which would be 20 s more, x100).
    assert all(5.0 <= b < 7.0 for b in brackets), brackets
    exited_wait = next(e for e in history(desc["executionArn"]) if e["type"] == "WaitStateExited")
    entered_wait = next(e for e in history(desc["executionArn"]) if e["type"] == "WaitStateEntered")
    waited = clock.to_simulated(exited_wait["timestamp"]) - clock.to_simulated(entered_wait["timestamp"])
    # The declared 30 s, not skipped and not run in real time (3000 simulated s); the slack is
    # interpreter overhead, multiplied by the warp on a loaded machine.
    assert 29.0 <= waited < 300.0, waited


# --------------------------------------------------------------------------------------------------
# 15. CloudFormation creates through the API what moto's CloudFormation skips or mishandles
# --------------------------------------------------------------------------------------------------

OPEN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]}


def deploy(resources: dict[str, Any], stack: str = "canary") -> dict[str, str]:
    """Create a plain CloudFormation stack (JSON, no SAM); returns logical id -> physical id."""
    cfn = client("cloudformation")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": resources}))
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    listed = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}


def created_through_api() -> dict[str, str]:
    """logical id -> resource type of what the bridge created through the API."""
    return {r.logical_id: r.resource_type for r in moto_bridge.resources_created_through_api()}


def make_bucket(name: str) -> str:
    client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def make_group(name: str = "web") -> str:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return str(ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"])


def test_stack_alarm_exists_and_is_listed_as_created_through_the_api(hooks: BridgeHooks) -> None:
    physical = deploy(
        {
            "ErrorsAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "canary-errors",
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "FunctionName", "Value": "admit"}],
                    "Statistic": "Sum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "TreatMissingData": "notBreaching",
                },
            }
        }
    )

    alarms = client("cloudwatch").describe_alarms(AlarmNames=["canary-errors"])["MetricAlarms"]
    assert [(a["MetricName"], a["Period"], a["Threshold"], a["TreatMissingData"]) for a in alarms] == [
        ("Errors", 60, 1.0, "notBreaching")
    ]
    assert physical["ErrorsAlarm"] == "canary-errors"
    assert moto_bridge.resources_created_through_api() == [
        moto_bridge.ApiCreatedResource("ErrorsAlarm", "AWS::CloudWatch::Alarm", "canary-errors")
    ]


GREETING_MACHINE = {
    "StartAt": "Greet",
    "States": {"Greet": {"Type": "Pass", "Result": {"greeting": "${Greeting}"}, "End": True}},
}


@pytest.mark.parametrize("source", ["DefinitionString", "Definition", "DefinitionS3Location"])
def test_stack_state_machine_gets_its_substituted_definition_and_runs(hooks: BridgeHooks, source: str) -> None:
    definition: dict[str, Any] = {
        "DefinitionString": {"DefinitionString": json.dumps(GREETING_MACHINE)},
        "Definition": {"Definition": GREETING_MACHINE},
        "DefinitionS3Location": {"DefinitionS3Location": {"Bucket": "artifacts", "Key": "workflow.asl.json"}},
    }[source]
    if source == "DefinitionS3Location":
        make_bucket("artifacts")
        client("s3").put_object(Bucket="artifacts", Key="workflow.asl.json", Body=json.dumps(GREETING_MACHINE))

    physical = deploy(
        {
            "Workflow": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "greeter",
                    "RoleArn": role_arn(),
                    **definition,
                    "DefinitionSubstitutions": {"Greeting": "hello"},
                },
            }
        }
    )

    arn = physical["Workflow"]
    assert arn.endswith(":stateMachine:greeter")
    described = json.loads(client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])
    assert described["States"]["Greet"]["Result"] == {"greeting": "hello"}
    desc, _ = run(arn)  # in the executing backend, not moto's plain one
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"greeting": "hello"}
    assert created_through_api() == {"Workflow": "AWS::StepFunctions::StateMachine"}


def test_stack_kms_key_with_a_policy_object_can_be_described(hooks: BridgeHooks) -> None:
    physical = deploy(
        {
            "RecordKey": {
                "Type": "AWS::KMS::Key",
                "Properties": {"Description": "records", "KeyPolicy": OPEN_POLICY, "EnableKeyRotation": True},
            }
        }
    )

    kms = client("kms")
    key = kms.describe_key(KeyId=physical["RecordKey"])["KeyMetadata"]
    assert (key["Description"], key["KeyState"]) == ("records", "Enabled")
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]) == OPEN_POLICY
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert created_through_api() == {"RecordKey": "AWS::KMS::Key"}


def test_stack_trail_is_created_and_logging(hooks: BridgeHooks) -> None:
    make_bucket("trail-logs")
    physical = deploy(
        {
            "Trail": {
                "Type": "AWS::CloudTrail::Trail",
                "Properties": {"TrailName": "swr-trail", "S3BucketName": "trail-logs", "IsLogging": True},
            }
        }
    )

    assert physical["Trail"] == "swr-trail"
    cloudtrail = client("cloudtrail")
    assert [t["S3BucketName"] for t in cloudtrail.describe_trails(trailNameList=["swr-trail"])["trailList"]] == [
        "trail-logs"
    ]
    assert cloudtrail.get_trail_status(Name="swr-trail")["IsLogging"] is True
    assert created_through_api() == {"Trail": "AWS::CloudTrail::Trail"}


def test_stack_bucket_and_queue_policies_are_applied(hooks: BridgeHooks) -> None:
    physical = deploy(
        {
            "Logs": {"Type": "AWS::S3::Bucket"},
            "LogsPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": "Logs"}, "PolicyDocument": OPEN_POLICY},
            },
            "DeadLetters": {"Type": "AWS::SQS::Queue"},
            "DeadLettersPolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"Queues": [{"Ref": "DeadLetters"}], "PolicyDocument": OPEN_POLICY},
            },
        }
    )

    assert json.loads(client("s3").get_bucket_policy(Bucket=physical["Logs"])["Policy"]) == OPEN_POLICY
    queue = client("sqs").get_queue_attributes(QueueUrl=physical["DeadLetters"], AttributeNames=["Policy"])
    assert json.loads(queue["Attributes"]["Policy"]) == OPEN_POLICY
    assert created_through_api() == {
        "LogsPolicy": "AWS::S3::BucketPolicy",
        "DeadLettersPolicy": "AWS::SQS::QueuePolicy",
    }


def test_stack_ingress_rule_has_a_physical_id_naming_the_rule(hooks: BridgeHooks) -> None:
    group = make_group()
    physical = deploy(
        {
            "SshFromVpc": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": group,
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "CidrIp": "10.0.0.0/8",
                },
            }
        }
    )

    rule_id = physical["SshFromVpc"]
    assert rule_id.startswith("sgr-")
    rules = client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert [(r["GroupId"], r["IsEgress"], r["IpProtocol"], r["FromPort"], r["CidrIpv4"]) for r in rules] == [
        (group, False, "tcp", 22, "10.0.0.0/8")
    ]
    assert created_through_api() == {"SshFromVpc": "AWS::EC2::SecurityGroupIngress"}


def test_deleting_the_stack_removes_what_was_created_through_the_api(hooks: BridgeHooks) -> None:
    # The buckets, queue and group live outside the stack, so that they remain to show the policies
    # and the rule removed.
    make_bucket("artifacts")
    make_bucket("trail-logs")
    queue = client("sqs").create_queue(QueueName="dead-letters")["QueueUrl"]
    group = make_group()
    physical = deploy(
        {
            "Workflow": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": role_arn(), "DefinitionString": json.dumps(GREETING_MACHINE)},
            },
            "ErrorsAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "canary-errors",
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Errors",
                    "Statistic": "Sum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                },
            },
            "Trail": {
                "Type": "AWS::CloudTrail::Trail",
                "Properties": {"TrailName": "swr-trail", "S3BucketName": "trail-logs", "IsLogging": True},
            },
            "ArtifactsPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": "artifacts", "PolicyDocument": OPEN_POLICY},
            },
            "DeadLettersPolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"Queues": [queue], "PolicyDocument": OPEN_POLICY},
            },
            "RecordKey": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": OPEN_POLICY}},
            "SshFromVpc": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": group,
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "CidrIp": "10.0.0.0/8",
                },
            },
        }
    )
    assert len(moto_bridge.resources_created_through_api()) == 7

    client("cloudformation").delete_stack(StackName="canary")

    assert client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert client("cloudtrail").describe_trails()["trailList"] == []
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        client("s3").get_bucket_policy(Bucket="artifacts")
    assert "Policy" not in client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"]).get(
        "Attributes", {}
    )
    assert client("kms").describe_key(KeyId=physical["RecordKey"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert client("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"] == []


def stack_status(stack_id: str) -> str:
    return str(client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"])


def test_stacks_holding_policies_and_rules_beside_their_targets_always_delete(hooks: BridgeHooks) -> None:
    # moto deletes a stack's resources in no fixed order (it follows the hashes of the logical ids),
    # so the bucket, queue or group often goes before the policy or rule on it; on AWS the
    # dependency decides. With eight stacks of different ids, each pair all but surely (255 in 256)
    # meets the order that used to fail.
    vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    cfn = client("cloudformation")
    for i in range(8):
        resources = {
            f"Logs{i}": {"Type": "AWS::S3::Bucket"},
            f"LogsPolicy{i}": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": f"Logs{i}"}, "PolicyDocument": OPEN_POLICY},
            },
            f"DeadLetters{i}": {"Type": "AWS::SQS::Queue"},
            f"DeadLettersPolicy{i}": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"Queues": [{"Ref": f"DeadLetters{i}"}], "PolicyDocument": OPEN_POLICY},
            },
            f"Web{i}": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "web", "VpcId": vpc}},
            f"SshFromVpc{i}": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": {"Ref": f"Web{i}"},
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "CidrIp": "10.0.0.0/8",
                },
            },
        }
        stack_id = cfn.create_stack(StackName=f"canary-{i}", TemplateBody=json.dumps({"Resources": resources}))[
            "StackId"
        ]
        assert stack_status(stack_id) == "CREATE_COMPLETE"

        cfn.delete_stack(StackName=f"canary-{i}")

        assert stack_status(stack_id) == "DELETE_COMPLETE", f"stack {i}"
    assert client("s3").list_buckets()["Buckets"] == []
    assert client("sqs").list_queues().get("QueueUrls", []) == []
    groups = client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]


def test_a_delete_that_fails_for_another_reason_still_fails_the_stack_deletion(hooks: BridgeHooks) -> None:
    group = make_group()
    rule_id = deploy(
        {
            "SshFromVpc": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": group,
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "CidrIp": "10.0.0.0/8",
                },
            }
        }
    )["SshFromVpc"]
    denied = ApiFault("UnauthorizedOperation", "not yours")
    hooks.fault_for = lambda service, action, params: denied if action == "RevokeSecurityGroupIngress" else None

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        client("cloudformation").delete_stack(StackName="canary")

    assert client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]


EVERY_API_TYPE: dict[str, Any] = {
    "Workflow": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/canary", "Definition": GREETING_MACHINE},
    },
    "ErrorsAlarm": {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    },
    "Trail": {"Type": "AWS::CloudTrail::Trail", "Properties": {"S3BucketName": "trail-logs", "IsLogging": True}},
    "Logs": {"Type": "AWS::S3::Bucket"},
    "LogsPolicy": {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {"Bucket": {"Ref": "Logs"}, "PolicyDocument": OPEN_POLICY},
    },
    "DeadLetters": {"Type": "AWS::SQS::Queue"},
    "DeadLettersPolicy": {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {"Queues": [{"Ref": "DeadLetters"}], "PolicyDocument": OPEN_POLICY},
    },
    "RecordKey": {"Type": "AWS::KMS::Key", "Properties": {"Description": "records", "KeyPolicy": OPEN_POLICY}},
    "Web": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "web"}},
    "SshFromVpc": {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": ["Web", "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "CidrIp": "10.0.0.0/8",
        },
    },
}


def test_each_resource_created_through_the_api_records_the_physical_id_the_stack_reports(
    hooks: BridgeHooks,
) -> None:
    make_bucket("trail-logs")
    physical = deploy(EVERY_API_TYPE)

    recorded = {r.logical_id: r.physical_id for r in moto_bridge.resources_created_through_api()}
    assert recorded == {logical_id: physical[logical_id] for logical_id in recorded}
    assert set(recorded) == {
        *("Workflow", "ErrorsAlarm", "Trail", "LogsPolicy", "DeadLettersPolicy", "RecordKey", "SshFromVpc")
    }
    # The physical ids are what CloudFormation gives on AWS (each type's primary identifier), but for
    # the queue policy: stack_check probes its queues by it.
    machines = client("stepfunctions").list_state_machines()["stateMachines"]
    assert [m["stateMachineArn"] for m in machines] == [recorded["Workflow"]]
    assert recorded["ErrorsAlarm"].startswith("canary-ErrorsAlarm-")
    assert recorded["Trail"].startswith("canary-Trail-")
    assert recorded["LogsPolicy"] == physical["Logs"]  # the bucket's name
    assert recorded["DeadLettersPolicy"] == physical["DeadLetters"]  # its queues' URLs (AWS: an id of its own)
    assert client("kms").describe_key(KeyId=recorded["RecordKey"])["KeyMetadata"]["KeyId"] == recorded["RecordKey"]
    assert recorded["SshFromVpc"].startswith("sgr-")


def test_updating_a_stack_keeps_logical_ids_names_and_what_aws_updates_in_place(hooks: BridgeHooks) -> None:
    make_bucket("trail-logs")
    resources = copy.deepcopy(EVERY_API_TYPE)
    resources["NamedAlarm"] = copy.deepcopy(resources["ErrorsAlarm"])
    resources["NamedAlarm"]["Properties"]["AlarmName"] = "canary-named"
    before = deploy(resources)
    workflow_runs, _ = run(before["Workflow"])
    assert workflow_runs["status"] == "SUCCEEDED"

    changed = copy.deepcopy(resources)
    changed["Workflow"]["Properties"]["DefinitionSubstitutions"] = {"Greeting": "hello again"}
    changed["ErrorsAlarm"]["Properties"]["Threshold"] = 5
    changed["NamedAlarm"]["Properties"]["Threshold"] = 7
    changed["Trail"]["Properties"]["IsLogging"] = False
    changed["LogsPolicy"]["Properties"]["PolicyDocument"] = {**OPEN_POLICY, "Id": "v2"}
    changed["DeadLettersPolicy"]["Properties"]["PolicyDocument"] = {**OPEN_POLICY, "Id": "v2"}
    changed["RecordKey"]["Properties"]["Description"] = "records, v2"
    changed["SshFromVpc"]["Properties"]["CidrIp"] = "10.1.0.0/16"
    cfn = client("cloudformation")
    cfn.update_stack(StackName="canary", TemplateBody=json.dumps({"Resources": changed}))
    assert cfn.describe_stacks(StackName="canary")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    after = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName="canary")["StackResources"]
    }

    # One record per resource, under its logical id, with the physical id the stack reports.
    recorded = [(r.logical_id, r.physical_id) for r in moto_bridge.resources_created_through_api()]
    assert sorted(recorded) == sorted(
        (logical_id, after[logical_id]) for logical_id in changed if logical_id not in ("Logs", "DeadLetters", "Web")
    )
    # Updated in place, as on AWS: same names, same ids, new settings.
    kept = ("Workflow", "ErrorsAlarm", "NamedAlarm", "Trail", "LogsPolicy", "DeadLettersPolicy", "RecordKey")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    sfn = client("stepfunctions")
    described = json.loads(sfn.describe_state_machine(stateMachineArn=after["Workflow"])["definition"])
    assert described["States"]["Greet"]["Result"] == {"greeting": "hello again"}
    assert [e["executionArn"] for e in executions(after["Workflow"])] == [workflow_runs["executionArn"]]
    alarms = client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted((a["AlarmName"], a["Threshold"]) for a in alarms) == sorted(
        [(after["ErrorsAlarm"], 5.0), ("canary-named", 7.0)]
    )
    assert client("cloudtrail").get_trail_status(Name=after["Trail"])["IsLogging"] is False
    assert json.loads(client("s3").get_bucket_policy(Bucket=after["Logs"])["Policy"])["Id"] == "v2"
    queue = client("sqs").get_queue_attributes(QueueUrl=after["DeadLetters"], AttributeNames=["Policy"])
    assert json.loads(queue["Attributes"]["Policy"])["Id"] == "v2"
    assert client("kms").describe_key(KeyId=after["RecordKey"])["KeyMetadata"]["Description"] == "records, v2"
    # A rule with a new address range is a new rule (replacement, as on AWS); the old one is gone.
    assert after["SshFromVpc"] != before["SshFromVpc"]
    group = client("ec2").describe_security_groups(GroupIds=[after["Web"]])["SecurityGroups"][0]
    assert [[r["CidrIp"] for r in p["IpRanges"]] for p in group["IpPermissions"]] == [["10.1.0.0/16"]]


# --------------------------------------------------------------------------------------------------
# 16. CloudFormation security groups honour SecurityGroupEgress
# --------------------------------------------------------------------------------------------------


def test_stack_security_group_egress_replaces_the_default_allow_all(hooks: BridgeHooks) -> None:
    vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    physical = deploy(
        {
            "Open": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "open", "VpcId": vpc}},
            "HttpsOnly": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": "https only",
                    "VpcId": vpc,
                    "SecurityGroupEgress": [
                        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
                    ],
                },
            },
            # The fence's blackhole (infra/template.yaml): a loopback rule, so nothing leaves.
            "Blackhole": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": "no egress",
                    "VpcId": vpc,
                    "SecurityGroupEgress": [
                        {"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "127.0.0.1/32"}
                    ],
                },
            },
        }
    )

    def egress(logical_id: str) -> list[tuple[Any, ...]]:
        group = client("ec2").describe_security_groups(GroupIds=[physical[logical_id]])["SecurityGroups"][0]
        return [
            (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), [r["CidrIp"] for r in p["IpRanges"]])
            for p in group["IpPermissionsEgress"]
        ]

    assert egress("Open") == [("-1", None, None, ["0.0.0.0/0"])]
    assert egress("HttpsOnly") == [("tcp", 443, 443, ["0.0.0.0/0"])]
    assert egress("Blackhole") == [("icmp", 252, 86, ["127.0.0.1/32"])]


def test_stack_security_group_with_an_empty_egress_list_keeps_the_default_allow_all(hooks: BridgeHooks) -> None:
    # On AWS only a rule given replaces allow-all; an empty list (e.g. from a condition) is none.
    vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    physical = deploy(
        {
            "Open": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "open", "VpcId": vpc, "SecurityGroupEgress": []},
            }
        }
    )

    group = client("ec2").describe_security_groups(GroupIds=[physical["Open"]])["SecurityGroups"][0]
    assert [(p["IpProtocol"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissionsEgress"]] == [
        ("-1", ["0.0.0.0/0"])
    ]


def test_stack_security_group_egress_rules_keep_descriptions_and_take_every_destination(hooks: BridgeHooks) -> None:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    s3_prefix_list = next(
        p["PrefixListId"]
        for p in ec2.describe_managed_prefix_lists()["PrefixLists"]
        if p["PrefixListName"] == f"com.amazonaws.{REGION}.s3"
    )
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}
    physical = deploy(
        {
            "Endpoints": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "ep", "VpcId": vpc}},
            "Worker": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": "worker",
                    "VpcId": vpc,
                    "SecurityGroupEgress": [
                        {**https, "CidrIp": "10.0.0.0/16", "Description": "vpc"},
                        {**https, "CidrIpv6": "2001:db8::/32", "Description": "vpc v6"},
                        {**https, "DestinationPrefixListId": s3_prefix_list, "Description": "s3 gateway"},
                        {**https, "DestinationSecurityGroupId": {"Ref": "Endpoints"}, "Description": "endpoints"},
                    ],
                },
            },
        }
    )

    group = ec2.describe_security_groups(GroupIds=[physical["Worker"]])["SecurityGroups"][0]
    destinations = {"IpRanges": "CidrIp", "Ipv6Ranges": "CidrIpv6", "PrefixListIds": "PrefixListId"}
    egress = {
        (
            p["IpProtocol"],
            p["FromPort"],
            p["ToPort"],
            entry[destinations.get(kind, "GroupId")],
            entry.get("Description"),
        )
        for p in group["IpPermissionsEgress"]
        for kind in (*destinations, "UserIdGroupPairs")
        for entry in p[kind]
    }
    assert egress == {
        ("tcp", 443, 443, "10.0.0.0/16", "vpc"),
        ("tcp", 443, 443, "2001:db8::/32", "vpc v6"),
        ("tcp", 443, 443, s3_prefix_list, None),  # moto drops a prefix list entry's description
        ("tcp", 443, 443, physical["Endpoints"], "endpoints"),
    }


# --------------------------------------------------------------------------------------------------
# 17. A stack created through a change set has its template
# --------------------------------------------------------------------------------------------------


def test_stack_created_through_a_change_set_has_its_outputs_and_description(hooks: BridgeHooks) -> None:
    template = {
        "Description": "canary stack",
        "Resources": {"DeadLetters": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "DeadLetters"}},
            "QueueArn": {"Value": {"Fn::GetAtt": ["DeadLetters", "Arn"]}, "Description": "the dead letters"},
        },
    }
    cfn = client("cloudformation")
    cfn.create_change_set(
        StackName="canary", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=json.dumps(template)
    )

    cfn.execute_change_set(ChangeSetName="first", StackName="canary")

    stack = cfn.describe_stacks(StackName="canary")["Stacks"][0]
    queue = cfn.describe_stack_resources(StackName="canary")["StackResources"][0]["PhysicalResourceId"]
    arn = client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert stack["Description"] == "canary stack"
    assert sorted((o["OutputKey"], o["OutputValue"], o.get("Description")) for o in stack["Outputs"]) == [
        ("QueueArn", arn, "the dead letters"),
        ("QueueUrl", queue, None),
    ]


def test_stack_state_machine_keeps_its_logging_and_tracing_configuration(hooks: BridgeHooks) -> None:
    group = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/vendedlogs/states/greeter:*"
    physical = deploy(
        {
            "Workflow": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "greeter",
                    "RoleArn": role_arn(),
                    "DefinitionString": json.dumps(GREETING_MACHINE),
                    "DefinitionSubstitutions": {"Greeting": "hello"},
                    "LoggingConfiguration": {
                        "Level": "ALL",
                        "IncludeExecutionData": True,
                        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": group}}],
                    },
                    "TracingConfiguration": {"Enabled": True},
                },
            }
        }
    )

    described = client("stepfunctions").describe_state_machine(stateMachineArn=physical["Workflow"])
    assert described["loggingConfiguration"] == {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group}}],
    }
    assert described["tracingConfiguration"] == {"enabled": True}


# --------------------------------------------------------------------------------------------------
# 18. An update that changes nothing is "no changes"
# --------------------------------------------------------------------------------------------------

PARAMETER_TEMPLATE = {
    "Parameters": {
        "Prefix": {"Type": "String", "Default": "swr"},
        "Retention": {"Type": "Number", "Default": 90},
        "Subnets": {"Type": "CommaDelimitedList", "Default": ""},
    },
    "Resources": {"DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Prefix"}}}},
}


def _change_set(kind: str, name: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    # Through S3, as `swr deploy` sends a template above CloudFormation's inline limit: moto checks
    # an inline body against the stack's itself, and the effective parameters with it.
    s3, cfn = client("s3"), client("cloudformation")
    if "templates" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        make_bucket("templates")
    s3.put_object(Bucket="templates", Key="canary.json", Body=json.dumps(PARAMETER_TEMPLATE))
    cfn.create_change_set(
        StackName="canary",
        ChangeSetName=name,
        ChangeSetType=kind,
        TemplateURL=f"https://templates.s3.{REGION}.amazonaws.com/canary.json",
        Parameters=parameters,
    )
    return dict(cfn.describe_change_set(ChangeSetName=name, StackName="canary"))


def test_an_update_with_previous_values_and_explicit_defaults_is_no_change(hooks: BridgeHooks) -> None:
    _change_set("CREATE", "create", [{"ParameterKey": "Subnets", "ParameterValue": "subnet-a,subnet-b"}])
    client("cloudformation").execute_change_set(ChangeSetName="create", StackName="canary")

    same = _change_set(
        "UPDATE",
        "same",
        [
            {"ParameterKey": "Prefix", "ParameterValue": "swr"},  # the default, now given
            {"ParameterKey": "Retention", "UsePreviousValue": True},
            {"ParameterKey": "Subnets", "UsePreviousValue": True},
        ],
    )
    assert same["Status"] == "FAILED"
    assert "didn't contain changes" in same["StatusReason"]

    changed = _change_set(
        "UPDATE",
        "changed",
        [
            {"ParameterKey": "Retention", "ParameterValue": "30"},
            {"ParameterKey": "Subnets", "UsePreviousValue": True},
        ],
    )
    assert changed["Status"] == "CREATE_COMPLETE"


# --------------------------------------------------------------------------------------------------
# 19. Public Lambda layers exist
# --------------------------------------------------------------------------------------------------

POWERTOOLS = "arn:aws:lambda:ap-northeast-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:27"


def test_a_function_keeps_another_accounts_layer_through_a_configuration_update(hooks: BridgeHooks) -> None:
    lam = client("lambda")
    make_function("with-layer", "echo")

    updated = lam.update_function_configuration(FunctionName="with-layer", Layers=[POWERTOOLS], Timeout=30)

    assert [layer["Arn"] for layer in updated["Layers"]] == [POWERTOOLS]
    own = f"arn:aws:lambda:{REGION}:123456789012:layer:missing:1"
    with pytest.raises(ClientError, match="LayerVersion does not exist"):
        lam.update_function_configuration(FunctionName="with-layer", Layers=[own])


# --------------------------------------------------------------------------------------------------
# 20. RunInstances tags the network interfaces it creates
# --------------------------------------------------------------------------------------------------


def test_run_instances_tags_instance_volume_and_network_interface(hooks: BridgeHooks) -> None:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    image = ec2.register_image(
        Name="tagged",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    tags = [{"Key": "swr:app", "Value": "demo"}]

    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet["SubnetId"],
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        TagSpecifications=[
            {"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume", "network-interface")
        ],
    )["Instances"][0]

    resources = [instance["InstanceId"], *(n["NetworkInterfaceId"] for n in instance["NetworkInterfaces"])]
    resources += [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    assert len(resources) == 3
    for resource in resources:
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
        assert [(t["Key"], t["Value"]) for t in found] == [("swr:app", "demo")], resource


def test_stack_topic_policy_is_applied_and_its_delete_gives_back_the_default(hooks: BridgeHooks) -> None:
    policy = _events_may_publish(f"arn:aws:events:{REGION}:123456789012:rule/notify")
    physical = deploy(
        {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "notices"}},
            "TopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": policy},
            },
        }
    )
    sns = client("sns")
    topic = physical["Topic"]
    assert physical["TopicPolicy"] == topic  # its topics, as stack_check probes them
    assert created_through_api()["TopicPolicy"] == "AWS::SNS::TopicPolicy"
    applied = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert applied["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}

    moto_bridge._TopicPolicyResource(topic, REGION, {}).delete("123456789012", REGION)
    restored = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert restored["Statement"][0]["Principal"] == {"AWS": "*"}


# --------------------------------------------------------------------------------------------------
# 24. Embedded metric format becomes metrics
# --------------------------------------------------------------------------------------------------


def _canary_metrics(service: str = "swr-canary") -> list[dict[str, Any]]:
    return list(
        client("cloudwatch").list_metrics(
            Namespace="SwrCanary",
            MetricName="CanaryInvocations",
            Dimensions=[{"Name": "service", "Value": service}],
        )["Metrics"]
    )


@pytest.mark.parametrize("disabled_in_the_process", [False, True])
def test_a_handlers_powertools_metrics_reach_cloudwatch_as_emf_would(
    hooks: BridgeHooks, monkeypatch: pytest.MonkeyPatch, disabled_in_the_process: bool
) -> None:
    # The emulator keeps EMF off its own stdout; the function's environment is what counts.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true" if disabled_in_the_process else "false")
    make_function("pt", "powertools")

    for _ in range(2):
        assert "FunctionError" not in client("lambda").invoke(FunctionName="pt", Payload=b"{}")

    assert len(_canary_metrics()) == 1
    now = dt.datetime.now(tz=dt.UTC)
    stats = client("cloudwatch").get_metric_statistics(
        Namespace="SwrCanary",
        MetricName="CanaryInvocations",
        Dimensions=[{"Name": "service", "Value": "swr-canary"}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
        Period=7200,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [point["Sum"] for point in stats] == [2.0]  # once per invocation, not once per flush seen


def test_a_function_whose_own_environment_disables_metrics_writes_none(hooks: BridgeHooks) -> None:
    client("lambda").create_function(
        FunctionName="quiet",
        Runtime="python3.11",
        Role=role_arn(),
        Handler=f"{HANDLERS}.powertools",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"POWERTOOLS_METRICS_DISABLED": "true"}},
    )
    assert "FunctionError" not in client("lambda").invoke(FunctionName="quiet", Payload=b"{}")
    assert _canary_metrics() == []


def test_emf_extraction_follows_every_dimension_set_and_skips_one_the_document_lacks() -> None:
    document = {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "swr",
                    "Dimensions": [["App", "Outcome"], ["App"], ["Absent"]],
                    "Metrics": [
                        {"Name": "Failovers", "Unit": "Count"},
                        {"Name": "FailoverDuration", "Unit": "Seconds"},
                    ],
                }
            ],
        },
        "App": "demo",
        "Outcome": "recovered",
        "Failovers": 1.0,
        "FailoverDuration": [120.5, 130.0],
        "execution": "arn:aws:states:...",  # a property, not a metric
    }
    ((namespace, data),) = moto_bridge.emf_metric_data(document)
    assert namespace == "swr"
    seen = [(d["MetricName"], tuple(x["Name"] for x in d["Dimensions"]), d["Value"], d["Unit"]) for d in data]
    assert seen == [
        ("Failovers", ("App", "Outcome"), 1.0, "Count"),
        ("FailoverDuration", ("App", "Outcome"), 120.5, "Seconds"),
        ("FailoverDuration", ("App", "Outcome"), 130.0, "Seconds"),
        ("Failovers", ("App",), 1.0, "Count"),
        ("FailoverDuration", ("App",), 120.5, "Seconds"),
        ("FailoverDuration", ("App",), 130.0, "Seconds"),
    ]
    assert {d["Timestamp"] for d in data} == {dt.datetime(2023, 11, 14, 22, 13, 20)}


# --------------------------------------------------------------------------------------------------
# 36. A definition's parse tree is built once
# --------------------------------------------------------------------------------------------------


def test_a_definition_is_parsed_once_and_each_execution_gets_fresh_components(hooks: BridgeHooks) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    definition = json.dumps(
        {
            "StartAt": "Pass",
            "States": {"Pass": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd(1, 2)"}, "End": True}},
        }
    )
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)

    assert second_tree is first_tree
    assert second_program is not first_program  # no state shared between executions
    assert ("asl", definition) in moto_bridge._parse_trees
    with pytest.raises(ASLParserException):  # a broken definition is refused every time
        AmazonStateLanguageParser.parse('{"StartAt": ')
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": ')


def test_executions_of_one_definition_run_alike_from_the_cached_tree(hooks: BridgeHooks) -> None:
    sfn = client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/sfn"
    definition = {
        "StartAt": "Add",
        "States": {"Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.n, 1)"}, "End": True}},
    }
    arn = sfn.create_state_machine(name="parse-once", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    outputs = []
    for n in (1, 41):
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": n}))["executionArn"]
        deadline = time.monotonic() + 10
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        outputs.append(json.loads(described["output"]))
    assert outputs == [{"sum": 2}, {"sum": 42}]


# --------------------------------------------------------------------------------------------------
# 37. The response serializer looks up each member's aliases once
# --------------------------------------------------------------------------------------------------


def _world_of_every_shape() -> str:
    """A DynamoDB item of every attribute type, a VPC and a subnet; returns the VPC id."""
    dynamodb, ec2 = client("dynamodb"), client("ec2")
    dynamodb.create_table(
        TableName="aliases",
        KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {
        "app": {"S": "app_demo"},
        "n": {"N": "3.5"},
        "b": {"B": b"\x00\x01"},
        "flag": {"BOOL": True},
        "none": {"NULL": True},
        "tags": {"SS": ["a", "b"]},
        "history": {"L": [{"M": {"at": {"S": "t"}, "step": {"N": "1"}}}, {"L": []}]},
    }
    dynamodb.put_item(TableName="aliases", Item=item)
    vpc = str(ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"])
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")
    return vpc


def _responses(vpc: str) -> list[Any]:
    dynamodb, ec2 = client("dynamodb"), client("ec2")
    return [
        dynamodb.get_item(TableName="aliases", Key={"app": {"S": "app_demo"}}),
        dynamodb.describe_table(TableName="aliases")["Table"],
        ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"],
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
    ]


def test_the_serializer_alias_cache_changes_no_response(hooks: BridgeHooks) -> None:
    from moto.core import serialize

    vpc = _world_of_every_shape()
    cached = [_strip_request_ids(r) for r in _responses(vpc)]
    assert moto_bridge._possible_keys  # the patch was used

    patched = (serialize.AttributePicker.__call__, serialize.ResponseSerializer.get_value)
    own = {
        name: old
        for owner, name, old, _ in moto_bridge._require_bridge().patches._undo
        if owner in (serialize.AttributePicker, serialize.ResponseSerializer) and name in ("__call__", "get_value")
    }
    serialize.AttributePicker.__call__ = own["__call__"]  # type: ignore[method-assign]
    serialize.ResponseSerializer.get_value = own["get_value"]  # type: ignore[method-assign]
    try:
        moto_own = [_strip_request_ids(r) for r in _responses(vpc)]
    finally:
        serialize.AttributePicker.__call__, serialize.ResponseSerializer.get_value = patched  # type: ignore[method-assign]
    assert cached == moto_own


def _strip_request_ids(response: Any) -> Any:
    if isinstance(response, dict):
        return {k: _strip_request_ids(v) for k, v in response.items() if k != "ResponseMetadata"}
    return response


# --------------------------------------------------------------------------------------------------
# 38. A response class's method names are listed once
# --------------------------------------------------------------------------------------------------


def test_a_response_class_is_listed_once_and_as_moto_lists_it(hooks: BridgeHooks) -> None:
    import inspect

    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    listed = responses.method_names_from_class(DynamoHandler)
    assert listed == [name for name, _ in inspect.getmembers(DynamoHandler, predicate=inspect.isfunction)]
    listed.append("not_a_method")  # a caller's copy: the next request still sees the class as it is
    assert "not_a_method" not in responses.method_names_from_class(DynamoHandler)
    client("dynamodb").list_tables()  # dispatch still finds its action through the listing


# --------------------------------------------------------------------------------------------------
# 39. KMS key material once per key spec
# --------------------------------------------------------------------------------------------------


def test_kms_keys_share_their_material_and_still_encrypt_and_decrypt(hooks: BridgeHooks) -> None:
    from moto.kms import models as kms_models

    kms = client("kms")
    first = kms.create_key(Description="first")["KeyMetadata"]["KeyId"]
    second = kms.create_key(Description="second")["KeyMetadata"]["KeyId"]
    backend = kms_models.kms_backends["123456789012"][REGION]
    assert backend.keys[first].private_key is backend.keys[second].private_key
    assert first != second
    blob = kms.encrypt(KeyId=second, Plaintext=b"orders")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"orders" and decrypted["KeyId"].endswith(second)


# --------------------------------------------------------------------------------------------------
# 40. In-process requests carry a credential scope, not a signature
# --------------------------------------------------------------------------------------------------


def test_an_in_process_request_is_unsigned_and_moto_still_reads_its_scope(hooks: BridgeHooks) -> None:
    seen: list[str] = []
    sqs = boto3.client("sqs", region_name="eu-west-1", config=NO_RETRIES)
    sqs.meta.events.register("before-send.sqs.*", lambda request, **_: seen.append(request.headers["Authorization"]))
    url = sqs.create_queue(QueueName="scoped")["QueueUrl"]
    (authorization,) = [h.decode() if isinstance(h, bytes) else h for h in seen]
    assert f"Signature={moto_bridge.UNSIGNED}" in authorization
    assert "/eu-west-1/sqs/aws4_request" in authorization
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    assert ":eu-west-1:" in attributes["QueueArn"]


def test_a_presigned_url_is_still_signed(hooks: BridgeHooks) -> None:
    s3 = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert "X-Amz-Signature=" in url and moto_bridge.UNSIGNED not in url


# --------------------------------------------------------------------------------------------------
# 41. A resource whose Condition is false is not listed
# --------------------------------------------------------------------------------------------------


def test_a_resource_whose_condition_is_false_is_neither_created_nor_listed(hooks: BridgeHooks) -> None:
    template = {
        "Parameters": {"Cidr": {"Type": "String", "Default": ""}},
        "Conditions": {"WithCidr": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Cidr"}, ""]}]}},
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Ingress": {
                "Type": "AWS::EC2::SecurityGroupIngress",  # a type the bridge creates through the API
                "Condition": "WithCidr",
                "Properties": {"GroupId": "sg-none", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443},
            },
        },
    }
    cloudformation = client("cloudformation")
    cloudformation.create_stack(StackName="conditioned", TemplateBody=json.dumps(template))

    listed = cloudformation.describe_stack_resources(StackName="conditioned")["StackResources"]
    assert [r["LogicalResourceId"] for r in listed] == ["Queue"]
    summaries = cloudformation.list_stack_resources(StackName="conditioned")["StackResourceSummaries"]
    assert [r["LogicalResourceId"] for r in summaries] == ["Queue"]


# --------------------------------------------------------------------------------------------------
# 42. Every call a Lambda step makes is authorized against the step's role
# --------------------------------------------------------------------------------------------------


@pytest.mark.refusals_expected
def test_a_functions_call_is_refused_as_aws_refuses_it_when_its_role_lacks_the_permission(hooks: BridgeHooks) -> None:
    describe_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}],
    }
    fn = client("lambda").create_function(
        FunctionName="describer",
        Runtime="python3.11",
        Role=role_arn("describer", describe_only),
        Handler="tests.emulator.sample_handlers.call_ec2",
        Code={"ZipFile": _zip()},
    )["FunctionName"]

    def invoke(action: str) -> dict[str, Any]:
        payload = client("lambda").invoke(FunctionName=fn, Payload=json.dumps({"action": action}))["Payload"].read()
        return dict(json.loads(payload))

    assert invoke("describe_instances") == {"ok": True}
    refused = invoke("describe_vpcs")
    assert "UnauthorizedOperation" in refused["errorMessage"]
    assert "is not authorized to perform ec2:DescribeVpcs on *" in refused["errorMessage"]
    assert moto_bridge.denials == [refused["errorMessage"].split(": ", 1)[1]]


@pytest.mark.refusals_expected
def test_a_remembered_decision_follows_a_change_to_the_roles_policy(hooks: BridgeHooks) -> None:
    # The bridge remembers decisions per policy text: a policy changed between two calls
    # decides the second one afresh, both ways.
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
    deny = {
        **allow,
        "Statement": [*allow["Statement"], {"Effect": "Deny", "Action": "ec2:DescribeVpcs", "Resource": "*"}],
    }
    role = role_arn("changing", allow)
    fn = client("lambda").create_function(
        FunctionName="changing",
        Runtime="python3.11",
        Role=role,
        Handler="tests.emulator.sample_handlers.call_ec2",
        Code={"ZipFile": _zip()},
    )["FunctionName"]

    def allowed() -> bool:
        payload = client("lambda").invoke(FunctionName=fn, Payload=json.dumps({"action": "describe_vpcs"}))["Payload"]
        return bool(json.loads(payload.read()).get("ok"))

    assert allowed() and allowed()
    client("iam").put_role_policy(RoleName="changing", PolicyName="inline", PolicyDocument=json.dumps(deny))
    assert not allowed()
    client("iam").put_role_policy(RoleName="changing", PolicyName="inline", PolicyDocument=json.dumps(allow))
    assert allowed()


# --------------------------------------------------------------------------------------------------
# 43. DynamoDB item results written as JSON directly
# --------------------------------------------------------------------------------------------------


def _item_responses() -> list[Any]:
    dynamodb = client("dynamodb")
    key = {"app": {"S": "plain"}}
    return [
        dynamodb.get_item(TableName="aliases", Key=key, ConsistentRead=True),
        dynamodb.get_item(TableName="aliases", Key={"app": {"S": "app_demo"}}),  # holds bytes
        dynamodb.get_item(TableName="aliases", Key={"app": {"S": "nobody"}}),
        dynamodb.query(
            TableName="aliases", KeyConditionExpression="app = :a", ExpressionAttributeValues={":a": {"S": "plain"}}
        ),
        dynamodb.scan(TableName="aliases"),
        dynamodb.update_item(
            TableName="aliases",
            Key=key,
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        dynamodb.put_item(
            TableName="aliases",
            Item={**key, "n": {"N": "0"}, "flag": {"BOOL": False}, "tags": {"SS": ["a"]}, "m": {"M": {}}},
            ReturnValues="ALL_OLD",
        ),
    ]


def test_dynamodb_item_results_parse_the_same_as_through_motos_serializer(hooks: BridgeHooks) -> None:
    from moto.dynamodb.responses import DynamoResult

    _world_of_every_shape()
    seed = {"app": {"S": "plain"}, "n": {"N": "0"}, "flag": {"BOOL": False}, "tags": {"SS": ["a"]}, "m": {"M": {}}}
    client("dynamodb").put_item(TableName="aliases", Item=seed)
    direct = [_strip_request_ids(r) for r in _item_responses()]

    patched = vars(DynamoResult)["execute_result"]
    del DynamoResult.execute_result  # moto's own, inherited from ActionResult
    try:
        client("dynamodb").put_item(TableName="aliases", Item=seed)
        through_moto = [_strip_request_ids(r) for r in _item_responses()]
    finally:
        DynamoResult.execute_result = patched  # type: ignore[method-assign]
    assert direct == through_moto
    assert direct[0]["Item"]["n"] == {"N": "0"} and direct[1]["Item"]["b"] == {"B": b"\x00\x01"}


# --------------------------------------------------------------------------------------------------
# 44. An item read converts each value once, and a projection only what it returns
# --------------------------------------------------------------------------------------------------
_PROJECTIONS = (
    "app, n",
    "history",
    "history[0].step, history[1]",
    "history[0], history[0].at",  # overlapping paths merged into one result
    "b, tags, #none",
    "absent, n",
    "history[7]",
)


def _reads() -> list[Any]:
    dynamodb = client("dynamodb")
    key = {"app": {"S": "app_demo"}}
    reads = [dynamodb.get_item(TableName="aliases", Key=key, ConsistentRead=True), dynamodb.scan(TableName="aliases")]
    for projection in _PROJECTIONS:
        names = {"ExpressionAttributeNames": {"#none": "none"}} if "#none" in projection else {}
        reads.append(dynamodb.get_item(TableName="aliases", Key=key, ProjectionExpression=projection, **names))
        reads.append(dynamodb.scan(TableName="aliases", ProjectionExpression=projection, **names))
    return [_strip_request_ids(r) for r in reads]


def test_item_reads_and_projections_are_the_same_as_motos(hooks: BridgeHooks) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    _world_of_every_shape()
    patched = vars(DynamoType)["to_regular_json"], vars(Item)["project"]
    fast = _reads()
    DynamoType.to_regular_json, Item.project = patched[0].__wrapped__, patched[1].__wrapped__  # type: ignore[method-assign]
    try:
        through_moto = _reads()
    finally:
        DynamoType.to_regular_json, Item.project = patched  # type: ignore[method-assign]
    assert fast == through_moto
    assert fast[2]["Item"] == {"app": {"S": "app_demo"}, "n": {"N": "3.5"}}  # "app, n"
    assert fast[4]["Item"]["history"] == fast[0]["Item"]["history"]


# --------------------------------------------------------------------------------------------------
# 45. CloudFormation reads templates with libyaml's parser
# --------------------------------------------------------------------------------------------------
def test_moto_reads_swrs_template_the_same_with_libyaml(hooks: BridgeHooks) -> None:
    import yaml
    from moto.cloudformation import models, responses
    from moto.cloudformation.utils import yaml_tag_constructor

    from swr.emulator.deploy import TEMPLATE

    text = TEMPLATE.read_text()
    yaml.add_multi_constructor("", yaml_tag_constructor)  # what moto does before each read
    pure_python = yaml.load(text, Loader=yaml.Loader)
    assert isinstance(models.yaml, moto_bridge.cloudformation._LibyamlModule)
    assert responses.yaml is models.yaml
    assert models.yaml.load(text, Loader=yaml.Loader) == pure_python
    assert pure_python["Resources"]["FailoverStateMachine"]["Properties"]["DefinitionSubstitutions"]


# --------------------------------------------------------------------------------------------------
# 46. A JSONPath is parsed once
# --------------------------------------------------------------------------------------------------
def test_a_jsonpath_is_parsed_once_and_reads_as_before(hooks: BridgeHooks) -> None:
    from jsonpath_ng.ext import parse as uncached_parse
    from moto.stepfunctions.parser.asl.utils import json_path

    data = {"fence": {"instances": [{"id": "i-1", "cut": False}, {"id": "i-2", "cut": True}]}}
    assert json_path.parse("$.fence.instances[1]") is json_path.parse("$.fence.instances[1]")
    for path in ("$.fence.instances[1]", "$.fence.instances[*].id", "$.fence"):
        expected = [m.value for m in uncached_parse(path).find(data)]
        assert [m.value for m in json_path.parse(path).find(data)] == expected
    assert json_path.extract_json("$.fence", data) == data["fence"]


# --------------------------------------------------------------------------------------------------
# 47. A request URL is routed to its handler once
# --------------------------------------------------------------------------------------------------
def test_a_url_is_routed_to_the_handler_moto_would_call(hooks: BridgeHooks) -> None:
    from moto.awslambda import urls as lambda_urls
    from moto.dynamodb import urls as dynamodb_urls
    from moto.ec2 import urls as ec2_urls

    from swr.emulator.moto_bridge.responses import _route

    assert _route("https://ec2.ap-northeast-1.amazonaws.com/") in ec2_urls.url_paths.values()
    assert _route("https://dynamodb.ap-northeast-1.amazonaws.com/") in dynamodb_urls.url_paths.values()
    invoke = "https://lambda.ap-northeast-1.amazonaws.com/2015-03-31/functions/f/invocations"
    assert _route(invoke) in lambda_urls.url_paths.values()
    assert _route("https://nothing.example.com/") is None  # moto's own code answers (passes it through)
    # And every service still answers through it.
    assert client("ec2").describe_vpcs()["Vpcs"] is not None
    assert client("dynamodb").list_tables()["TableNames"] == []


def test_the_backends_epoch_moves_on_with_every_request_and_every_direct_change(hooks: BridgeHooks) -> None:
    # The simulation keeps what it read from the backends while the epoch stands: every way the
    # backends change must move it on.
    before = moto_bridge.backends_epoch()
    instance_id = run_instance(make_subnet())["Instances"][0]["InstanceId"]
    after_request = moto_bridge.backends_epoch()
    assert after_request > before
    moto_bridge.set_instance_state(instance_id, "running")
    assert moto_bridge.backends_epoch() > after_request
