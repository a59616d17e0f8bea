"""Onboarding: bring an application under swr's protection (register), release it
(unregister), and refresh the AMI its replacements launch from.

Nothing here knows about argparse: every function takes ``client(service)`` (a callable
that returns boto3 clients) and the deployed stack's outputs, so the CLI, the emulator and
the tests share one implementation.

Registration first validates everything with read-only calls and reports every problem at
once (``RegistrationInvalid``); only a clean plan changes anything. A step that fails midway
undoes what registration did before it (``RegistrationFailed``), so nothing is left
half-registered.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from handlers.core import watch
from handlers.core.aws import error_code
from handlers.core.errors import RecordConflict
from handlers.core.fence.instances import FENCED_BY_TAG
from handlers.core.launching import APP_TAG, GENERATION_TAG, LAUNCH_APPS_TAG, with_launch_app, without_launch_app
from handlers.core.record import AppName, AppRecord, AppState, EfsMount, LaunchSpec, SubnetChoice
from handlers.core.record_store import RecordStore
from swr import fence_topology
from swr.stack import StackOutputs

Client = Callable[[str], Any]

# Subnet tags: each subnet an application may run in gets its own key, swr:app:<APP>=allowed.
# A subnet can serve several applications (swr:app=<APP> could name only one), and the key
# lets a stack, which protects one application, condition its launch function's
# RunInstances on ec2:ResourceTag/swr:app:${AppName} (infra/template.yaml conditions it on
# the VPC today). Unregister removes the application's own key only.
SUBNET_APP_TAG_PREFIX = "swr:app:"
ALLOWED = "allowed"

# The template's defaults for AlarmNamePrefix and MetricNamespace (the emulator's world uses them).
DEFAULT_ALARM_PREFIX = "swr-"
DEFAULT_METRIC_NAMESPACE = "swr"
STATUS_CHECK_METRICS = ("StatusCheckFailed_Instance", "StatusCheckFailed_System")
HEARTBEAT_METRIC = "Heartbeat"
HEARTBEAT_ALARM_SUFFIX = "heartbeat-missing"

# States of an instance that can still run the workload (pending becomes running by itself).
LIVE_STATES = frozenset({"pending", "running", "stopping", "stopped"})
IMAGE_WAIT = {"Delay": 15, "MaxAttempts": 120}  # AMIs of large volumes take a while: up to 30 min
_NOT_FOUND = {
    "instance": {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"},
    "image": {"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"},
    "file system": {"FileSystemNotFound", "ValidationException", "BadRequest"},
    "target group": {"TargetGroupNotFound", "ValidationError"},
    "security group": {"InvalidGroup.NotFound", "InvalidGroupId.Malformed"},
}


# --- errors ---------------------------------------------------------------------------------
class OnboardingError(Exception):
    """An onboarding request that could not be carried out; the message says why."""


class RegistrationInvalid(OnboardingError):
    """The registration request does not fit the account; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"registration refused ({len(self.problems)} problem(s)), nothing was changed:\n{lines}")


class RegistrationFailed(OnboardingError):
    """A registration step failed after validation; what was done before it was undone."""


class NotRegistered(OnboardingError):
    """The application has no record."""


class FailoverInProgress(OnboardingError):
    """The application's record is SWITCHING: a failover owns it until it ends."""


class AmiRefreshFailed(OnboardingError):
    """A new AMI could not be recorded; the image made for it was removed again."""


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


@dataclass(frozen=True)
class RegistrationResult:
    record: AppRecord
    actions: list[str]  # what was done, one line each
    created_image_id: str | None = None
    warnings: list[str] = field(default_factory=list)  # the fence's findings about the layout


@dataclass(frozen=True)
class UnregisterResult:
    actions: list[str]
    leftovers: list[str] = field(default_factory=list)  # clean-up that failed after the record went


@dataclass(frozen=True)
class AmiRefreshResult:
    record: AppRecord
    image_id: str
    previous_image_id: str


# --- alarms ---------------------------------------------------------------------------------
def alarm_names(app: str, prefix: str = DEFAULT_ALARM_PREFIX) -> list[str]:
    return [*(f"{prefix}{app}-{metric}" for metric in STATUS_CHECK_METRICS), f"{prefix}{app}-{HEARTBEAT_ALARM_SUFFIX}"]


