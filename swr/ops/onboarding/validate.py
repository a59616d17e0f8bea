"""Registration's request and its validation: everything is checked with read-only calls and
every problem reported at once (``RegistrationInvalid``); only a clean plan changes anything."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from handlers.core.aws import error_code
from handlers.core.fence.instances import FENCED_BY_TAG
from handlers.core.fence.instances import NOT_FOUND as INSTANCE_NOT_FOUND
from handlers.core.launching import APP_TAG, GENERATION_TAG
from handlers.core.record import AppName, AppRecord, EfsMount, LaunchSpec, SubnetChoice
from handlers.core.record_store import RecordStore
from swr import fence_topology
from swr.ops.common import (
    FILE_SYSTEM_NOT_FOUND,
    GROUP_NOT_FOUND,
    IMAGE_NOT_FOUND,
    TARGET_GROUP_NOT_FOUND,
    Client,
    OnboardingError,
    tag_dict,
)
from swr.ops.onboarding.alarms import alarm_names
from swr.ops.onboarding.tags import subnet_app_tag, target_group_tags
from swr.stack import StackOutputs

# States of an instance that can still run the workload (pending becomes running by itself).
LIVE_STATES = frozenset({"pending", "running", "stopping", "stopped"})


class RegistrationInvalid(OnboardingError):
    """The registration request does not fit the account; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"registration refused ({len(self.problems)} problem(s)), nothing was changed:\n{lines}")


# --- the request and the plan --------------------------------------------------------------
MountPoint = Annotated[str, StringConstraints(pattern=r"^/\S*$")]


