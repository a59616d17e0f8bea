"""Who may start a failover: only the application's own instances raise its RMS faults, once.
Each hostile trigger below is refused with a reason an operator can read, and nothing changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.core.record import AppState
from rms_hooks import fault_notifier
from swr.emulator import Emulator
from tests.helpers.scenarios import finished, rule_watches, start
from tests.scenarios.test_trigger_delivery import dead_letters


def fault_of(
    emu: Emulator, app: str = "demo", source: str | None = None, generation: int | None = None
) -> dict[str, Any]:
    occurred_at = datetime.fromtimestamp(emu.clock.now(), tz=UTC)
    entry = fault_notifier.fault_entry(
        app, emu.primary_instance_id, "app_demo", "Cmdline0 failed", occurred_at, generation=generation
    )
    if source is not None:
        entry["Source"] = source
    return entry


def assert_unchanged(emu: Emulator) -> None:
    record = emu.store.require("demo")
    assert record.state is AppState.NORMAL and record.lease is None and record.fences == []
    assert record.current_instance_id == emu.primary_instance_id and record.generation == 0
    assert emu.instance(emu.primary_instance_id).workload_up


def simulate_put_events(emu: Emulator, source: str, detail_type: str = "RMS Fault") -> str:
    iam = emu.boto3_client("iam")
    bus = f"arn:aws:events:{emu.region}:123456789012:event-bus/default"
    (result,) = iam.simulate_principal_policy(
        PolicySourceArn=emu.stack.InstanceRoleArn,
        ActionNames=["events:PutEvents"],
        ResourceArns=[bus],
        ContextEntries=[
            {"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": [emu.region], "ContextKeyType": "string"},
            {"ContextKeyName": "events:source", "ContextKeyValues": [source], "ContextKeyType": "string"},
            {"ContextKeyName": "events:detail-type", "ContextKeyValues": [detail_type], "ContextKeyType": "string"},
        ],
    )["EvaluationResults"]
    return str(result["EvalDecision"])


def test_the_instance_role_publishes_only_its_own_applications_faults(emulator: Emulator):
    assert emulator.stack.RmsEventSource == "swr.rms.demo"
    assert simulate_put_events(emulator, "swr.rms.demo") == "allowed"
    # Application A's role (this one) cannot speak for B, nor publish anything else.
    assert simulate_put_events(emulator, "swr.rms.billing") == "implicitDeny"
    assert simulate_put_events(emulator, "swr.rms.demo", detail_type="Failover Requested") == "implicitDeny"


def test_the_instance_role_works_only_in_its_region(emulator: Emulator):
    iam = emulator.boto3_client("iam")

    def heartbeat(region: str) -> str:
        (result,) = iam.simulate_principal_policy(
            PolicySourceArn=emulator.stack.InstanceRoleArn,
            ActionNames=["cloudwatch:PutMetricData"],
            ContextEntries=[
                {"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": [region], "ContextKeyType": "string"},
                {"ContextKeyName": "cloudwatch:namespace", "ContextKeyValues": ["swr"], "ContextKeyType": "string"},
            ],
        )["EvaluationResults"]
        return str(result["EvalDecision"])

    assert heartbeat(emulator.region) == "allowed"
    assert heartbeat("us-east-1") == "explicitDeny"  # its credentials carried off to another region


def test_a_fault_published_under_another_applications_source_starts_nothing(emulator: Emulator):
    # The billing application's instance role may publish swr.rms.billing; it names demo's instance.
    forged = fault_of(emulator, app="demo", source="swr.rms.billing")
    emulator.boto3_client("events").put_events(Entries=[forged])
    emulator.sleep(300)

    assert emulator.executions() == []  # demo's rule matches only swr.rms.demo
    assert_unchanged(emulator)


def test_a_forged_fault_started_by_hand_is_refused_kept_and_changes_nothing(emulator: Emulator):
    # Someone allowed to start executions hands the workflow an event whose source names another app.
    event = {
        "id": "forged-1",
        "source": "swr.rms.billing",
        "detail-type": "RMS Fault",
        "time": "2026-11-30T00:00:00Z",
        "detail": {"app": "demo", "instance_id": emulator.primary_instance_id, "fault_id": "f-1"},
    }
    described = finished(emulator, start(emulator, event, "forged-1"))

    assert described["status"] == "FAILED" and described["error"] == "MalformedTrigger"
    assert "whose faults come only from 'swr.rms.demo'" in described["cause"]
    (letter,) = dead_letters(emulator, wait=60)
    assert json.loads(letter["Body"])["trigger"]["id"] == "forged-1"
    assert_unchanged(emulator)


def test_a_fault_published_again_after_it_was_decided_changes_nothing(emulator: Emulator):
    # Raised during maintenance, refused; published again once maintenance is over: still refused.
    fault = fault_of(emulator)
    emulator.store.update("demo", lambda r: setattr(r, "maintenance", _maintenance()))
    emulator.boto3_client("events").put_events(Entries=[fault])
    assert emulator.wait_until(lambda: _ended(emulator, 1), timeout=600)
    emulator.store.update("demo", lambda r: setattr(r, "maintenance", None))

    emulator.boto3_client("events").put_events(Entries=[fault])
    assert emulator.wait_until(lambda: _ended(emulator, 2), timeout=600)

    outputs = [_output(emulator, e["executionArn"]) for e in emulator.executions()]
    assert [o["decision"] for o in outputs] == ["ignore", "ignore"]
    assert "maintenance" in outputs[0]["reason"]
    assert "already decided on" in outputs[1]["reason"] and "replay" in outputs[1]["reason"]
    assert_unchanged(emulator)


def test_a_fault_raised_by_an_earlier_generation_is_refused_with_its_reason(emulator: Emulator):
    # The application has moved on since this fault was raised (here: the record says generation 2).
    emulator.store.update("demo", lambda r: setattr(r, "generation", 2))
    emulator.boto3_client("events").put_events(Entries=[fault_of(emulator, generation=1)])
    assert emulator.wait_until(lambda: _ended(emulator, 1), timeout=600)

    (execution,) = emulator.executions()
    refused = _output(emulator, execution["executionArn"])
    assert refused["decision"] == "ignore"
    assert "raised by generation 1, but 'demo' runs generation 2" in refused["reason"]
    record = emulator.store.require("demo")
    assert record.state is AppState.NORMAL and record.lease is None and record.generation == 2
    assert emulator.instance(emulator.primary_instance_id).workload_up


def test_a_fault_of_the_generation_the_application_runs_is_admitted(emulator: Emulator):
    emulator.boto3_client("events").put_events(Entries=[fault_of(emulator, generation=0)])
    assert emulator.wait_until(lambda: bool(emulator.executions()), timeout=60)
    (execution,) = emulator.executions()
    assert emulator.wait_until(lambda: emulator.store.require("demo").lease is not None, timeout=60)
    assert emulator.store.require("demo").lease.holder == execution["executionArn"]  # type: ignore[union-attr]


def _maintenance() -> Any:
    from handlers.core.record import Maintenance

    return Maintenance(by="ops", reason="patching", since=datetime(2026, 11, 30, tzinfo=UTC))


def _ended(emu: Emulator, count: int) -> bool:
    executions = emu.executions()
    return len(executions) == count and all(e["status"] != "RUNNING" for e in executions)


def _output(emu: Emulator, arn: str) -> dict[str, Any]:
    described = emu.boto3_client("stepfunctions").describe_execution(executionArn=arn)
    return dict(json.loads(described.get("output") or "{}"))


# --- launch conditions ----------------------------------------------------------------------
def simulate_launch(emu: Emulator, resource: str, **context: str) -> str:
    iam = emu.boto3_client("iam")
    (role,) = [r["Arn"] for r in iam.list_roles()["Roles"] if "LaunchReplacementRole" in r["RoleName"]]
    entries = [{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in context.items()]
    (result,) = iam.simulate_principal_policy(
        PolicySourceArn=role,
        ActionNames=["ec2:RunInstances"],
        ResourceArns=[f"arn:aws:ec2:{emu.region}:123456789012:{resource}"],
        ContextEntries=[
            {"ContextKeyName": "aws:RequestTag/swr:app", "ContextKeyValues": ["demo"], "ContextKeyType": "string"},
            *entries,
        ],
    )["EvaluationResults"]
    return str(result["EvalDecision"])


def test_the_launch_role_launches_only_imdsv2_instances_with_encrypted_volumes(emulator: Emulator):
    assert simulate_launch(emulator, "instance/*", **{"ec2:MetadataHttpTokens": "required"}) == "allowed"
    assert simulate_launch(emulator, "instance/*", **{"ec2:MetadataHttpTokens": "optional"}) == "implicitDeny"
    assert simulate_launch(emulator, "volume/*", **{"ec2:Encrypted": "true"}) == "allowed"
    assert simulate_launch(emulator, "volume/*", **{"ec2:Encrypted": "false"}) == "implicitDeny"


def test_the_replacement_answers_imdsv2_only_and_its_volumes_are_encrypted(emulator: Emulator):
    emulator.inject("rms-fault")
    assert emulator.report(emulator.wait_for_failover())["outcome"] == "recovered"

    ec2 = emulator.boto3_client("ec2")
    new = emulator.store.require("demo").current_instance_id
    (instance,) = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [new]}])["Volumes"]
    assert volumes and all(v["Encrypted"] for v in volumes)


def test_every_failover_step_keeps_reserved_concurrency(emulator: Emulator):
    # An incident that throttles Lambda account-wide must not starve the failover. (Configuration
    # only: moto does not throttle at the reservation; the ASL retries Lambda.TooManyRequests.)
    lam = emulator.boto3_client("lambda")
    functions = [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith("swr-")]
    assert len(functions) >= 10
    reserved = {f: lam.get_function_concurrency(FunctionName=f).get("ReservedConcurrentExecutions") for f in functions}
    assert set(reserved.values()) == {5}, reserved


# --- EC2 state-change triggers ----------------------------------------------------------------
def test_an_unrelated_instance_that_stops_or_terminates_starts_no_execution(emulator: Emulator):
    # A developer's test box in the same region, and an Auto Scaling group cycling one.
    ec2 = emulator.boto3_client("ec2")
    world = emulator.world
    assert world is not None
    (box,) = ec2.run_instances(ImageId=world.image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"]
    for state in ("stopping", "stopped", "shutting-down", "terminated"):
        emulator.sim.publish_ec2_state(box["InstanceId"], state)
    emulator.sleep(300)

    assert emulator.executions() == []
    assert rule_watches(emulator, "swr-instance-watch") == [emulator.primary_instance_id]
    assert_unchanged(emulator)


def test_the_step_roles_may_point_only_swrs_two_rules_at_ec2_state_changes(emulator: Emulator):
    iam = emulator.boto3_client("iam")
    (role,) = [r["Arn"] for r in iam.list_roles()["Roles"] if "FinaliseFailoverRole" in r["RoleName"]]

    def put_rule(rule: str, source: str) -> str:
        (result,) = iam.simulate_principal_policy(
            PolicySourceArn=role,
            ActionNames=["events:PutRule"],
            ResourceArns=[f"arn:aws:events:{emulator.region}:123456789012:rule/{rule}"],
            ContextEntries=[
                {"ContextKeyName": "events:source", "ContextKeyValues": [source], "ContextKeyType": "string"},
                {
                    "ContextKeyName": "events:detail-type",
                    "ContextKeyValues": ["EC2 Instance State-change Notification"],
                    "ContextKeyType": "string",
                },
            ],
        )["EvaluationResults"]
        return str(result["EvalDecision"])

    assert put_rule("swr-instance-watch", "aws.ec2") == "allowed"
    assert put_rule("swr-fence-release", "aws.ec2") == "allowed"
    assert put_rule("swr-rms-fault", "aws.ec2") == "implicitDeny"  # not a rule it points
    assert put_rule("swr-instance-watch", "swr.rms.demo") == "implicitDeny"  # nor at other events


def test_status_shows_a_watch_that_does_not_follow_the_record_and_deploy_points_it_again(emulator: Emulator):
    from swr.ops import onboarding
    from swr.ops.status import status_of

    # Someone (or a stack update that changed the rule's definition) pointed it elsewhere.
    pattern = {"source": ["aws.ec2"], "detail": {"instance-id": ["i-0123456789abcdef0"]}}
    emulator.boto3_client("events").put_rule(
        Name="swr-instance-watch", EventPattern=json.dumps(pattern), State="ENABLED"
    )
    (drift,) = status_of(emulator.boto3_client, "swr", emulator.stack).watch_drift
    assert "matches i-0123456789abcdef0" in drift and f"wants {emulator.primary_instance_id}" in drift

    assert onboarding.point_rules(emulator.boto3_client, emulator.stack) == [
        "EC2 state-change rules point at what the record of demo names"
    ]
    assert status_of(emulator.boto3_client, "swr", emulator.stack).watch_drift == []
    assert rule_watches(emulator, "swr-instance-watch") == [emulator.primary_instance_id]


# --- the instance role, bound to its instance -----------------------------------------------
def read_record(emu: Emulator, app: str = "demo", **context: str) -> str:
    """May the instance role read ``app``'s record, with these request context keys?"""
    iam = emu.boto3_client("iam")
    entries = {"aws:RequestedRegion": emu.region, "dynamodb:LeadingKeys": app, **context}
    (result,) = iam.simulate_principal_policy(
        PolicySourceArn=emu.stack.InstanceRoleArn,
        ActionNames=["dynamodb:GetItem"],
        ResourceArns=[f"arn:aws:dynamodb:{emu.region}:123456789012:table/{emu.table_name}"],
        ContextEntries=[
            {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in entries.items()
        ],
    )["EvaluationResults"]
    return str(result["EvalDecision"])


def on_the_instance(emu: Emulator, vpc: str, address: str) -> dict[str, str]:
    """The context of a call made with the primary's role credentials from ``vpc``/``address``
    (through a VPC endpoint; its credentials say where they were issued)."""
    world = emu.world
    assert world is not None
    role_id = emu.boto3_client("iam").get_role(RoleName=emu.stack.InstanceRoleArn.rsplit("/", 1)[-1])["Role"]["RoleId"]
    return {
        "aws:userid": f"{role_id}:{emu.primary_instance_id}",  # an instance role's session
        "ec2:SourceInstanceARN": f"arn:aws:ec2:{emu.region}:123456789012:instance/{emu.primary_instance_id}",
        "aws:EC2InstanceSourceVPC": world.vpc_id,
        "aws:EC2InstanceSourcePrivateIPv4": "10.20.0.4",
        "aws:SourceVpc": vpc,
        "aws:VpcSourceIp": address,
    }


def test_the_instance_role_reads_its_record_only_from_the_instance_it_was_issued_to(emulator: Emulator):
    world = emulator.world
    assert world is not None
    assert read_record(emulator, **on_the_instance(emulator, world.vpc_id, "10.20.0.4")) == "allowed"
    assert read_record(emulator, "billing", **on_the_instance(emulator, world.vpc_id, "10.20.0.4")) == "implicitDeny"
    # The same credentials, carried off: another VPC's endpoint, another address, the internet.
    assert read_record(emulator, **on_the_instance(emulator, "vpc-0elsewhere", "10.20.0.4")) == "explicitDeny"
    assert read_record(emulator, **on_the_instance(emulator, world.vpc_id, "10.20.0.99")) == "explicitDeny"
    from_outside = on_the_instance(emulator, world.vpc_id, "10.20.0.4")
    del from_outside["aws:SourceVpc"], from_outside["aws:VpcSourceIp"]
    assert read_record(emulator, **from_outside) == "explicitDeny"


def test_finalise_may_retarget_alarms_but_not_give_them_an_ec2_action(emulator: Emulator):
    iam = emulator.boto3_client("iam")
    (role,) = [r["Arn"] for r in iam.list_roles()["Roles"] if "FinaliseFailoverRole" in r["RoleName"]]
    alarm = f"arn:aws:cloudwatch:{emulator.region}:123456789012:alarm:swr-demo-heartbeat-missing"

    def put_alarm(*actions: str) -> str:
        context = [
            {"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": [emulator.region], "ContextKeyType": "string"}
        ]
        if actions:
            context.append(
                {
                    "ContextKeyName": "cloudwatch:AlarmActions",
                    "ContextKeyValues": list(actions),
                    "ContextKeyType": "stringList",
                }
            )
        (result,) = iam.simulate_principal_policy(
            PolicySourceArn=role,
            ActionNames=["cloudwatch:PutMetricAlarm"],
            ResourceArns=[alarm],
            ContextEntries=context,
        )["EvaluationResults"]
        return str(result["EvalDecision"])

    assert put_alarm() == "allowed"  # swr's alarms have no actions: EventBridge rules react to them
    assert put_alarm(f"arn:aws:sns:{emulator.region}:123456789012:oncall") == "allowed"
    assert put_alarm(f"arn:aws:automate:{emulator.region}:ec2:terminate") == "implicitDeny"


# --- alarm triggers ---------------------------------------------------------------------------
def test_an_alarm_that_is_not_one_of_the_applications_own_starts_no_failover(emulator: Emulator):
    # Someone adds an alarm whose name happens to start with the application's alarm prefix.
    cloudwatch = emulator.boto3_client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="swr-demo-cpu-high",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "InstanceId", "Value": emulator.primary_instance_id}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="swr-demo-cpu-high", StateValue="ALARM", StateReason="busy")
    assert emulator.wait_until(lambda: _ended(emulator, 1), timeout=600)

    (execution,) = emulator.executions()
    refused = _output(emulator, execution["executionArn"])
    assert refused["decision"] == "ignore"
    assert "alarm swr-demo-cpu-high is not one of 'demo''s alarms" in refused["reason"]
    assert_unchanged(emulator)