def create_alarms(
    cloudwatch: Any,
    app: str,
    instance_id: str,
    *,
    prefix: str = DEFAULT_ALARM_PREFIX,
    namespace: str = DEFAULT_METRIC_NAMESPACE,
) -> list[str]:
    """Status-check alarms on the instance and the heartbeat-missing alarm on the app; their
    state changes to ALARM are what the stack's EventBridge rule turns into failovers."""
    names = alarm_names(app, prefix)
    for metric in STATUS_CHECK_METRICS:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{prefix}{app}-{metric}",
            Namespace="AWS/EC2",
            MetricName=metric,
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
        )
    cloudwatch.put_metric_alarm(
        AlarmName=names[-1],
        Namespace=namespace,
        MetricName=HEARTBEAT_METRIC,
        Dimensions=[{"Name": "App", "Value": app}],
        Statistic="SampleCount",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",  # no heartbeat at all is the hang we want to catch
    )
    return names


# --- validation -----------------------------------------------------------------------------
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
    instance_tags = _tag_dict(instance.get("Tags"))
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
    previous[registration.file_system_id] = {APP_TAG: _tag_dict(described[0].get("Tags")).get(APP_TAG)}
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
        if error_code(error) not in _NOT_FOUND["instance"]:
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
        if error_code(error) not in _NOT_FOUND["file system"]:
            raise
        problems.append(f"EFS file system {file_system_id} does not exist")
        return
    owner = _tag_dict(described[0].get("Tags") if described else []).get(APP_TAG)
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
        if error_code(error) not in _NOT_FOUND["target group"]:
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
    owner = _target_group_tags(elbv2, [arn])[arn].get(APP_TAG)
    if owner is not None and owner != app:
        problems.append(f"target group {name} is tagged {APP_TAG}={owner}: it belongs to another application")


def _target_group_tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    described = elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
    found = {str(d["ResourceArn"]): _tag_dict(d.get("Tags")) for d in described}
    return {arn: found.get(arn, {}) for arn in arns}


def _check_stack_group(ec2: Any, role: str, group_id: str, vpc: str | None, problems: list[str]) -> None:
    try:
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    except ClientError as error:
        if error_code(error) not in _NOT_FOUND["security group"]:
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
    tags = _tag_dict(instance.get("Tags"))
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
        if error_code(error) not in _NOT_FOUND["image"]:
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
        **_target_group_tags(elbv2, target_groups),
    }
    if interface_ids:
        for interface in ec2.describe_network_interfaces(NetworkInterfaceIds=interface_ids)["NetworkInterfaces"]:
            current[str(interface["NetworkInterfaceId"])] = _tag_dict(interface.get("TagSet"))
    if volume_ids:
        for volume in ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]:
            current[str(volume["VolumeId"])] = _tag_dict(volume.get("Tags"))
    for subnet in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]:
        current[str(subnet["SubnetId"])] = _tag_dict(subnet.get("Tags"))
    previous: dict[str, dict[str, str | None]] = {}
    for resource in [registration.instance_id, *interface_ids, *volume_ids]:
        previous[resource] = {k: current.get(resource, {}).get(k) for k in resource_keys}
    for resource in subnet_ids:
        previous[resource] = {k: current.get(resource, {}).get(k) for k in subnet_keys}
    for resource in target_groups:
        previous[resource] = {APP_TAG: current[resource].get(APP_TAG)}
    return previous


# --- registration ---------------------------------------------------------------------------
def subnet_app_tag(app: str) -> str:
    return f"{SUBNET_APP_TAG_PREFIX}{app}"


