"""What the README's deployment guide promises, on the emulator: the stack users deploy is the
stack the emulator runs (every resource there, the workflow wired to the stack's functions),
the demo application is protected by `swr register`'s code, and a new user who starts from an
unprotected account gets to a recovered drill with `swr deploy`, `swr register`, `swr drill`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.core.record import AppState
from swr import cli
from swr.emulator import Emulator
from swr.emulator.deploy import STACK_NAME
from tests.helpers.scenarios import assert_safe

ASL = Path("statemachine/failover.asl.json")


def test_the_emulator_runs_the_template_users_deploy_with_every_resource_present(emulator: Emulator):
    deployment = emulator.deployment
    assert deployment is not None
    template_resources = emulator.boto3_client("cloudformation").describe_stack_resources(StackName=STACK_NAME)[
        "StackResources"
    ]

    assert deployment.check.missing == []
    assert len(deployment.check.declared) == len(template_resources) >= 60
    # moto's CloudFormation skips these; the emulator creates them through the API and says so
    created = {r.resource_type for r in deployment.created_through_api}
    assert {"AWS::CloudWatch::Alarm", "AWS::StepFunctions::StateMachine", "AWS::CloudTrail::Trail"} <= created
    assert "created through the API" in deployment.summary()


def test_the_workflow_calls_the_stack_functions_with_the_stack_settings(emulator: Emulator):
    sfn, lambda_ = emulator.boto3_client("stepfunctions"), emulator.boto3_client("lambda")
    machine = sfn.describe_state_machine(stateMachineArn=emulator.state_machine_arn)
    definition = machine["definition"]
    assert "${" not in definition, "a DefinitionSubstitution was left unresolved"
    admit = json.loads(definition)["States"]["Admit"]["Resource"]
    assert admit.endswith(":function:swr-admit")
    configuration = lambda_.get_function_configuration(FunctionName="swr-admit")
    assert configuration["Handler"] == "handlers.admit.handler"
    assert configuration["Environment"]["Variables"]["SWR_TABLE_NAME"] == emulator.table_name == "swr-apps"
    assert machine["loggingConfiguration"]["level"] == "ALL"
    # every placeholder in the ASL became one of the stack's functions
    assert len(set(json.loads(ASL.read_text()).keys())) and definition.count(":function:swr-") >= 11


def test_every_trigger_rule_retries_and_keeps_what_it_cannot_deliver(emulator: Emulator):
    events = emulator.boto3_client("events")
    rules = [r["Name"] for r in events.list_rules(NamePrefix="swr-")["Rules"] if "-notify-" not in r["Name"]]
    assert sorted(rules) == ["swr-alarm-state-change", "swr-fence-release", "swr-instance-watch", "swr-rms-fault"]
    for rule in rules:
        (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
        # The fence release is housekeeping: it invokes ReleaseFences directly, no execution.
        wanted = ":function:swr-release-fences" if rule == "swr-fence-release" else emulator.state_machine_arn
        assert target["Arn"].endswith(wanted)
        assert target["DeadLetterConfig"]["Arn"].endswith(":swr-trigger-dead-letters")
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 3600


def test_registering_pointed_the_instance_watch_at_the_current_instance_only(emulator: Emulator):
    events = emulator.boto3_client("events")
    watch = events.describe_rule(Name="swr-instance-watch")
    pattern = json.loads(watch["EventPattern"])
    assert watch["State"] == "ENABLED"
    assert pattern["detail"]["instance-id"] == [emulator.primary_instance_id]
    assert pattern["source"] == ["aws.ec2"]
    release = events.describe_rule(Name="swr-fence-release")
    assert release["State"] == "DISABLED"  # no fence holds anything yet


def test_the_demo_application_was_protected_by_swr_register(emulator: Emulator):
    stack, world = emulator.stack, emulator.world
    assert stack is not None and world is not None
    ec2 = emulator.boto3_client("ec2")
    record = emulator.store.require("demo")
    instance = ec2.describe_instances(InstanceIds=[emulator.primary_instance_id])["Reservations"][0]["Instances"][0]

    assert record.state is AppState.NORMAL and record.current_instance_id == emulator.primary_instance_id
    assert record.launch_spec.instance_profile_arn == stack.InstanceProfileArn
    assert instance["IamInstanceProfile"]["Arn"] == stack.InstanceProfileArn
    assert stack.ProtectedInstanceSecurityGroupId in record.launch_spec.security_group_ids
    assert {t["Key"]: t["Value"] for t in instance["Tags"]}["swr:app"] == "demo"
    alarms = emulator.boto3_client("cloudwatch").describe_alarms(AlarmNamePrefix="swr-demo-")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(record.alarm_names) == sorted(emulator.alarm_names)
    assert record.blackhole_security_group_id == stack.BlackholeSecurityGroupId


@pytest.fixture
def unprotected() -> Emulator:
    with Emulator(virtual=False, warp=100.0, protect=False) as emu:
        yield emu  # type: ignore[misc]


def test_a_new_user_deploys_registers_and_drills_from_the_guide(
    unprotected: Emulator, capsys: pytest.CaptureFixture[str]
):
    emu, world = unprotected, unprotected.world
    assert world is not None
    endpoint = emu.start_server(0)
    where = ["--endpoint", endpoint, "--region", emu.region]
    subnets = list(world.subnets.values())
    parameters = {
        "AppName": "demo",
        "VpcId": world.vpc_id,
        "EndpointSubnetIds": ",".join(subnets),
        "EndpointRouteTableIds": world.route_table_id,
    }

    # Before the stack exists, register says what to do instead of guessing names.
    register = ["register", "demo", "--instance", emu.primary_instance_id, "--target-group", world.target_group_arn]
    register += ["--efs", world.file_system_id, "--mount-point", "/srv/demo/shared", "--subnets", ",".join(subnets)]
    assert cli.main([*register, *where]) == 3
    assert "swr deploy" in capsys.readouterr().err

    deploy = ["deploy", "--yes", *where]
    for key, value in parameters.items():
        deploy += ["--parameter", f"{key}={value}"]
    assert cli.main(deploy) == 0
    deployed = capsys.readouterr().out
    assert "Add     FailoverStateMachine" in deployed and "stack swr: CREATE_COMPLETE" in deployed

    # A second deploy of the same template changes nothing.
    assert cli.main(deploy) == 0
    assert "no changes" in capsys.readouterr().out

    assert cli.main([*register, *where]) == 0
    registered = capsys.readouterr().out
    assert "wrote record demo" in registered and "associated instance profile" in registered

    assert cli.main(["drill", "demo", "--reason", "first drill", "--wait", *where]) == 0
    drilled = capsys.readouterr().out
    assert "SUCCEEDED" in drilled and "result: recovered" in drilled
    # The stack deployed through the guide carries the emulator's time warp: simulated seconds.
    assert "(simulated seconds from its start)" in drilled

    record = emu.store.require("demo")
    assert record.generation == 1 and record.current_instance_id != emu.primary_instance_id
    assert record.current_az != "ap-northeast-1a"
    assert_safe(emu)


def test_a_replacement_carries_the_tags_the_stack_scopes_its_permissions_by(emulator: Emulator):
    # The stack lets swr fence, deregister and terminate only what is tagged swr:app=<AppName>,
    # so a replacement that missed a tag could never be fenced in the next failover.
    emulator.inject("rms-fault")
    report = emulator.report(emulator.wait_for_failover())
    assert report["outcome"] == "recovered"
    new = report["new"]["instance_id"]
    ec2 = emulator.boto3_client("ec2")
    instance = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
    parts = [new, *(n["NetworkInterfaceId"] for n in instance["NetworkInterfaces"])]
    parts += [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"] if m.get("Ebs")]
    assert len(parts) >= 3, "expected the instance, an interface and a volume"
    for resource in parts:
        tags = {
            t["Key"]: t["Value"]
            for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
        }
        assert (tags.get("swr:app"), tags.get("swr:generation")) == ("demo", "1"), resource
    assert_safe(emulator)


def test_the_audit_trail_logs_every_write_to_the_application_record(emulator: Emulator):
    cloudtrail = emulator.boto3_client("cloudtrail")
    selectors = cloudtrail.get_event_selectors(TrailName="swr-audit")["AdvancedEventSelectors"]
    table_arn = emulator.boto3_client("dynamodb").describe_table(TableName=emulator.table_name)["Table"]["TableArn"]
    by_name = {s["Name"]: {f["Field"]: f["Equals"] for f in s["FieldSelectors"]} for s in selectors}
    assert by_name["Management events"] == {"eventCategory": ["Management"]}
    assert by_name["Writes to the application record"] == {
        "eventCategory": ["Data"],
        "resources.type": ["AWS::DynamoDB::Table"],
        "resources.ARN": [table_arn],
        "readOnly": ["false"],
    }


def test_every_command_finds_a_stack_of_another_name_and_prefix_by_its_name(
    unprotected: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    # The README tells a second application to deploy under its own NamePrefix: every command
    # then finds the state machine, table and the rest through --stack-name.
    emu, world = unprotected, unprotected.world
    assert world is not None
    where = ["--endpoint", emu.start_server(0), "--region", emu.region, "--stack-name", "swr-billing"]
    subnets = list(world.subnets.values())
    deploy = ["deploy", "--yes", *where, "--parameter", "NamePrefix=billing", "--parameter", "AppName=demo"]
    deploy += ["--parameter", f"VpcId={world.vpc_id}", "--parameter", f"EndpointSubnetIds={','.join(subnets)}"]
    deploy += ["--parameter", f"EndpointRouteTableIds={world.route_table_id}"]
    assert cli.main(deploy) == 0, capsys.readouterr().err
    register = ["register", "demo", "--instance", emu.primary_instance_id, "--target-group", world.target_group_arn]
    register += ["--efs", world.file_system_id, "--mount-point", "/srv/demo/shared", "--subnets", ",".join(subnets)]
    assert cli.main([*register, *where]) == 0, capsys.readouterr().err
    capsys.readouterr()

    def run(*argv: str) -> str:
        code = cli.main([*argv, *where])
        captured = capsys.readouterr()
        assert code == 0, (argv, captured.err)
        return captured.out

    assert "result: a drill would proceed" in run("drill", "demo", "--dry-run")
    assert "result: recovered" in run("drill", "demo", "--reason", "prefix", "--wait")
    (listed,) = [e for e in json.loads(run("executions", "demo", "--json")) if e["name"].startswith("drill-demo")]
    assert ":execution:billing-failover:" in listed["execution_arn"]
    assert "FinaliseFailover" in run("show", listed["name"])
    run("report", listed["name"], "--html", str(tmp_path / "drill.html"))
    (status,) = json.loads(run("status", "--json"))
    assert status["app"] == "demo" and status["stack"] == "swr-billing" and status["state"] == "NORMAL"
    assert json.loads(run("maintenance", "demo", "on", "--reason", "patching", "--json"))["changed"] is True
    assert json.loads(run("maintenance", "demo", "off", "--json"))["changed"] is True
    assert json.loads(run("resume", "demo", "--json"))["resumed"] is False  # nothing stopped
    refreshed = json.loads(run("ami", "refresh", "demo", "--json"))
    assert refreshed["image_id"] != refreshed["previous_image_id"]
    assert emu.boto3_client("dynamodb").get_item(TableName="billing-apps", Key={"app": {"S": "demo"}})["Item"]
    run("unregister", "demo")
    assert "Item" not in emu.boto3_client("dynamodb").get_item(TableName="billing-apps", Key={"app": {"S": "demo"}})