def test_an_alarm_event_that_is_no_fresh_transition_is_refused(emulator: Emulator):
    alarm = emulator.alarm("StatusCheckFailed_Instance")
    event = {
        "id": "stale-alarm-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": "2026-11-30T00:00:00Z",
        "detail": {
            "alarmName": alarm,
            "state": {"value": "ALARM", "reason": "Threshold Crossed"},
            "previousState": {"value": "ALARM", "reason": "Threshold Crossed"},
            "configuration": {
                "metrics": [{"metricStat": {"metric": {"dimensions": {"InstanceId": emulator.primary_instance_id}}}}]
            },
        },
    }
    described = finished(emulator, start(emulator, event, "stale-alarm-1"))

    assert described["status"] == "SUCCEEDED"
    refused = json.loads(described["output"])
    assert refused["decision"] == "ignore"
    assert f"alarm {alarm} was ALARM already: not a fresh transition" in refused["reason"]
    assert_unchanged(emulator)


# --- every step call checked against the step's role (bridge patch 42) ---------------------------
def _without_statement(emu: Emulator, policy_hint: str, action: str) -> None:
    """Remove the statement granting ``action`` from the step policy whose name has ``policy_hint``."""
    iam = emu.boto3_client("iam")
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            if policy_hint in name:
                document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
                kept = [s for s in document["Statement"] if action not in json.dumps(s.get("Action"))]
                assert len(kept) < len(document["Statement"])
                if not kept:  # IAM refuses a policy without statements: the policy goes
                    iam.delete_role_policy(RoleName=role["RoleName"], PolicyName=name)
                    return
                iam.put_role_policy(
                    RoleName=role["RoleName"],
                    PolicyName=name,
                    PolicyDocument=json.dumps(document | {"Statement": kept}),
                )
                return
    for policy in iam.list_policies(Scope="Local")["Policies"]:
        if policy_hint in policy["PolicyName"]:
            version = iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=version)["PolicyVersion"]["Document"]
            kept = [s for s in document["Statement"] if action not in json.dumps(s.get("Action"))]
            assert len(kept) < len(document["Statement"])
            iam.create_policy_version(
                PolicyArn=policy["Arn"], PolicyDocument=json.dumps(document | {"Statement": kept}), SetAsDefault=True
            )
            return
    raise AssertionError(f"no step policy {policy_hint}")