class _Undo:
    """What registration did, to be undone in reverse order when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, action: Callable[[], object]) -> None:
        self._steps.append((what, action))

    def run(self) -> list[str]:
        """Undo everything; returns what could not be undone."""
        failed = []
        for what, action in reversed(self._steps):
            try:
                action()
            except Exception as error:  # keep undoing the rest; the caller reports these
                failed.append(f"{what}: {error}")
        self._steps.clear()
        return failed


def register(client: Client, stack: StackOutputs, registration: Registration) -> RegistrationResult:
    """Validate (``plan_registration``), then protect the application: optionally create its
    AMI, tag the instance, its interfaces, volumes and the subnets, give it the stack's
    security group and instance profile, create its alarms and write its record."""
    plan = plan_registration(client, stack, registration)
    ec2, app, instance_id = client("ec2"), plan.app, plan.instance_id
    undo, actions = _Undo(), []
    record = plan.record
    created_image: str | None = None
    step = "start"
    try:
        if registration.create_ami:
            step = "create the AMI"
            created_image = _create_image(ec2, app, instance_id, undo)
            record = record.model_copy(
                update={"launch_spec": record.launch_spec.model_copy(update={"image_id": created_image})}
            )
            actions.append(f"created image {created_image} from {instance_id}")

        step = "tag the instance"
        resources = [instance_id, *plan.network_interface_ids, *plan.volume_ids]
        ec2_tags = _Ec2Tags(ec2)
        _tag(ec2_tags, resources, {APP_TAG: app, GENERATION_TAG: str(record.generation)}, plan.previous_tags, undo)
        actions.append(
            f"tagged {instance_id}, {_count(plan.network_interface_ids, 'network interface')} and "
            f"{_count(plan.volume_ids, 'volume')} ({APP_TAG}={app}, {GENERATION_TAG}={record.generation})"
        )

        step = "mark the AMI and security groups for launches"
        # The launch role launches only from an AMI and with groups whose swr:apps lists the
        # application (the stack's own group carries it from the template).
        launch_resources = [
            record.launch_spec.image_id,
            *(g for g in record.launch_spec.security_group_ids if g != stack.ProtectedInstanceSecurityGroupId),
        ]
        marked = _mark_for_launches(ec2, app, launch_resources, undo)
        if marked:
            actions.append(f"marked {', '.join(marked)} for launches of {app} ({LAUNCH_APPS_TAG})")

        step = "tag the subnets"
        subnet_ids = [c.subnet_id for c in record.subnets]
        _tag(ec2_tags, subnet_ids, {subnet_app_tag(app): ALLOWED}, plan.previous_tags, undo)
        actions.append(f"tagged {_count(subnet_ids, 'subnet')} ({subnet_app_tag(app)}={ALLOWED})")

        step = "tag the target groups"
        # The stack lets the fence deregister targets only from groups tagged with its application.
        _tag(_ElbTags(client("elbv2")), record.target_group_arns, {APP_TAG: app}, plan.previous_tags, undo)
        actions.append(f"tagged {_count(record.target_group_arns, 'target group')} ({APP_TAG}={app})")

        step = "tag the file system"
        # The stack lets the fence delete (and create again) a mount target only of a file system
        # tagged with its application.
        file_system = record.efs.file_system_id
        _tag(_EfsTags(client("efs")), [file_system], {APP_TAG: app}, plan.previous_tags, undo)
        actions.append(f"tagged file system {file_system} ({APP_TAG}={app})")

        if plan.protected_group_missing:
            step = "add the protected-instance security group"
            groups = record.launch_spec.security_group_ids
            ec2.modify_network_interface_attribute(NetworkInterfaceId=plan.primary_interface_id, Groups=groups)
            undo.add(
                f"restore the security groups of {plan.primary_interface_id}",
                lambda: ec2.modify_network_interface_attribute(
                    NetworkInterfaceId=plan.primary_interface_id, Groups=plan.primary_interface_groups
                ),
            )
            actions.append(
                f"added security group {stack.ProtectedInstanceSecurityGroupId} to {plan.primary_interface_id}"
            )

        if plan.associate_profile:
            step = "associate the instance profile"
            association = ec2.associate_iam_instance_profile(
                InstanceId=instance_id, IamInstanceProfile={"Arn": stack.InstanceProfileArn}
            )["IamInstanceProfileAssociation"]["AssociationId"]
            undo.add(
                f"disassociate the instance profile from {instance_id}",
                lambda: ec2.disassociate_iam_instance_profile(AssociationId=association),
            )
            actions.append(f"associated instance profile {stack.InstanceProfileArn} with {instance_id}")

        step = "create the alarms"
        cloudwatch = client("cloudwatch")
        # Registered for undo before the calls: a failure after the first alarm still removes it.
        undo.add("delete the alarms", lambda: cloudwatch.delete_alarms(AlarmNames=record.alarm_names))
        create_alarms(cloudwatch, app, instance_id, prefix=stack.AlarmNamePrefix, namespace=stack.MetricNamespace)
        actions += [f"created alarm {name}" for name in record.alarm_names]

        step = "write the record"
        stored = RecordStore(stack.RecordTableName, client("dynamodb")).create(record)
        actions.append(f"wrote record {app} (generation {stored.generation}, AZ {stored.current_az})")
    except Exception as error:
        failed = undo.run()
        if isinstance(error, RecordConflict):
            cause = f"{app!r} was registered by someone else meanwhile"
        else:
            cause = f"{type(error).__name__}: {error}"
        if failed:
            left = "; ".join(failed)
            raise RegistrationFailed(
                f"registration of {app} failed at '{step}' ({cause}); could NOT undo: {left}"
            ) from error
        raise RegistrationFailed(
            f"registration of {app} failed at '{step}' ({cause}); what it had done was undone, "
            "nothing is left half-registered"
        ) from error
    except BaseException:  # interrupted: undo, then let the interruption through
        undo.run()
        raise
    # After the record, outside the undo: the application is protected by its alarms and RMS
    # already; a rule that could not be pointed is a warning, and the next failover points it.
    warnings = list(plan.fence_findings)
    problems = watch.follow(stored, rules_of(stack), client("events"))
    warnings += problems
    if not problems and stack.InstanceWatchRuleName:
        actions.append(f"pointed rule {stack.InstanceWatchRuleName} at {instance_id}")
    return RegistrationResult(record=stored, actions=actions, created_image_id=created_image, warnings=warnings)


def rules_of(stack: StackOutputs) -> watch.Rules:
    return watch.Rules(stack.InstanceWatchRuleName, stack.FenceReleaseRuleName)


def point_rules(client: Client, stack: StackOutputs) -> list[str]:
    """After a stack update: point the EC2 state-change rules at the registered application's
    instances again (an update that changed a rule's definition reset it to match nothing).
    What was done or could not be, as sentences."""
    record = RecordStore(stack.RecordTableName, client("dynamodb")).get(stack.AppName)
    if record is None or not (stack.InstanceWatchRuleName or stack.FenceReleaseRuleName):
        return []
    problems = watch.follow(record, rules_of(stack), client("events"))
    return problems or [f"EC2 state-change rules point at what the record of {record.app} names"]


class _Ec2Tags:
    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        self.ec2.create_tags(Resources=resources, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        self.ec2.delete_tags(Resources=resources, Tags=[{"Key": k} for k in keys])


class _ElbTags:
    def __init__(self, elbv2: Any) -> None:
        self.elbv2 = elbv2

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        self.elbv2.add_tags(ResourceArns=resources, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        self.elbv2.remove_tags(ResourceArns=resources, TagKeys=keys)


class _EfsTags:
    def __init__(self, efs: Any) -> None:
        self.efs = efs

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        for resource in resources:
            self.efs.tag_resource(ResourceId=resource, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        for resource in resources:
            self.efs.untag_resource(ResourceId=resource, TagKeys=keys)


def _tag(
    tagger: _Ec2Tags | _ElbTags | _EfsTags,
    resources: list[str],
    tags: dict[str, str],
    previous: dict[str, dict[str, str | None]],
    undo: _Undo,
) -> None:
    def restore() -> None:
        for resource in resources:
            before = previous.get(resource, {})
            absent = [key for key in tags if before.get(key) is None]
            changed = {k: v for k in tags if (v := before.get(k)) is not None and v != tags[k]}
            if absent:
                tagger.remove([resource], absent)
            if changed:
                tagger.put([resource], changed)

    undo.add(f"restore the tags of {', '.join(resources)}", restore)
    tagger.put(resources, tags)


def _launch_tags(ec2: Any, resources: list[str]) -> dict[str, str | None]:
    """Each AMI's and security group's swr:apps value (None: untagged)."""
    found: dict[str, str | None] = {}
    images = [r for r in resources if r.startswith("ami-")]
    groups = [r for r in resources if r.startswith("sg-")]
    for image in ec2.describe_images(ImageIds=images)["Images"] if images else []:
        found[str(image["ImageId"])] = _tag_dict(image.get("Tags")).get(LAUNCH_APPS_TAG)
    for group in ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"] if groups else []:
        found[str(group["GroupId"])] = _tag_dict(group.get("Tags")).get(LAUNCH_APPS_TAG)
    return found


def _mark_for_launches(ec2: Any, app: str, resources: list[str], undo: _Undo) -> list[str]:
    """Add ``app`` to the swr:apps tag of each resource; undone to what it was."""
    before = _launch_tags(ec2, resources)
    marked = []
    for resource in dict.fromkeys(resources):
        previous = before.get(resource)
        value = with_launch_app(previous, app)
        if value == previous:
            continue

        def restore(resource: str = resource, previous: str | None = previous) -> None:
            if previous is None:
                ec2.delete_tags(Resources=[resource], Tags=[{"Key": LAUNCH_APPS_TAG}])
            else:
                ec2.create_tags(Resources=[resource], Tags=[{"Key": LAUNCH_APPS_TAG, "Value": previous}])

        undo.add(f"restore the {LAUNCH_APPS_TAG} tag of {resource}", restore)
        ec2.create_tags(Resources=[resource], Tags=[{"Key": LAUNCH_APPS_TAG, "Value": value}])
        marked.append(resource)
    return marked


def _unmark_for_launches(ec2: Any, app: str, resources: list[str]) -> list[str]:
    unmarked = []
    for resource, value in _launch_tags(ec2, resources).items():
        if value is None or app not in value.split():
            continue
        left = without_launch_app(value, app)
        if left:
            ec2.create_tags(Resources=[resource], Tags=[{"Key": LAUNCH_APPS_TAG, "Value": left}])
        else:
            ec2.delete_tags(Resources=[resource], Tags=[{"Key": LAUNCH_APPS_TAG}])
        unmarked.append(resource)
    return unmarked


def _create_image(ec2: Any, app: str, instance_id: str, undo: _Undo | None = None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    image_id = str(
        ec2.create_image(
            InstanceId=instance_id,
            Name=f"{app}-swr-{stamp}",
            Description=f"swr: {app} from {instance_id}",
            NoReboot=True,  # the workload keeps running; EFS holds the data that matters
            TagSpecifications=[
                {
                    "ResourceType": "image",
                    "Tags": [{"Key": APP_TAG, "Value": app}, {"Key": LAUNCH_APPS_TAG, "Value": app}],
                }
            ],
        )["ImageId"]
    )
    if undo is not None:
        undo.add(f"deregister image {image_id}", lambda: _delete_image(ec2, image_id))
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=IMAGE_WAIT)
    return image_id


def _delete_image(ec2: Any, image_id: str) -> None:
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    snapshots = [
        str(m["Ebs"]["SnapshotId"])
        for i in images
        for m in i.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]
    ec2.deregister_image(ImageId=image_id)
    for snapshot in snapshots:
        ec2.delete_snapshot(SnapshotId=snapshot)


# --- unregister -----------------------------------------------------------------------------
def unregister(client: Client, stack: StackOutputs, app: str, *, force: bool = False) -> UnregisterResult:
    """Remove the application's record, then its alarms and the swr tags registration put on
    its subnets, target groups and current instance (the instance keeps running, with the
    stack's security group and instance profile). The record goes first, with a condition
    on its version: once it is gone no failover can start, and a failover that started
    meanwhile makes this one fail instead of racing it. Clean-up that fails after that is
    reported in ``leftovers``."""
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    record = _require(store, app)
    if record.state is AppState.SWITCHING and not force:
        holder = record.lease.holder if record.lease else "unknown"
        raise FailoverInProgress(
            f"a failover of {app} is running ({holder}): wait until it ends, or pass --force to unregister anyway"
        )
    try:
        store.delete(record)
    except RecordConflict:
        raise OnboardingError(f"the record of {app} changed while unregistering it: run the command again") from None
    actions = [f"deleted record {app} (was {record.state.value}, generation {record.generation})"]
    leftovers: list[str] = []
    ec2 = client("ec2")

    def attempt(what: str, action: Callable[[], list[str]]) -> list[str]:
        try:
            return action()
        except ClientError as error:
            leftovers.append(f"could not {what}: {error}")
            return []

    if stack.InstanceWatchRuleName or stack.FenceReleaseRuleName:
        # With no record, every rule matches nothing and is off.
        gone = record.model_copy(update={"current_instance_id": "", "fences": []})
        leftovers += watch.follow(gone, rules_of(stack), client("events"))
        actions.append("turned the EC2 state-change rules off")
    if record.alarm_names:
        deleted = attempt("delete the alarms", lambda: _delete_alarms(client("cloudwatch"), record.alarm_names))
        actions += [f"deleted alarm {name}" for name in deleted]
    subnet_ids = list(dict.fromkeys(c.subnet_id for c in record.subnets))
    if attempt("untag the subnets", lambda: _untag_subnets(ec2, app, subnet_ids)):
        actions.append(f"removed {subnet_app_tag(app)} from {_count(subnet_ids, 'subnet')}")
    untagged = attempt("untag the current instance", lambda: _untag_instance(ec2, app, record.current_instance_id))
    if untagged:
        actions.append(f"removed {APP_TAG} and {GENERATION_TAG} from {', '.join(untagged)}")
    groups = attempt("untag the target groups", lambda: _untag_target_groups(client("elbv2"), app, record))
    if groups:
        actions.append(f"removed {APP_TAG} from {_count(groups, 'target group')}")
    file_system = record.efs.file_system_id
    if attempt("untag the file system", lambda: _untag_file_system(client("efs"), app, file_system)):
        actions.append(f"removed {APP_TAG} from file system {file_system}")
    launch_resources = [
        record.launch_spec.image_id,
        *(g for g in record.launch_spec.security_group_ids if g != stack.ProtectedInstanceSecurityGroupId),
    ]
    unmarked = attempt("unmark the AMI and security groups", lambda: _unmark_for_launches(ec2, app, launch_resources))
    if unmarked:
        actions.append(f"removed {app} from the {LAUNCH_APPS_TAG} tag of {', '.join(unmarked)}")
    return UnregisterResult(actions=actions, leftovers=leftovers)


def _delete_alarms(cloudwatch: Any, names: list[str]) -> list[str]:
    cloudwatch.delete_alarms(AlarmNames=names)
    return names


def _untag_subnets(ec2: Any, app: str, subnet_ids: list[str]) -> list[str]:
    ec2.delete_tags(Resources=subnet_ids, Tags=[{"Key": subnet_app_tag(app), "Value": ALLOWED}])
    return subnet_ids


def _untag_target_groups(elbv2: Any, app: str, record: AppRecord) -> list[str]:
    tags = _target_group_tags(elbv2, record.target_group_arns)
    ours = [arn for arn in record.target_group_arns if tags[arn].get(APP_TAG) == app]
    if ours:
        elbv2.remove_tags(ResourceArns=ours, TagKeys=[APP_TAG])
    return ours


def _untag_file_system(efs: Any, app: str, file_system_id: str) -> list[str]:
    try:
        described = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
    except ClientError as error:
        if error_code(error) == "FileSystemNotFound":
            return []
        raise
    if _tag_dict(described[0].get("Tags")).get(APP_TAG) != app:
        return []
    efs.untag_resource(ResourceId=file_system_id, TagKeys=[APP_TAG])
    return [file_system_id]


def _untag_instance(ec2: Any, app: str, instance_id: str) -> list[str]:
    """Remove the swr tags from the instance (and its interfaces and volumes) if they name
    this application; an instance that is gone has nothing to remove."""
    try:
        found = [i for r in ec2.describe_instances(InstanceIds=[instance_id])["Reservations"] for i in r["Instances"]]
    except ClientError as error:
        if error_code(error) in _NOT_FOUND["instance"]:
            return []
        raise
    if not found or _tag_dict(found[0].get("Tags")).get(APP_TAG) != app:
        return []
    instance = found[0]
    resources = [
        instance_id,
        *(str(n["NetworkInterfaceId"]) for n in instance.get("NetworkInterfaces", [])),
        *(str(m["Ebs"]["VolumeId"]) for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")),
    ]
    ec2.delete_tags(Resources=resources, Tags=[{"Key": APP_TAG, "Value": app}, {"Key": GENERATION_TAG}])
    return resources


# --- AMI refresh ----------------------------------------------------------------------------
def refresh_ami(client: Client, stack: StackOutputs, app: str) -> AmiRefreshResult:
    """Make a new AMI from the application's current instance and launch replacements from it."""
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    record = _require(store, app)
    if record.state is AppState.SWITCHING:
        raise FailoverInProgress(f"a failover of {app} is running: refresh the AMI once it has ended")
    ec2 = client("ec2")
    image_id = _create_image(ec2, app, record.current_instance_id)
    updated = record.model_copy(update={"launch_spec": record.launch_spec.model_copy(update={"image_id": image_id})})
    try:
        stored = store.save(updated)
    except RecordConflict:
        # A failover (or another refresh) wrote meanwhile: the image may be of an instance that
        # is no longer current, so it is not recorded.
        _delete_image(ec2, image_id)
        raise AmiRefreshFailed(
            f"the record of {app} changed while image {image_id} was made; the image was removed, run the command again"
        ) from None
    return AmiRefreshResult(record=stored, image_id=image_id, previous_image_id=record.launch_spec.image_id)


# --- helpers --------------------------------------------------------------------------------
def _require(store: RecordStore, app: str) -> AppRecord:
    record = store.get(app)
    if record is None:
        raise NotRegistered(f"application {app!r} is not registered (no record in table {store.table_name})")
    return record


def _tag_dict(tags: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


def _count(items: list[str], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