class Registration(BaseModel):
    """What an operator asks for with ``swr register``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: AppName
    instance_id: str = Field(min_length=1)
    target_group_arns: list[str] = Field(min_length=1)
    file_system_id: str = Field(min_length=1)
    mount_point: MountPoint = "/mnt/swr"
    subnet_ids: list[str] = Field(min_length=1)  # order = AZ preference; two AZs are checked by the plan
    extra_instance_types: list[str] = Field(default_factory=list)  # fallbacks after the instance's own type
    health_timeout_seconds: int = Field(default=600, ge=30)
    create_ami: bool = False


@dataclass(frozen=True)
class RegistrationPlan:
    """Everything registration will do, worked out from read-only calls."""

    registration: Registration
    record: AppRecord  # image_id is replaced by the new image's when create_ami
    primary_interface_id: str
    primary_interface_groups: list[str]
    network_interface_ids: list[str]
    volume_ids: list[str]
    associate_profile: bool
    # The current value of every tag key registration will set, per resource (None: absent),
    # so a failed registration puts them back.
    previous_tags: dict[str, dict[str, str | None]]
    # What in the account's layout leaves the fence only the power-off, or slows it (with fixes).
    fence_findings: list[str] = field(default_factory=list)

    @property
    def app(self) -> str:
        return self.registration.app

    @property
    def instance_id(self) -> str:
        return self.registration.instance_id

    @property
    def protected_group_missing(self) -> bool:
        return self.record.launch_spec.security_group_ids != self.primary_interface_groups


def plan_registration(client: Client, stack: StackOutputs, registration: Registration) -> RegistrationPlan:
    """Validate the request against the account with read-only calls. Every problem found is
    reported at once in RegistrationInvalid; a plan is returned only when there is none."""
    problems: list[str] = []
    ec2 = client("ec2")
    app = registration.app

    if stack.AppName != app:
        # The stack's IAM policies are scoped to the swr:app tag of its own application.
        problems.append(
            f"the stack protects {stack.AppName!r}, not {app!r}: deploy a stack for {app} (another NamePrefix)"
        )
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    registered = store.get(app) is not None
    if registered:
        problems.append(
            f"application {app!r} is already registered (table {stack.RecordTableName}): "
            f"run `swr unregister {app}` first to register it again"
        )

    instance = _instance(ec2, registration.instance_id, problems)
    vpc = str(instance["VpcId"]) if instance else None
    subnets = _subnets(ec2, registration.subnet_ids, vpc, problems)
    azs = list(dict.fromkeys(choice.az for choice in subnets))
    if subnets and len(azs) < 2:
        problems.append(
            f"the subnets are all in {azs[0]}: give subnets in at least two AZs, so that a replacement "
            "has another AZ to go to"
        )
    _check_file_system(client("efs"), ec2, registration.file_system_id, app, azs, vpc, problems)
    for arn in dict.fromkeys(registration.target_group_arns):
        _check_target_group(client("elbv2"), arn, app, vpc, problems)
    _check_stack_group(ec2, "blackhole", stack.BlackholeSecurityGroupId, vpc, problems)
    _check_stack_group(ec2, "protected-instance", stack.ProtectedInstanceSecurityGroupId, vpc, problems)
    names = alarm_names(app, stack.AlarmNamePrefix)
    if not registered:  # a registered application's alarms are its own
        _check_alarms_free(client("cloudwatch"), names, problems)

    if instance is None:
        raise RegistrationInvalid(problems)
    _check_instance(instance, app, stack, problems)
    if not registration.create_ami:
        _check_image(ec2, str(instance["ImageId"]), stack.InstanceProfileArn.split(":")[4], problems)
    user_data = _user_data(ec2, registration.instance_id, problems)
    interfaces = sorted(
        instance.get("NetworkInterfaces", []), key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0)
    )
    if not interfaces:
        problems.append(f"instance {registration.instance_id} has no network interface")
    if problems:
        raise RegistrationInvalid(problems)

    primary = interfaces[0]
    primary_groups = [str(g["GroupId"]) for g in primary.get("Groups", [])]
    groups = [
        *primary_groups,
        *([] if stack.ProtectedInstanceSecurityGroupId in primary_groups else [stack.ProtectedInstanceSecurityGroupId]),
    ]
    interface_ids = [str(n["NetworkInterfaceId"]) for n in interfaces]
    volume_ids = [str(m["Ebs"]["VolumeId"]) for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")]
    instance_tags = tag_dict(instance.get("Tags"))
    launch_spec = LaunchSpec(
        image_id=str(instance["ImageId"]),
        instance_types=list(dict.fromkeys([str(instance["InstanceType"]), *registration.extra_instance_types])),
        security_group_ids=groups,
        instance_profile_arn=stack.InstanceProfileArn,
        key_name=instance.get("KeyName") or None,
        user_data=user_data,
        tags={k: v for k, v in instance_tags.items() if not k.startswith(("aws:", "swr:"))},
    )
    record = AppRecord(
        app=app,
        launch_spec=launch_spec,
        subnets=subnets,
        target_group_arns=list(dict.fromkeys(registration.target_group_arns)),
        efs=EfsMount(file_system_id=registration.file_system_id, mount_point=registration.mount_point),
        alarm_names=names,
        blackhole_security_group_id=stack.BlackholeSecurityGroupId,
        health_timeout_seconds=registration.health_timeout_seconds,
        current_instance_id=registration.instance_id,
        current_az=str(instance["Placement"]["AvailabilityZone"]),
        generation=0,
    )
    subnet_ids = [c.subnet_id for c in subnets]
    previous = _previous_tags(ec2, client("elbv2"), registration, instance_tags, interface_ids, volume_ids, subnet_ids)
    described = client("efs").describe_file_systems(FileSystemId=registration.file_system_id)["FileSystems"]
    previous[registration.file_system_id] = {APP_TAG: tag_dict(described[0].get("Tags")).get(APP_TAG)}
    return RegistrationPlan(
        registration=registration,
        record=record,
        primary_interface_id=interface_ids[0],
        primary_interface_groups=primary_groups,
        network_interface_ids=interface_ids,
        volume_ids=volume_ids,
        associate_profile=not instance.get("IamInstanceProfile"),
        previous_tags=previous,
        fence_findings=[
            f"{f.subject}: {f.detail}"
            for f in fence_topology.check(client, instance, registration.file_system_id, record.target_group_arns)
        ],
    )


def _instance(ec2: Any, instance_id: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error_code(error) not in INSTANCE_NOT_FOUND:
            raise
        reservations = []
    found = [i for r in reservations for i in r.get("Instances", [])]
    if not found:
        problems.append(f"instance {instance_id} does not exist")
        return None
    instance = dict(found[0])
    state = instance["State"]["Name"]
    if state not in LIVE_STATES:
        problems.append(f"instance {instance_id} is {state}: register a running (or stopped) instance")
        return None
    return instance


def _subnets(ec2: Any, subnet_ids: list[str], vpc: str | None, problems: list[str]) -> list[SubnetChoice]:
    for subnet_id in {s for s in subnet_ids if subnet_ids.count(s) > 1}:
        problems.append(f"subnet {subnet_id} is given more than once")
    wanted = list(dict.fromkeys(subnet_ids))
    # A filter, not SubnetIds: one unknown id would fail the whole call and hide the others.
    found = {
        str(s["SubnetId"]): s
        for s in ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": wanted}])["Subnets"]
    }
    choices = []
    for subnet_id in wanted:
        subnet = found.get(subnet_id)
        if subnet is None:
            problems.append(f"subnet {subnet_id} does not exist")
            continue
        if vpc is not None and subnet["VpcId"] != vpc:
            problems.append(f"subnet {subnet_id} is in {subnet['VpcId']}, not in the instance's {vpc}")
        choices.append(SubnetChoice(az=str(subnet["AvailabilityZone"]), subnet_id=subnet_id))
    return choices


def _check_file_system(
    efs: Any, ec2: Any, file_system_id: str, app: str, azs: list[str], vpc: str | None, problems: list[str]
) -> None:
    try:
        described = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
        targets = _mount_targets(efs, file_system_id)
    except ClientError as error:
        if error_code(error) not in FILE_SYSTEM_NOT_FOUND:
            raise
        problems.append(f"EFS file system {file_system_id} does not exist")
        return
    owner = tag_dict(described[0].get("Tags") if described else []).get(APP_TAG)
    if owner is not None and owner != app:
        # The stack scopes the fence's mount target deletion to the file system's swr:app tag.
        problems.append(
            f"EFS file system {file_system_id} is tagged {APP_TAG}={owner}: it belongs to another application"
        )
    unnamed = [str(t["SubnetId"]) for t in targets if not t.get("AvailabilityZoneName")]
    subnet_az = (
        {str(s["SubnetId"]): str(s["AvailabilityZone"]) for s in ec2.describe_subnets(SubnetIds=unnamed)["Subnets"]}
        if unnamed
        else {}
    )
    covered = {str(t.get("AvailabilityZoneName") or subnet_az.get(str(t["SubnetId"]), "")) for t in targets}
    missing = [az for az in azs if az not in covered]
    if missing:
        problems.append(
            f"EFS file system {file_system_id} has no mount target in {', '.join(missing)}: a replacement there "
            "could not mount its data; create one in each of these AZs (aws efs create-mount-target)"
        )
    other_vpcs = sorted({str(t["VpcId"]) for t in targets if t.get("VpcId") and t["VpcId"] != vpc})
    if vpc is not None and other_vpcs:
        problems.append(
            f"EFS file system {file_system_id} has mount targets in {', '.join(other_vpcs)}, "
            f"not in the instance's {vpc}"
        )


def _mount_targets(efs: Any, file_system_id: str) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    request: dict[str, Any] = {"FileSystemId": file_system_id}
    while True:
        page = efs.describe_mount_targets(**request)
        targets += page.get("MountTargets", [])
        if not page.get("NextMarker"):
            return targets
        request["Marker"] = page["NextMarker"]


def _check_target_group(elbv2: Any, arn: str, app: str, vpc: str | None, problems: list[str]) -> None:
    try:
        group = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    except ClientError as error:
        if error_code(error) not in TARGET_GROUP_NOT_FOUND:
            raise
        problems.append(f"target group {arn} does not exist")
        return
    name = group.get("TargetGroupName", arn)
    if vpc is not None and group.get("VpcId") != vpc:
        problems.append(f"target group {name} is in {group.get('VpcId')}, not in the instance's {vpc}")
    if group.get("TargetType", "instance") != "instance":
        problems.append(
            f"target group {name} has target type {group['TargetType']}: swr registers instances, "
            "so it needs target type instance"
        )
    owner = target_group_tags(elbv2, [arn])[arn].get(APP_TAG)
    if owner is not None and owner != app:
        problems.append(f"target group {name} is tagged {APP_TAG}={owner}: it belongs to another application")


def _check_stack_group(ec2: Any, role: str, group_id: str, vpc: str | None, problems: list[str]) -> None:
    try:
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    except ClientError as error:
        if error_code(error) not in GROUP_NOT_FOUND:
            raise
        problems.append(f"the stack's {role} security group {group_id} does not exist: redeploy the stack")
        return
    if vpc is not None and group.get("VpcId") != vpc:
        problems.append(
            f"the stack's {role} security group {group_id} is in {group.get('VpcId')}, not in the instance's {vpc}: "
            "deploy the stack for the application's VPC"
        )


def _check_alarms_free(cloudwatch: Any, names: list[str], problems: list[str]) -> None:
    existing = [str(a["AlarmName"]) for a in cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])]
    for name in existing:
        # Registration would take it over, and a failed registration would delete it.
        problems.append(f"alarm {name} already exists (left from an earlier registration?): delete it first")


def _check_instance(instance: dict[str, Any], app: str, stack: StackOutputs, problems: list[str]) -> None:
    instance_id = instance["InstanceId"]
    tags = tag_dict(instance.get("Tags"))
    owner = tags.get(APP_TAG)
    if owner is not None and owner != app:
        problems.append(f"instance {instance_id} is tagged {APP_TAG}={owner}: it belongs to another application")
    if FENCED_BY_TAG in tags:
        problems.append(f"instance {instance_id} was fenced by swr ({tags[FENCED_BY_TAG]}): register its replacement")
    groups = {str(g["GroupId"]) for n in instance.get("NetworkInterfaces", []) for g in n.get("Groups", [])}
    if stack.BlackholeSecurityGroupId in groups:
        problems.append(f"instance {instance_id} is in the blackhole security group (isolated by a fence)")
    profile = (instance.get("IamInstanceProfile") or {}).get("Arn")
    if profile and profile != stack.InstanceProfileArn:
        problems.append(
            f"instance {instance_id} has instance profile {profile}, not the stack's {stack.InstanceProfileArn}: "
            "the boot gate needs the stack's instance role; replace the association "
            "(aws ec2 replace-iam-instance-profile-association) and register again"
        )


def _check_image(ec2: Any, image_id: str, account: str, problems: list[str]) -> None:
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as error:
        if error_code(error) not in IMAGE_NOT_FOUND:
            raise
        images = []
    if not images:
        problems.append(f"the instance's AMI {image_id} does not exist any more: pass --create-ami to make one from it")
    elif images[0].get("State", "available") != "available":
        problems.append(f"the instance's AMI {image_id} is {images[0]['State']}: pass --create-ami to make a new one")
    else:
        owner = str(images[0].get("OwnerId", ""))
        if owner != account:
            problems.append(
                f"the instance's AMI {image_id} belongs to account {owner or '?'}: replacements launch only from an"
                f" AMI of this account marked for the application; pass --create-ami to make one from the instance"
            )


def _user_data(ec2: Any, instance_id: str, problems: list[str]) -> str:
    encoded = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData").get("UserData") or {}
    try:
        return base64.b64decode(encoded.get("Value") or "").decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        problems.append(f"the user data of {instance_id} is not text (gzip?): swr records user data as text")
        return ""


def _previous_tags(
    ec2: Any,
    elbv2: Any,
    registration: Registration,
    instance_tags: dict[str, str],
    interface_ids: list[str],
    volume_ids: list[str],
    subnet_ids: list[str],
) -> dict[str, dict[str, str | None]]:
    resource_keys = (APP_TAG, GENERATION_TAG)
    subnet_keys = (subnet_app_tag(registration.app),)
    target_groups = list(dict.fromkeys(registration.target_group_arns))
    current: dict[str, dict[str, str]] = {
        registration.instance_id: instance_tags,
        **target_group_tags(elbv2, target_groups),
    }
    if interface_ids:
        for interface in ec2.describe_network_interfaces(NetworkInterfaceIds=interface_ids)["NetworkInterfaces"]:
            current[str(interface["NetworkInterfaceId"])] = tag_dict(interface.get("TagSet"))
    if volume_ids:
        for volume in ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]:
            current[str(volume["VolumeId"])] = tag_dict(volume.get("Tags"))
    for subnet in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]:
        current[str(subnet["SubnetId"])] = tag_dict(subnet.get("Tags"))
    previous: dict[str, dict[str, str | None]] = {}
    for resource in [registration.instance_id, *interface_ids, *volume_ids]:
        previous[resource] = {k: current.get(resource, {}).get(k) for k in resource_keys}
    for resource in subnet_ids:
        previous[resource] = {k: current.get(resource, {}).get(k) for k in subnet_keys}
    for resource in target_groups:
        previous[resource] = {APP_TAG: current[resource].get(APP_TAG)}
    return previous
