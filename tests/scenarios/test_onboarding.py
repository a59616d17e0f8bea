"""Onboarding, as an operator does it: register a second application on the emulator's
world, see every mistake refused with nothing written, unregister, refresh the AMI; and the
same through ``swr register`` / ``swr unregister`` / ``swr ami refresh``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from handlers.core.record import AppState
from swr import cli
from swr.emulator import Emulator
from swr.ops import onboarding
from swr.ops.onboarding import Registration, RegistrationFailed, RegistrationInvalid, validate
from swr.stack import StackOutputs

APP = "billing"
STACK_NAME = "swr-onboarding-test"  # not "swr": the emulator may deploy its own stack under that name


def stack_outputs(emu: Emulator, protected_group_id: str, app: str = APP) -> StackOutputs:
    """The outputs a stack deployed for ``app`` would give, from the emulator's world; the
    outputs onboarding does not use get placeholders."""
    world = emu.world
    assert world is not None
    known = {
        "AppName": app,
        "RecordTableName": emu.table_name,
        "BlackholeSecurityGroupId": world.blackhole_security_group_id,
        "ProtectedInstanceSecurityGroupId": protected_group_id,
        "InstanceProfileArn": world.instance_profile_arn,
        "MetricNamespace": "swr",
        "AlarmNamePrefix": "swr-",
        # A stack without the EC2 rules swr points (one deployed before they existed).
        "InstanceWatchRuleName": "",
        "FenceReleaseRuleName": "",
    }
    placeholders = {name: f"placeholder-{name}" for name in StackOutputs.model_fields if name not in known}
    return StackOutputs.model_validate(placeholders | known)


def deploy_outputs(emu: Emulator, stack: StackOutputs, name: str = STACK_NAME) -> None:
    """A CloudFormation stack with these outputs, for the CLI to read as it reads the real one."""
    template = {
        # CloudFormation wants one resource; an SSM parameter is the cheapest moto creates.
        "Resources": {
            "Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": name, "Type": "String", "Value": "x"}}
        },
        "Outputs": {key: {"Value": value} for key, value in stack.model_dump().items()},
    }
    emu.boto3_client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@dataclass
class Onboarding:
    emu: Emulator
    stack: StackOutputs
    instance_id: str  # freshly launched, not yet protected
    subnets: dict[str, str]  # az -> subnet
    target_group_arn: str
    file_system_id: str
    app_group_id: str

    def client(self, service: str) -> Any:
        return self.emu.boto3_client(service)

    def registration(self, **changes: Any) -> Registration:
        values: dict[str, Any] = {
            "app": APP,
            "instance_id": self.instance_id,
            "target_group_arns": [self.target_group_arn],
            "file_system_id": self.file_system_id,
            "mount_point": "/srv/billing",
            "subnet_ids": [self.subnets[az] for az in ("ap-northeast-1c", "ap-northeast-1d", "ap-northeast-1a")],
            "extra_instance_types": ["m5.large"],
        }
        return Registration(**(values | changes))

    def launch(self, *, image_id: str | None = None, profile: bool = False) -> str:
        world = self.emu.world
        assert world is not None
        request: dict[str, Any] = {
            "ImageId": image_id or world.image_id,
            "InstanceType": "t3.small",
            "MinCount": 1,
            "MaxCount": 1,
            "SubnetId": self.subnets["ap-northeast-1c"],
            "SecurityGroupIds": [self.app_group_id],
            "KeyName": "billing-ops",
            "UserData": "#!/bin/bash\nsystemctl start billing\n",
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": "billing-app"}, {"Key": "Owner", "Value": "finance"}],
                }
            ],
        }
        if profile:
            request["IamInstanceProfile"] = {"Arn": world.instance_profile_arn}
        return str(self.client("ec2").run_instances(**request)["Instances"][0]["InstanceId"])


@pytest.fixture
def onboard(emulator: Emulator) -> Iterator[Onboarding]:
    world = emulator.world
    assert world is not None
    ec2 = emulator.boto3_client("ec2")
    protected = ec2.create_security_group(
        GroupName="billing-protected-instance", Description="reaches swr's endpoints", VpcId=world.vpc_id
    )["GroupId"]
    target_group = emulator.boto3_client("elbv2").create_target_group(
        Name="billing-app", Protocol="TCP", Port=9090, VpcId=world.vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    efs = emulator.boto3_client("efs")
    file_system = efs.create_file_system(CreationToken="billing-data", Encrypted=True)["FileSystemId"]
    for subnet in world.data_subnets.values():
        efs.create_mount_target(FileSystemId=file_system, SubnetId=subnet)
    setup = Onboarding(
        emu=emulator,
        stack=stack_outputs(emulator, protected),
        instance_id="",
        subnets=dict(world.subnets),
        target_group_arn=target_group,
        file_system_id=file_system,
        app_group_id=world.app_security_group_id,
    )
    setup.instance_id = setup.launch()  # no instance profile: registration associates the stack's
    yield setup


def tags_of(ec2: Any, resource: str) -> dict[str, str]:
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def instance_of(ec2: Any, instance_id: str) -> dict[str, Any]:
    return dict(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


def snapshot(setup: Onboarding, instance_id: str | None = None) -> dict[str, Any]:
    """Everything registration could change, to show that a refused one changed nothing."""
    emu, ec2 = setup.emu, setup.client("ec2")
    table = emu.boto3_client("dynamodb").scan(TableName=emu.table_name)["Items"]
    state: dict[str, Any] = {
        "records": sorted(json.dumps(item, sort_keys=True) for item in table),
        "alarms": sorted(a["AlarmName"] for a in setup.client("cloudwatch").describe_alarms()["MetricAlarms"]),
        "subnet_tags": {s: tags_of(ec2, s) for s in setup.subnets.values()},
        "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
        "target_group_tags": setup.client("elbv2").describe_tags(ResourceArns=[setup.target_group_arn])[
            "TagDescriptions"
        ],
        "file_system_tags": [fs.get("Tags") for fs in setup.client("efs").describe_file_systems()["FileSystems"]],
        "profiles": sorted(
            a["InstanceId"] for a in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
        ),
        "launch_tags": {r: tags_of(ec2, r).get("swr:apps") for r in (emu.world.image_id, setup.app_group_id)},  # type: ignore[union-attr]
    }
    instance_id = instance_id or setup.instance_id
    found = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Reservations"]
    if found:
        instance = found[0]["Instances"][0]
        resources = [
            instance_id,
            *(n["NetworkInterfaceId"] for n in instance["NetworkInterfaces"]),
            *(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]),
        ]
        state["instance_tags"] = {r: tags_of(ec2, r) for r in resources}
        state["groups"] = [[g["GroupId"] for g in n["Groups"]] for n in instance["NetworkInterfaces"]]
    return state


def refused(setup: Onboarding, registration: Registration, instance_id: str | None = None) -> list[str]:
    """Register, expect a refusal, check nothing changed; the problems reported."""
    before = snapshot(setup, instance_id)
    with pytest.raises(RegistrationInvalid) as caught:
        onboarding.register(setup.client, setup.stack, registration)
    assert snapshot(setup, instance_id) == before
    message = str(caught.value)
    for problem in caught.value.problems:
        assert f"\n  - {problem}" in message  # each problem on its own line
    return caught.value.problems


# --- register ------------------------------------------------------------------------------
def test_registering_a_second_app_records_the_instance_and_protects_it(onboard: Onboarding):
    ec2, stack = onboard.client("ec2"), onboard.stack

    result = onboarding.register(onboard.client, stack, onboard.registration())

    record = onboard.emu.store.require(APP)
    assert record == result.record and record.version == 1
    world = onboard.emu.world
    assert world is not None
    spec = record.launch_spec
    assert spec.image_id == world.image_id
    assert spec.instance_types == ["t3.small", "m5.large"]
    assert spec.security_group_ids == [onboard.app_group_id, stack.ProtectedInstanceSecurityGroupId]
    assert spec.instance_profile_arn == stack.InstanceProfileArn
    assert spec.key_name == "billing-ops"
    assert spec.user_data == "#!/bin/bash\nsystemctl start billing\n"
    assert spec.tags == {"Name": "billing-app", "Owner": "finance"}
    assert [(c.az, c.subnet_id) for c in record.subnets] == [
        (az, onboard.subnets[az]) for az in ("ap-northeast-1c", "ap-northeast-1d", "ap-northeast-1a")
    ]
    assert record.current_instance_id == onboard.instance_id and record.current_az == "ap-northeast-1c"
    assert record.generation == 0 and record.state is AppState.NORMAL
    assert record.efs.file_system_id == onboard.file_system_id and record.efs.mount_point == "/srv/billing"
    assert record.target_group_arns == [onboard.target_group_arn]
    assert record.blackhole_security_group_id == stack.BlackholeSecurityGroupId

    # The instance, its interface and its volume carry the tags the fence and the triggers go by.
    instance = instance_of(ec2, onboard.instance_id)
    interface = instance["NetworkInterfaces"][0]
    for resource in (
        onboard.instance_id,
        interface["NetworkInterfaceId"],
        instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"],
    ):
        assert tags_of(ec2, resource).items() >= {"swr:app": APP, "swr:generation": "0"}.items(), resource
    assert sorted(g["GroupId"] for g in interface["Groups"]) == sorted(spec.security_group_ids)
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [onboard.instance_id]}]
    )["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"] for a in associations] == [stack.InstanceProfileArn]
    for subnet in onboard.subnets.values():
        # the seeded demo application shares the subnets: each application has its own key
        assert tags_of(ec2, subnet) == {"swr:app:demo": "allowed", "swr:app:billing": "allowed"}
    described = onboard.client("elbv2").describe_tags(ResourceArns=[onboard.target_group_arn])["TagDescriptions"]
    assert described[0]["Tags"] == [{"Key": "swr:app", "Value": APP}]
    # The fence deletes and creates a mount target only of a file system tagged with its application.
    efs_tags = onboard.client("efs").describe_file_systems(FileSystemId=onboard.file_system_id)["FileSystems"][0]
    assert efs_tags["Tags"] == [{"Key": "swr:app", "Value": APP}]
    # What the fence will meet in the layout, with the fix: this target group keeps a deregistered
    # target's connections, and the interface tracks idle connections for 5 days.
    warnings = "\n".join(result.warnings)
    assert "target group billing-app: keeps the established connections of a deregistered target" in warnings
    assert f"network interface {interface['NetworkInterfaceId']}: tracks an idle established TCP" in warnings

    alarms = onboard.client("cloudwatch").describe_alarms(AlarmNames=record.alarm_names)["MetricAlarms"]
    by_name = {a["AlarmName"]: a for a in alarms}
    assert (
        sorted(by_name)
        == sorted(record.alarm_names)
        == [
            "swr-billing-StatusCheckFailed_Instance",
            "swr-billing-StatusCheckFailed_System",
            "swr-billing-heartbeat-missing",
        ]
    )
    for metric in ("StatusCheckFailed_Instance", "StatusCheckFailed_System"):
        alarm = by_name[f"swr-billing-{metric}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/EC2", metric)
        assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": onboard.instance_id}]
    heartbeat = by_name["swr-billing-heartbeat-missing"]
    assert (heartbeat["Namespace"], heartbeat["MetricName"]) == ("swr", "Heartbeat")
    assert heartbeat["Dimensions"] == [{"Name": "App", "Value": APP}]
    assert heartbeat["TreatMissingData"] == "breaching"

    assert result.actions[-1] == "wrote record billing (generation 0, AZ ap-northeast-1c)"
    assert "created alarm swr-billing-heartbeat-missing" in result.actions
    # The application that was there is untouched.
    assert onboard.emu.store.require(onboard.emu.app).version == 1


def test_register_with_create_ami_records_a_new_image_of_the_instance(onboard: Onboarding):
    ec2 = onboard.client("ec2")

    result = onboarding.register(onboard.client, onboard.stack, onboard.registration(create_ami=True))

    image_id = onboard.emu.store.require(APP).launch_spec.image_id
    assert image_id == result.created_image_id
    world = onboard.emu.world
    assert world is not None and image_id != world.image_id
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "available" and image["Name"].startswith("billing-swr-")
    assert {"Key": "swr:app", "Value": APP} in image["Tags"]
    assert result.actions[0] == f"created image {image_id} from {onboard.instance_id}"


def test_an_instance_with_the_stack_profile_keeps_its_association(onboard: Onboarding):
    instance_id = onboard.launch(profile=True)

    result = onboarding.register(onboard.client, onboard.stack, onboard.registration(instance_id=instance_id))

    assert not any("instance profile" in line for line in result.actions)
    assert onboard.emu.store.require(APP).launch_spec.instance_profile_arn == onboard.stack.InstanceProfileArn


# --- validation ----------------------------------------------------------------------------
def test_subnets_in_one_az_are_refused(onboard: Onboarding):
    world = onboard.emu.world
    assert world is not None
    second = onboard.client("ec2").create_subnet(
        VpcId=world.vpc_id, CidrBlock="10.20.20.0/24", AvailabilityZone="ap-northeast-1c"
    )["Subnet"]["SubnetId"]

    problems = refused(onboard, onboard.registration(subnet_ids=[onboard.subnets["ap-northeast-1c"], second]))

    assert len(problems) == 1
    assert "all in ap-northeast-1c" in problems[0] and "at least two AZs" in problems[0]


def test_an_efs_without_a_mount_target_in_a_chosen_az_is_refused(onboard: Onboarding):
    efs = onboard.client("efs")
    other = efs.create_file_system(CreationToken="billing-data-2")["FileSystemId"]
    efs.create_mount_target(FileSystemId=other, SubnetId=onboard.subnets["ap-northeast-1a"])

    problems = refused(onboard, onboard.registration(file_system_id=other))

    assert problems == [
        f"EFS file system {other} has no mount target in ap-northeast-1c, ap-northeast-1d: a replacement there "
        "could not mount its data; create one in each of these AZs (aws efs create-mount-target)"
    ]


def test_a_target_group_in_another_vpc_is_refused(onboard: Onboarding):
    ec2 = onboard.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    group = onboard.client("elbv2").create_target_group(
        Name="billing-elsewhere", Protocol="TCP", Port=8080, VpcId=other_vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]

    problems = refused(onboard, onboard.registration(target_group_arns=[group]))

    world = onboard.emu.world
    assert world is not None
    assert problems == [f"target group billing-elsewhere is in {other_vpc}, not in the instance's {world.vpc_id}"]


def test_an_instance_whose_ami_is_gone_is_refused_unless_an_ami_is_created(onboard: Onboarding):
    ec2 = onboard.client("ec2")
    image = ec2.register_image(Name="billing-old", Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
    instance_id = onboard.launch(image_id=image)
    ec2.deregister_image(ImageId=image)

    problems = refused(onboard, onboard.registration(instance_id=instance_id), instance_id)

    assert problems == [f"the instance's AMI {image} does not exist any more: pass --create-ami to make one from it"]
    result = onboarding.register(
        onboard.client, onboard.stack, onboard.registration(instance_id=instance_id, create_ami=True)
    )
    assert result.record.launch_spec.image_id == result.created_image_id != image


def test_an_unknown_instance_is_refused(onboard: Onboarding):
    problems = refused(onboard, onboard.registration(instance_id="i-0123456789abcdef0"))

    assert problems == ["instance i-0123456789abcdef0 does not exist"]


def test_an_app_already_registered_is_refused(onboard: Onboarding):
    demo = onboard.emu.app
    onboard.stack = onboard.stack.model_copy(update={"AppName": demo})

    problems = refused(onboard, onboard.registration(app=demo))

    assert problems == [
        f"application {demo!r} is already registered (table {onboard.emu.table_name}): "
        f"run `swr unregister {demo}` first to register it again"
    ]


def test_several_problems_are_reported_together(onboard: Onboarding):
    ec2, iam = onboard.client("ec2"), onboard.client("iam")
    other_vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    foreign = onboard.client("elbv2").create_target_group(
        Name="billing-ip", Protocol="TCP", Port=8080, VpcId=other_vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    other_profile = iam.create_instance_profile(InstanceProfileName="someone-else")["InstanceProfile"]["Arn"]
    ec2.associate_iam_instance_profile(InstanceId=onboard.instance_id, IamInstanceProfile={"Arn": other_profile})
    before = snapshot(onboard)

    problems = refused(
        onboard,
        onboard.registration(
            subnet_ids=[onboard.subnets["ap-northeast-1a"], "subnet-0000000000000000f"],
            target_group_arns=[foreign, onboard.target_group_arn.replace("billing-app", "no-such-group")],
            file_system_id="fs-00000000",
        ),
    )

    assert snapshot(onboard) == before
    text = "\n".join(problems)
    assert "subnet subnet-0000000000000000f does not exist" in text
    assert "the subnets are all in ap-northeast-1a" in text
    assert "EFS file system fs-00000000 does not exist" in text
    assert f"target group billing-ip is in {other_vpc}" in text
    assert "target group billing-ip has target type ip" in text
    assert "no-such-group" in text and "does not exist" in text
    assert f"has instance profile {other_profile}, not the stack's" in text
    assert len(problems) == 7


def test_the_instance_or_target_group_of_another_app_is_refused(onboard: Onboarding):
    primary = onboard.emu.primary_instance_id
    onboard.client("elbv2").add_tags(
        ResourceArns=[onboard.target_group_arn], Tags=[{"Key": "swr:app", "Value": "demo"}]
    )

    world = onboard.emu.world
    assert world is not None

    problems = refused(onboard, onboard.registration(instance_id=primary, file_system_id=world.file_system_id), primary)

    assert problems == [
        f"EFS file system {world.file_system_id} is tagged swr:app=demo: it belongs to another application",
        "target group billing-app is tagged swr:app=demo: it belongs to another application",
        f"instance {primary} is tagged swr:app=demo: it belongs to another application",
    ]


def test_a_stack_for_another_app_is_refused(onboard: Onboarding):
    onboard.stack = onboard.stack.model_copy(update={"AppName": "payroll"})

    problems = refused(onboard, onboard.registration())

    assert problems == ["the stack protects 'payroll', not 'billing': deploy a stack for billing (another NamePrefix)"]


def test_a_failure_midway_undoes_everything_registration_did(onboard: Onboarding):
    denied = ("AccessDenied", "User is not authorized to perform: cloudwatch:PutMetricAlarm", 403)
    onboard.emu.faults.add(
        "cloudwatch", "PutMetricAlarm", denied, where=lambda p: str(p.get("AlarmName")).endswith("heartbeat-missing")
    )
    before = snapshot(onboard)

    with pytest.raises(RegistrationFailed) as caught:
        onboarding.register(onboard.client, onboard.stack, onboard.registration(create_ami=True))

    assert "failed at 'create the alarms'" in str(caught.value) and "AccessDenied" in str(caught.value)
    assert "nothing is left half-registered" in str(caught.value)
    after = snapshot(onboard)
    # The status-check alarms made before the failure, the image, the tags, the security
    # group and the profile association: all gone again.
    assert after == before


def test_a_registration_that_loses_the_race_for_the_record_is_undone(
    onboard: Onboarding, monkeypatch: pytest.MonkeyPatch
):
    from handlers.core.record_store import RecordStore

    original = RecordStore.create

    def someone_else_first(self: RecordStore, record: Any) -> Any:
        original(self, record.model_copy(update={"current_instance_id": "i-someoneelse"}))
        return original(self, record)

    before = snapshot(onboard)
    monkeypatch.setattr(RecordStore, "create", someone_else_first)

    with pytest.raises(RegistrationFailed, match="registered by someone else meanwhile"):
        onboarding.register(onboard.client, onboard.stack, onboard.registration())

    after = snapshot(onboard)
    assert onboard.emu.store.require(APP).current_instance_id == "i-someoneelse"
    assert after["alarms"] == before["alarms"] and after["instance_tags"] == before["instance_tags"]


# --- unregister ----------------------------------------------------------------------------
def test_unregister_removes_the_alarms_the_record_and_its_tags(onboard: Onboarding):
    ec2 = onboard.client("ec2")
    world = onboard.emu.world
    assert world is not None
    # Another application relies on one of the same subnets: its tag there must survive.
    shared = world.subnets["ap-northeast-1a"]
    ec2.create_tags(Resources=[shared], Tags=[{"Key": "swr:app:payroll", "Value": "allowed"}])
    onboarding.register(onboard.client, onboard.stack, onboard.registration())

    result = onboarding.unregister(onboard.client, onboard.stack, APP)

    assert result.leftovers == []
    assert onboard.emu.store.get(APP) is None
    names = [
        a["AlarmName"]
        for a in onboard.client("cloudwatch").describe_alarms(AlarmNamePrefix="swr-billing-")["MetricAlarms"]
    ]
    assert names == []
    assert tags_of(ec2, shared) == {"swr:app:demo": "allowed", "swr:app:payroll": "allowed"}
    for az in ("ap-northeast-1c", "ap-northeast-1d"):
        assert tags_of(ec2, world.subnets[az]) == {"swr:app:demo": "allowed"}
    assert "swr:app" not in tags_of(ec2, onboard.instance_id)
    described = onboard.client("elbv2").describe_tags(ResourceArns=[onboard.target_group_arn])["TagDescriptions"]
    assert described[0]["Tags"] == []
    efs = onboard.client("efs").describe_file_systems(FileSystemId=onboard.file_system_id)["FileSystems"][0]
    assert efs.get("Tags", []) == []
    assert "deleted alarm swr-billing-heartbeat-missing" in result.actions
    # The demo application is untouched.
    assert onboard.emu.store.require(onboard.emu.app).version == 1
    assert len(onboard.client("cloudwatch").describe_alarms(AlarmNamePrefix="swr-demo-")["MetricAlarms"]) == 3


def test_register_marks_the_ami_and_groups_for_launches_and_unregister_takes_only_its_own_mark(
    onboard: Onboarding,
):
    # The demo application already launches from the same AMI and group: both are listed.
    ec2, world = onboard.client("ec2"), onboard.emu.world
    assert world is not None
    assert tags_of(ec2, world.image_id)["swr:apps"] == "demo"

    result = onboarding.register(onboard.client, onboard.stack, onboard.registration())

    assert tags_of(ec2, world.image_id)["swr:apps"] == "demo billing"
    assert tags_of(ec2, onboard.app_group_id)["swr:apps"] == "demo billing"
    assert any("for launches of billing (swr:apps)" in action for action in result.actions)
    onboarding.unregister(onboard.client, onboard.stack, APP)
    assert tags_of(ec2, world.image_id)["swr:apps"] == tags_of(ec2, onboard.app_group_id)["swr:apps"] == "demo"


def test_an_ami_of_another_account_is_refused():
    # A shared or Marketplace AMI cannot be marked (tagged) for the application by this account.
    class Ec2:
        def describe_images(self, ImageIds: list[str]) -> dict[str, Any]:
            return {"Images": [{"ImageId": ImageIds[0], "State": "available", "OwnerId": "679593333241"}]}

    problems: list[str] = []
    validate._check_image(Ec2(), "ami-0shared", "123456789012", problems)

    assert problems == [
        "the instance's AMI ami-0shared belongs to account 679593333241: replacements launch only from an AMI of"
        " this account marked for the application; pass --create-ami to make one from the instance"
    ]


def test_unregister_refuses_while_a_failover_runs_unless_forced(onboard: Onboarding):
    onboarding.register(onboard.client, onboard.stack, onboard.registration())
    store = onboard.emu.store
    store.save(store.require(APP).model_copy(update={"state": AppState.SWITCHING}))

    with pytest.raises(onboarding.FailoverInProgress, match="failover of billing is running"):
        onboarding.unregister(onboard.client, onboard.stack, APP)
    assert store.require(APP).state is AppState.SWITCHING
    assert len(onboard.client("cloudwatch").describe_alarms(AlarmNamePrefix="swr-billing-")["MetricAlarms"]) == 3

    onboarding.unregister(onboard.client, onboard.stack, APP, force=True)
    assert store.get(APP) is None


def test_unregister_of_an_unknown_app_is_refused(onboard: Onboarding):
    with pytest.raises(onboarding.NotRegistered, match="'nosuch' is not registered"):
        onboarding.unregister(onboard.client, onboard.stack, "nosuch")


# --- AMI refresh ---------------------------------------------------------------------------
def test_ami_refresh_records_a_new_image_and_bumps_the_version(onboard: Onboarding):
    onboarding.register(onboard.client, onboard.stack, onboard.registration())
    before = onboard.emu.store.require(APP)

    result = onboarding.refresh_ami(onboard.client, onboard.stack, APP)

    after = onboard.emu.store.require(APP)
    assert after.launch_spec.image_id == result.image_id != before.launch_spec.image_id
    assert result.previous_image_id == before.launch_spec.image_id
    assert after.version == before.version + 1
    assert after.launch_spec.model_copy(update={"image_id": before.launch_spec.image_id}) == before.launch_spec
    image = onboard.client("ec2").describe_images(ImageIds=[result.image_id])["Images"][0]
    assert image["State"] == "available" and image["Name"].startswith("billing-swr-")


def test_ami_refresh_refuses_while_a_failover_runs(onboard: Onboarding):
    onboarding.register(onboard.client, onboard.stack, onboard.registration())
    store = onboard.emu.store
    switching = store.save(store.require(APP).model_copy(update={"state": AppState.SWITCHING}))
    images = onboard.client("ec2").describe_images(Owners=["self"])["Images"]

    with pytest.raises(onboarding.FailoverInProgress):
        onboarding.refresh_ami(onboard.client, onboard.stack, APP)

    assert store.require(APP) == switching
    assert onboard.client("ec2").describe_images(Owners=["self"])["Images"] == images


# --- the command line ----------------------------------------------------------------------
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--region", "ap-northeast-1", "--stack-name", STACK_NAME])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def register_argv(setup: Onboarding, *extra: str) -> list[str]:
    subnets = [setup.subnets[az] for az in ("ap-northeast-1c", "ap-northeast-1d")]
    return [
        "register",
        APP,
        "--instance",
        setup.instance_id,
        "--target-group",
        setup.target_group_arn,
        "--efs",
        setup.file_system_id,
        *extra,
        "--subnets",
        ",".join(subnets),
    ]


def test_cli_register_ami_refresh_and_unregister(onboard: Onboarding, capsys: pytest.CaptureFixture[str]):
    deploy_outputs(onboard.emu, onboard.stack)

    code, out, err = run(capsys, *register_argv(onboard, "--instance-type", "m5.large"))
    assert code == cli.EXIT_OK, err
    lines = out.splitlines()
    warnings = [line for line in lines if line.startswith("warning  fence: ")]
    assert lines[-1 - len(warnings)] == "wrote record billing (generation 0, AZ ap-northeast-1c)"
    assert "created alarm swr-billing-StatusCheckFailed_System" in lines
    assert any("target group billing-app: keeps the established connections" in w for w in warnings)
    assert onboard.emu.store.require(APP).launch_spec.instance_types == ["t3.small", "m5.large"]

    code, out, err = run(capsys, "ami", "refresh", APP, "--json")
    assert code == cli.EXIT_OK, err
    refreshed = json.loads(out)
    assert refreshed["version"] == 2 and onboard.emu.store.require(APP).launch_spec.image_id == refreshed["image_id"]

    code, out, err = run(capsys, "unregister", APP)
    assert code == cli.EXIT_OK, err
    assert out.splitlines()[0] == "deleted record billing (was NORMAL, generation 0)"
    assert onboard.emu.store.get(APP) is None


def test_cli_register_lists_every_problem_and_exits_2(onboard: Onboarding, capsys: pytest.CaptureFixture[str]):
    deploy_outputs(onboard.emu, onboard.stack)
    argv = register_argv(onboard)
    argv[argv.index("--efs") + 1] = "fs-00000000"
    first = argv[-1].split(",")[0]
    argv[-1] = f"{first},{first}"  # both subnets in one AZ

    code, out, err = run(capsys, *argv)

    assert code == cli.EXIT_USAGE and out == ""
    assert err.startswith("swr register: registration refused (3 problem(s)), nothing was changed:\n")
    assert "  - subnet " in err and "is given more than once" in err
    assert "  - the subnets are all in ap-northeast-1c" in err
    assert "  - EFS file system fs-00000000 does not exist" in err
    assert "Traceback" not in err
    assert onboard.emu.store.get(APP) is None


def test_cli_without_a_stack_is_an_environment_error(onboard: Onboarding, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, *register_argv(onboard))

    assert code == cli.EXIT_ENVIRONMENT
    assert err.strip() == f"swr register: no stack named {STACK_NAME}: deploy it first with `swr deploy`"


def test_cli_refusals_map_to_exit_codes(onboard: Onboarding, capsys: pytest.CaptureFixture[str]):
    deploy_outputs(onboard.emu, onboard.stack)
    code, _, err = run(capsys, "unregister", "nosuch")
    assert code == cli.EXIT_USAGE and "'nosuch' is not registered" in err

    onboarding.register(onboard.client, onboard.stack, onboard.registration())
    store = onboard.emu.store
    store.save(store.require(APP).model_copy(update={"state": AppState.SWITCHING}))
    code, _, err = run(capsys, "unregister", APP)
    assert code == cli.EXIT_FAILED and "pass --force" in err
    code, _, err = run(capsys, "ami", "refresh", APP)
    assert code == cli.EXIT_FAILED and "failover of billing is running" in err

    code, _, err = run(
        capsys, "register", "not/an/app", "--instance", "i-1", "--target-group", "a", "--efs", "f", "--subnets", "s"
    )
    assert code == cli.EXIT_USAGE and "not an application name" in err