@pytest.mark.refusals_expected
@pytest.mark.parametrize(
    ("policy", "action", "recovers"),
    [
        # The fence has other means (the deny entries, the power-off): the failover still recovers,
        # and the refused deregistration is in the fence's record of what failed.
        ("FenceInstancePolicy", "elasticloadbalancing:DeregisterTargets", True),
        ("launch-replacement", "iam:PassRole", False),
        ("finalise-failover", "ec2:DescribeInstances", False),
    ],
)
def test_a_statement_removed_from_a_step_policy_is_refused_at_that_call(policy: str, action: str, recovers: bool):
    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        _without_statement(emu, policy, action)
        emu.inject("rms-fault")
        report = emu.report(emu.wait_for_failover())
        refused = list(moto_bridge.denials)

    assert refused and all(f"not authorized to perform {action}" in r for r in refused)
    assert (report["outcome"] == "recovered") is recovers
    assert report["invariant_violations"] == []


# --- the other principals: the state machine, the rules' trigger role, the instance ----------------
@pytest.mark.refusals_expected
def test_a_trigger_role_that_may_not_start_the_workflow_leaves_the_fault_in_the_dead_letter_queue():
    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        _without_statement(emu, "start-failover", "states:StartExecution")
        emu.inject("rms-fault")
        (kept,) = dead_letters(emu)
        refused = list(moto_bridge.denials)
        assert emu.executions() == []

    assert refused and all("TriggerRole" in r and "states:StartExecution" in r for r in refused)
    assert json.loads(kept["Body"])["detail-type"] == "RMS Fault"
    assert "states:StartExecution" in kept["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]


@pytest.mark.refusals_expected
def test_a_state_machine_role_that_may_not_invoke_the_steps_keeps_and_announces_the_trigger():
    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        _without_statement(emu, "invoke-steps", "lambda:InvokeFunction")
        emu.inject("rms-fault")
        (kept,) = dead_letters(emu)
        (execution,) = emu.executions()
        described = finished(emu, execution["executionArn"])
        refused = list(moto_bridge.denials)
        record = emu.store.require(emu.app)

    # As AWS reports a state machine role without lambda:InvokeFunction (retried as any Lambda
    # service error, then the trigger is kept and announced).
    assert described["status"] == "FAILED" and described["error"] == "Lambda.AWSLambdaException"
    assert "Error Code: AccessDeniedException" in described["cause"]
    assert refused and all("StateMachineRole" in r and "lambda:InvokeFunction" in r for r in refused)
    body = json.loads(kept["Body"])
    assert body["error"] == "Lambda.AWSLambdaException" and body["trigger"]["detail-type"] == "RMS Fault"
    assert record.state is AppState.NORMAL and record.lease is None  # nothing was taken


@pytest.mark.refusals_expected
def test_an_instance_role_that_may_not_read_the_record_never_gets_its_replacement_a_permit():
    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        _without_statement(emu, "protected-instance", "dynamodb:GetItem")
        emu.inject("rms-fault")
        report = emu.report(emu.wait_for_failover())
        refused = list(moto_bridge.denials)
        replacements = [i for i in emu.sim.instances.values() if i.role == "replacement"]

    assert refused and all("InstanceRole" in r and "dynamodb:GetItem" in r for r in refused)
    assert report["outcome"] != "recovered" and report["invariant_violations"] == []
    assert replacements and not any(i.workload_up or i.mounted for i in replacements)


@pytest.mark.refusals_expected
def test_only_the_permitted_instance_can_read_its_permits_token():
    from botocore.exceptions import ClientError

    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        emu.inject("rms-fault")
        emu.report(emu.wait_for_failover())
        record = emu.store.require(emu.app)
        assert record.permit is not None and record.permit.token_key
        dynamodb = emu.boto3_client("dynamodb")

        def read_token(instance_id: str) -> str:
            with emu.instance_credentials(emu.instance(instance_id)):
                key = {"app": {"S": record.permit.token_key}}  # type: ignore[union-attr]
                return str(dynamodb.get_item(TableName=emu.table_name, Key=key)["Item"]["task_token"]["S"])

        token = read_token(record.permit.instance_id)  # the replacement it names
        with pytest.raises(ClientError) as refused:
            read_token(emu.primary_instance_id)  # the old instance, same role, same application
        stored = emu.boto3_client("dynamodb").get_item(TableName=emu.table_name, Key={"app": {"S": emu.app}})

    assert token and token not in json.dumps(stored["Item"])  # the record itself holds no token
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert any("not authorized to perform dynamodb:GetItem" in d for d in moto_bridge.denials)


def test_a_permit_answered_by_a_stranger_gives_the_replacement_no_traffic():
    # Someone with wider rights than an instance (an operator's credentials, say) reads the
    # token and answers for another instance before the replacement's boot gate does.
    with Emulator.for_scenario("rms-fault") as emu:
        emu.inject("rms-fault")
        assert emu.wait_until(lambda: emu.store.require(emu.app).permit is not None, 900.0, poll=0.5)
        permit = emu.store.require(emu.app).permit
        assert permit is not None
        dynamodb, sfn = emu.boto3_client("dynamodb"), emu.boto3_client("stepfunctions")
        item = dynamodb.get_item(TableName=emu.table_name, Key={"app": {"S": permit.token_key}})["Item"]
        forged = {
            "instance_id": "i-0stranger",
            "az": "ap-northeast-1c",
            "generation": permit.generation,
            "file_system_id": "fs-x",
            "mount_point": "/srv",
            "mounted_at": "2026-01-01T00:00:00+00:00",
            "started_at": "2026-01-01T00:00:00+00:00",
        }
        sfn.send_task_success(taskToken=item["task_token"]["S"], output=json.dumps(forged))
        report = emu.report(emu.wait_for_failover())

    assert report["outcome"] != "recovered" and report["error"] == "PermitRefused"
    assert "answered for i-0stranger" in report["cause"] and "not by its boot gate" in report["cause"]
    assert report["invariant_violations"] == []


@pytest.mark.refusals_expected
def test_a_launch_from_an_ami_not_marked_for_the_application_is_refused():
    from swr.emulator import moto_bridge

    with Emulator.for_scenario("rms-fault") as emu:
        ec2 = emu.boto3_client("ec2")
        other = ec2.register_image(Name="not-for-demo", Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
        record = emu.store.require(emu.app)
        emu.store.save(
            record.model_copy(update={"launch_spec": record.launch_spec.model_copy(update={"image_id": other})})
        )
        emu.inject("rms-fault")
        report = emu.report(emu.wait_for_failover())
        refused = list(moto_bridge.denials)

    assert report["outcome"] != "recovered" and report["invariant_violations"] == []
    assert refused and all("ec2:RunInstances" in r and f"image/{other}" in r for r in refused)
