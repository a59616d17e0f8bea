"""Rehearsing a drill (``swr drill APP --dry-run``) on the emulator: what a failover would do
now, the checks an operator acts on, and that a rehearsal changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.core.record import AppRecord, Maintenance
from swr import cli
from swr.emulator import Emulator
from swr.ops import rehearsal
from swr.ops.rehearsal import Rehearsal, Status

REGION = "ap-northeast-1"


def rehearse(emu: Emulator, *, force: bool = False) -> Rehearsal:
    assert emu.stack is not None
    return rehearsal.rehearse(emu.boto3_client, emu.stack, emu.app, force=force)


def check(found: Rehearsal, name: str) -> rehearsal.Check:
    return next(c for c in found.checks if c.name == name)


def change_record(emu: Emulator, **changes: Any) -> AppRecord:
    store = emu.store
    record = store.require(emu.app)
    return store.save(record.model_copy(update=changes))


def put_in_maintenance(emu: Emulator) -> None:
    since = datetime.now(UTC)
    change_record(emu, maintenance=Maintenance(since=since, by="ops@example", reason="patching the OS"))


def account_state(emu: Emulator) -> dict[str, Any]:
    """Everything a drill would change: the record, instances, tags, alarms, executions."""
    ec2, sfn = emu.boto3_client("ec2"), emu.boto3_client("stepfunctions")
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    return {
        "record": emu.boto3_client("dynamodb").get_item(TableName=emu.table_name, Key={"app": {"S": emu.app}})["Item"],
        "instances": sorted(
            (i["InstanceId"], i["State"]["Name"], tuple(g["GroupId"] for g in i["SecurityGroups"])) for i in instances
        ),
        "tags": sorted(json.dumps(t, sort_keys=True) for t in ec2.describe_tags()["Tags"]),
        "alarms": sorted(
            json.dumps([a["AlarmName"], a["Dimensions"]])
            for a in emu.boto3_client("cloudwatch").describe_alarms()["MetricAlarms"]
        ),
        "executions": sfn.list_executions(stateMachineArn=emu.state_machine_arn)["executions"],
        "targets": emu.boto3_client("elbv2").describe_target_health(TargetGroupArn=emu.world.target_group_arn)[  # type: ignore[union-attr]
            "TargetHealthDescriptions"
        ],
    }


def drill_dry_run(emu: Emulator, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    endpoint = emu.start_server(port=0)
    code = cli.main(["drill", emu.app, "--dry-run", *extra, "--endpoint", endpoint, "--region", REGION])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- a healthy application -------------------------------------------------------------------
def test_a_healthy_app_would_fail_over_to_the_next_az_and_the_rehearsal_changes_nothing(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
):
    before = account_state(emulator)

    code, out, err = drill_dry_run(emulator, capsys)

    assert (code, err) == (0, "")
    assert account_state(emulator) == before
    record = emulator.store.require(emulator.app)
    assert out.splitlines()[1] == "what would happen:"
    assert f"  1. Admit: take the lease of demo for generation {record.generation + 1}" in out
    assert f"Cut {record.current_instance_id} in ap-northeast-1a (running) off: deregister it from" in out
    assert "deny its addresses in the network ACLs of the mount targets' subnets" in out
    assert "Confirm the cut: every path to" in out and "otherwise fail closed after 600 s" in out
    assert "Launch a m6i.large in ap-northeast-1c" in out
    assert "then, if that has no capacity: m6i.large in ap-northeast-1d, m5.large in ap-northeast-1c" in out
    assert "result: a drill would proceed; every check passed" in out
    checks = [line for line in out.splitlines() if line.startswith("  ") and not line.lstrip()[0].isdigit()]
    assert checks and all(line.split()[0] == "ok" for line in checks), checks


def test_the_json_rehearsal_names_the_fence_the_launch_and_every_step_role_it_checked(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
):
    code, out, _ = drill_dry_run(emulator, capsys, "--json")

    found = json.loads(out)
    record = emulator.store.require(emulator.app)
    assert code == 0 and found["would_proceed"] is True
    assert found["admit"]["decision"] == "proceed"
    assert found["old_instance_id"] == record.current_instance_id
    assert found["blackhole_security_group_id"] == record.blackhole_security_group_id
    assert found["registered_in"] == record.target_group_arns
    assert found["run_request"]["ImageId"] == record.launch_spec.image_id
    assert found["run_request"]["SubnetId"] == record.subnets_in("ap-northeast-1c")[0]
    assert {"ap-northeast-1c", "ap-northeast-1d"} <= set(found["efs_mount_targets"])
    roles = {c["name"] for c in found["checks"] if c["name"].startswith("permissions ")}
    assert {
        "permissions Admit",
        "permissions CutOffInstances",
        "permissions ConfirmFence",
        "permissions RegisterTargets",
        "permissions LaunchReplacement",
        "permissions ReleaseFences/ReleaseOldFences",
        "permissions RollbackReplacement",
    } <= roles


# --- what would stop a drill --------------------------------------------------------------------
def test_an_app_in_maintenance_is_turned_away_unless_the_drill_is_forced(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
):
    put_in_maintenance(emulator)
    before = account_state(emulator)

    refused = rehearse(emulator)
    forced = rehearse(emulator, force=True)
    code, out, _ = drill_dry_run(emulator, capsys)

    assert not refused.admit.proceeds and "maintenance mode" in refused.admit.reason
    assert refused.admit_with_force is not None and refused.admit_with_force.proceeds
    assert not refused.would_proceed
    assert forced.admit.proceeds and forced.would_proceed
    assert code == 1
    assert "result: a drill would be turned away: application 'demo' is in maintenance mode" in out
    assert "with --force it would proceed" in out
    assert account_state(emulator) == before


def test_a_deregistered_ami_is_a_problem_that_says_how_to_fix_it(emulator: Emulator):
    record = emulator.store.require(emulator.app)
    emulator.boto3_client("ec2").deregister_image(ImageId=record.launch_spec.image_id)

    found = rehearse(emulator)

    assert found.admit.proceeds and not found.would_proceed
    ami = check(found, "ami")
    assert ami.status is Status.PROBLEM
    assert record.launch_spec.image_id in ami.detail and "swr ami refresh demo" in ami.detail


def test_no_efs_mount_target_in_the_target_az_is_a_problem(emulator: Emulator):
    efs = emulator.boto3_client("efs")
    record = emulator.store.require(emulator.app)
    targets = efs.describe_mount_targets(FileSystemId=record.efs.file_system_id)["MountTargets"]
    in_1c = next(t for t in targets if t["AvailabilityZoneName"] == "ap-northeast-1c")
    efs.delete_mount_target(MountTargetId=in_1c["MountTargetId"])
    emulator.clock.sleep(emulator.latency.mount_target_deletion + 2)  # "deleting" until it is gone

    found = rehearse(emulator)

    assert not found.would_proceed
    assert check(found, "efs mount target ap-northeast-1c").status is Status.PROBLEM
    assert "no mount target in ap-northeast-1c" in check(found, "efs mount target ap-northeast-1c").detail
    assert check(found, "efs mount target ap-northeast-1d").status is Status.OK
    assert "through no mount target" in found.steps()[4]


def test_an_instance_type_not_offered_in_the_first_az_moves_the_launch_to_the_next_candidate(emulator: Emulator):
    record = emulator.store.require(emulator.app)
    # a1.large is offered in ap-northeast-1a and 1d, not in 1c (the first AZ after the failed 1a).
    change_record(
        emulator, launch_spec=record.launch_spec.model_copy(update={"instance_types": ["a1.large", "m5.large"]})
    )

    found = rehearse(emulator)

    assert [(c.instance_type, c.az, c.usable) for c in found.candidates] == [
        ("a1.large", "ap-northeast-1c", False),
        ("a1.large", "ap-northeast-1d", True),
        ("m5.large", "ap-northeast-1c", True),
        ("m5.large", "ap-northeast-1d", True),
    ]
    assert found.candidates[0].note == "a1.large is not offered in ap-northeast-1c"
    assert found.first_choice is not None and (found.first_choice.az, found.first_choice.instance_type) == (
        "ap-northeast-1d",
        "a1.large",
    )
    assert found.run_request["SubnetId"] == record.subnets_in("ap-northeast-1d")[0]
    launch = check(found, "launch candidates")
    assert launch.status is Status.WARNING and "not offered in ap-northeast-1c" in launch.detail
    assert found.would_proceed  # launch skips an unoffered type by itself


def test_a_step_role_missing_a_permission_is_named_with_the_action(emulator: Emulator):
    iam, lambda_ = emulator.boto3_client("iam"), emulator.boto3_client("lambda")
    role = lambda_.get_function_configuration(FunctionName="swr-cut-off-instances")["Role"].rsplit("/", 1)[-1]
    fence_policy = next(
        p["PolicyArn"]
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        if "FenceInstancePolicy" in p["PolicyName"]
    )
    iam.detach_role_policy(RoleName=role, PolicyArn=fence_policy)

    found = rehearse(emulator)

    cut_off = check(found, "permissions CutOffInstances")
    assert cut_off.status is Status.PROBLEM
    assert f"role {role} may not" in cut_off.detail
    assert all(
        action in cut_off.detail
        for action in (
            "ec2:ModifyNetworkInterfaceAttribute",
            "elasticloadbalancing:DeregisterTargets",
            "ec2:CreateNetworkAclEntry",
            "ec2:StopInstances",
        )
    )
    # ConfirmFence has its own read-only policy: only the role that lost its policy is a problem.
    assert check(found, "permissions ConfirmFence").status is Status.OK
    assert not found.would_proceed


def test_an_interface_without_the_app_tag_could_not_be_fenced(emulator: Emulator):
    record = emulator.store.require(emulator.app)
    ec2 = emulator.boto3_client("ec2")
    instance = ec2.describe_instances(InstanceIds=[record.current_instance_id])["Reservations"][0]["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.delete_tags(Resources=[eni], Tags=[{"Key": "swr:app"}])

    found = rehearse(emulator)

    cut_off = check(found, "permissions CutOffInstances")
    assert cut_off.status is Status.PROBLEM
    assert f"ec2:ModifyNetworkInterfaceAttribute on arn:aws:ec2:{REGION}:" in cut_off.detail
    assert eni in cut_off.detail and "it has no swr:app tag" in cut_off.detail


# --- the layout the fence relies on -------------------------------------------------------------
def fence_warnings(found: Rehearsal) -> dict[str, str]:
    return {c.name: c.detail for c in found.checks if c.name.startswith("fence: ")}


def test_a_layout_that_leaves_the_fence_only_the_power_off_is_reported_with_the_fix(emulator: Emulator):
    record = emulator.store.require(emulator.app)
    assert fence_warnings(rehearse(emulator)) == {}  # the demo account is laid out for the fence
    ec2, elb = emulator.boto3_client("ec2"), emulator.boto3_client("elbv2")
    world = emulator.world
    assert world is not None
    elb.modify_target_group_attributes(
        TargetGroupArn=world.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.connection_termination.enabled", "Value": "false"}],
    )
    eni = ec2.describe_instances(InstanceIds=[record.current_instance_id])["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"
    ][0]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni, ConnectionTrackingSpecification={"TcpEstablishedTimeout": 432000}
    )
    acl = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [world.data_subnets["ap-northeast-1c"]]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    for number in range(200, 218):  # the ACL full inbound: 18 rules beside 100 and the default deny
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=number,
            Protocol="6",
            RuleAction="allow",
            Egress=False,
            CidrBlock="10.99.0.0/16",
            PortRange={"From": number, "To": number},
        )
    before = account_state(emulator)

    found = rehearse(emulator)

    warnings = fence_warnings(found)
    group = warnings["fence: target group demo-app"]
    assert "keeps the established connections of a deregistered target" in group
    assert "Key=deregistration_delay.connection_termination.enabled,Value=true" in group
    assert "432000 s (the default, 5 days)" in warnings[f"fence: network interface {eni}"]
    assert "TcpEstablishedTimeout=600" in warnings[f"fence: network interface {eni}"]
    room = warnings[f"fence: network ACL {acl}"]
    assert "has 20 inbound rules of 20: no room for the fence's deny entries" in room and "up to 40" in room
    # Warnings, not problems: the fence still fails closed rather than unsafe, and a drill proceeds.
    assert found.would_proceed
    assert account_state(emulator) == before


def test_a_mount_target_in_the_instances_subnet_is_reported_and_the_rehearsal_says_it_would_be_deleted():
    with Emulator.for_scenario("shared-subnet") as emu:
        record = emu.store.require(emu.app)
        shared = next(
            t["MountTargetId"]
            for t in emu.boto3_client("efs").describe_mount_targets(FileSystemId=record.efs.file_system_id)[
                "MountTargets"
            ]
            if t["AvailabilityZoneName"] == record.current_az
        )

        found = rehearse(emu)

        detail = fence_warnings(found)[f"fence: mount target {shared}"]
        assert f"shares subnet {emu.instance(record.current_instance_id).subnet_id} with" in detail
        assert "Fix: give the mount target a subnet of its own in ap-northeast-1a" in detail
        assert f"delete mount target {shared} (it shares the instance's subnet)" in found.steps()[1]


# --- bad input ----------------------------------------------------------------------------------
def test_an_unknown_app_or_waiting_on_a_dry_run_is_bad_input(emulator: Emulator, capsys: pytest.CaptureFixture[str]):
    endpoint = emulator.start_server(port=0)
    where = ["--endpoint", endpoint, "--region", REGION]

    unknown = cli.main(["drill", "nosuchapp", "--dry-run", *where])
    unknown_err = capsys.readouterr().err
    waiting = cli.main(["drill", emulator.app, "--dry-run", "--wait", *where])
    waiting_err = capsys.readouterr().err

    assert unknown == 2 and "application 'nosuchapp' has no record" in unknown_err
    assert waiting == 2 and "nothing to --wait for" in waiting_err
    assert emulator.executions() == []


# --- least privilege: every statement a step role has is one the failover needs ------------------
# What the Lambda runtime uses, not the failover: a step without them runs and fails over alike.
NOT_FOR_THE_FAILOVER = {
    ("logs:CreateLogStream", "logs:PutLogEvents"),
    ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
}


NOTHING = {"Effect": "Allow", "Action": "none:Nothing", "Resource": "*"}


def _permission_problems(emu: Emulator) -> list[str]:
    return [c.name for c in rehearse(emu).checks if c.name.startswith("permissions ") and c.status is Status.PROBLEM]


def _each_statement_removed(emu: Emulator) -> Any:
    """Yield (where, actions) with that one Allow statement removed from the deployed step role's
    inline or managed policy (put back after)."""
    iam, lambda_ = emu.boto3_client("iam"), emu.boto3_client("lambda")
    functions = [f for f in lambda_.list_functions()["Functions"] if f["FunctionName"].startswith("swr-")]
    managed_seen: set[str] = set()
    for function in sorted(functions, key=lambda f: f["FunctionName"]):
        role = function["Role"].rsplit("/", 1)[-1]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for index, statement in enumerate(document["Statement"]):
                rest = [s for n, s in enumerate(document["Statement"]) if n != index]
                if rest:
                    iam.put_role_policy(
                        RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document | {"Statement": rest})
                    )
                else:
                    iam.delete_role_policy(RoleName=role, PolicyName=name)
                yield f"{function['FunctionName']} {name}[{index}]", statement
                iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            if arn in managed_seen:
                continue
            managed_seen.add(arn)
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            for index, statement in enumerate(document["Statement"]):
                # A policy needs a statement: one that grants nothing stands in for the last.
                rest = [s for n, s in enumerate(document["Statement"]) if n != index] or [NOTHING]
                trimmed = iam.create_policy_version(
                    PolicyArn=arn, PolicyDocument=json.dumps(document | {"Statement": rest}), SetAsDefault=True
                )["PolicyVersion"]["VersionId"]
                yield f"{attached['PolicyName'].split('-')[1]}[{index}]", statement
                iam.set_default_policy_version(PolicyArn=arn, VersionId=version)
                iam.delete_policy_version(PolicyArn=arn, VersionId=trimmed)


def _actions(statement: dict[str, Any]) -> tuple[str, ...]:
    action = statement["Action"]
    return tuple(action) if isinstance(action, list) else (action,)


def test_removing_any_statement_from_a_step_role_is_named_by_the_rehearsal(emulator: Emulator):
    assert _permission_problems(emulator) == []
    caught, unneeded = 0, []
    for where, statement in _each_statement_removed(emulator):
        if statement["Effect"] != "Allow" or _actions(statement) in NOT_FOR_THE_FAILOVER:
            continue
        if _permission_problems(emulator):
            caught += 1
        else:
            unneeded.append(f"{where} {_actions(statement)}")
    # Only the shared-subnet layout needs the mount target's deletion (the next test), and only
    # an instance launched with a key pair the key-pair statement (the demo's has none).
    assert unneeded == [
        "FenceInstancePolicy[7] ('elasticfilesystem:DeleteMountTarget',)",
        "FenceInstancePolicy[8] ('ec2:DeleteNetworkInterface',)",
        "swr-launch-replacement launch-replacement[7] ('ec2:RunInstances',)",
    ]
    assert caught > 30  # the loop went through the roles (38 statements today)
    assert _permission_problems(emulator) == []  # every statement was put back


def test_with_a_mount_target_in_the_instances_subnet_deleting_it_is_needed_too():
    deleting = {("elasticfilesystem:DeleteMountTarget",), ("ec2:DeleteNetworkInterface",)}
    with Emulator.for_scenario("shared-subnet") as emu:
        named = {
            _actions(statement): _permission_problems(emu)
            for _, statement in _each_statement_removed(emu)
            if _actions(statement) in deleting
        }
    assert named == {actions: ["permissions CutOffInstances"] for actions in deleting}
