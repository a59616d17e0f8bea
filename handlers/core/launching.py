"""Launch the replacement from the recorded launch spec, in an AZ other than the failed one.

Idempotent: the ClientToken is derived from the execution, the attempt, the AZ and the
type, and an instance already launched for this attempt is returned instead of a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from handlers.core import clock
from handlers.core.aws import api_call, client, error_code
from handlers.core.errors import AlternateZonesExhausted, LaunchSpecInvalid, NoCapacity, ReplacementNotRunning
from handlers.core.fence.instances import state_of
from handlers.core.record import AppRecord
from handlers.core.steps import FailoverPlan, Replacement

if TYPE_CHECKING:  # boto3-stubs
    from mypy_boto3_ec2.type_defs import InstanceTypeDef

APP_TAG = "swr:app"
GENERATION_TAG = "swr:generation"
# On an AMI or security group: the applications whose replacements may be launched with it
# ("billing demo"), which the launch role requires (infra/template.yaml). A list, not one name:
# two applications may share a golden AMI or a security group.
LAUNCH_APPS_TAG = "swr:apps"
EXECUTION_TAG = "swr:execution"
ATTEMPT_TAG = "swr:attempt"
# Refusals that are about this AZ and type, not about the request: try the next choice.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "Unsupported",
        "InvalidInstanceType",
    }
)
RUNNING_TIMEOUT = timedelta(minutes=10)
DEAD_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated", "gone"})


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def client_token(execution: str, attempt: int, az: str, instance_type: str) -> str:
    # RunInstances allows 64 ASCII characters; a digest keeps any execution name within it.
    digest = hashlib.sha256(f"{execution}|{attempt}|{az}|{instance_type}".encode()).hexdigest()
    return f"swr-{digest[:60]}"


def remaining_azs(record: AppRecord, plan: FailoverPlan) -> list[str]:
    return [az for az in record.azs_in_preference_order() if az not in plan.tried_azs]


class LaunchCandidate(BaseModel):
    """One (AZ, instance type, subnet) a launch tries."""

    model_config = ConfigDict(frozen=True)

    az: str
    instance_type: str
    subnet_id: str


def launch_candidates(record: AppRecord, plan: FailoverPlan) -> list[LaunchCandidate]:
    """What launch tries, in order: the preferred type in every remaining AZ before the next
    type (a type that fits the workload matters more than which AZ it runs in)."""
    return [
        LaunchCandidate(az=az, instance_type=instance_type, subnet_id=record.subnets_in(az)[0])
        for instance_type in record.launch_spec.instance_types
        for az in remaining_azs(record, plan)
    ]


def launch(record: AppRecord, plan: FailoverPlan, execution: str) -> Replacement:
    azs = remaining_azs(record, plan)
    if not azs:
        raise AlternateZonesExhausted(
            f"no AZ left for {record.app!r}: tried {', '.join(plan.tried_azs)} of "
            f"{', '.join(record.azs_in_preference_order())}"
        )
    already = _launched_for(execution, plan.attempt)
    if already is not None:
        return already
    skipped: list[str] = []
    block_devices = encrypted_block_devices(record.launch_spec.image_id)
    for candidate in launch_candidates(record, plan):
        az, instance_type = candidate.az, candidate.instance_type
        token = client_token(execution, plan.attempt, az, instance_type)
        try:
            instance = _run(run_request(record, plan, execution, candidate, token, block_devices), candidate)
        except ClientError as error:
            if error_code(error) not in CAPACITY_CODES:
                raise
            skipped.append(f"{az}/{instance_type}: {error_code(error)}")
            continue
        now = clock.now()
        return Replacement(
            instance_id=instance["InstanceId"],
            az=az,
            subnet_id=candidate.subnet_id,
            instance_type=instance_type,
            generation=plan.generation,
            attempt=plan.attempt,
            client_token=token,
            launched_at=now,
            running_deadline=now + RUNNING_TIMEOUT,
            state=instance["State"]["Name"],
            skipped=skipped,
        )
    raise NoCapacity(f"no capacity for {record.app!r} in {', '.join(azs)}: {'; '.join(skipped)}")


def check_running(replacement: Replacement) -> Replacement:
    state = state_of(replacement.instance_id)
    if state in DEAD_STATES:
        raise ReplacementNotRunning(f"replacement {replacement.instance_id} in {replacement.az} is {state}")
    if state == "running":
        return replacement.model_copy(update={"state": state, "running_at": replacement.running_at or clock.now()})
    if clock.now() > replacement.running_deadline:
        raise ReplacementNotRunning(
            f"replacement {replacement.instance_id} in {replacement.az} still {state} after "
            f"{int(RUNNING_TIMEOUT.total_seconds())} s"
        )
    return replacement.model_copy(update={"state": state})


def instances_of(execution: str) -> list[InstanceTypeDef]:
    """Every live instance this execution launched."""
    with api_call("find replacements of this execution"):
        reservations = client("ec2").describe_instances(
            Filters=[
                {"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_name(execution)]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
    return [i for r in reservations for i in r.get("Instances", [])]


def _launched_for(execution: str, attempt: int) -> Replacement | None:
    for instance in instances_of(execution):
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if tags.get(ATTEMPT_TAG) != str(attempt):
            continue
        launched = instance["LaunchTime"]
        return Replacement(
            instance_id=instance["InstanceId"],
            az=instance["Placement"]["AvailabilityZone"],
            subnet_id=instance["SubnetId"],
            instance_type=instance["InstanceType"],
            generation=int(tags[GENERATION_TAG]),
            attempt=attempt,
            client_token=instance.get("ClientToken", ""),
            launched_at=clock.now(),
            running_deadline=clock.now() + RUNNING_TIMEOUT,
            state=instance["State"]["Name"],
            skipped=[f"found instance launched earlier for attempt {attempt} (launch time {launched})"],
        )
    return None


def encrypted_block_devices(image_id: str) -> list[dict[str, Any]]:
    """The AMI's EBS volumes, each asked for encrypted: the stack lets swr launch only encrypted
    volumes (``ec2:Encrypted``), whatever the snapshot or the account's default encryption."""
    with api_call(f"read the block devices of {image_id}"):
        images = client("ec2").describe_images(ImageIds=[image_id]).get("Images", [])
    if not images:
        raise LaunchSpecInvalid(f"AMI {image_id} of the launch spec does not exist or is not visible to swr")
    return encrypted_mappings(images[0])


def encrypted_mappings(image: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Amazon EBS User Guide (encryption examples): a volume restored from an unencrypted snapshot
    # is encrypted when the launch's mapping says Encrypted; EbsBlockDevice (EC2 API Reference)
    # refuses a SnapshotId beside an encryption value, so none is given. The AMI's size is
    # repeated because moto asks for a size or a snapshot (AWS takes the AMI's either way).
    mappings = []
    for mapping in image.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs")
        if ebs is None or not mapping.get("DeviceName"):
            continue
        wanted: dict[str, Any] = {"Encrypted": True}
        if ebs.get("VolumeSize"):
            wanted["VolumeSize"] = ebs["VolumeSize"]
        mappings.append({"DeviceName": mapping["DeviceName"], "Ebs": wanted})
    return mappings


def run_request(
    record: AppRecord,
    plan: FailoverPlan,
    execution: str,
    candidate: LaunchCandidate,
    token: str,
    block_devices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The RunInstances request for one candidate (read-only: a rehearsal shows it)."""
    spec = record.launch_spec
    tags = {
        **spec.tags,
        APP_TAG: record.app,
        GENERATION_TAG: str(plan.generation),
        EXECUTION_TAG: execution_name(execution),
        ATTEMPT_TAG: str(plan.attempt),
    }
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    request: dict[str, Any] = {
        "ImageId": spec.image_id,
        "InstanceType": candidate.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": token,
        "SubnetId": candidate.subnet_id,
        "SecurityGroupIds": spec.security_group_ids,
        "UserData": spec.user_data,
        # IMDSv2 only; tags in metadata so the boot gate learns its generation without an API call.
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpEndpoint": "enabled",
            "InstanceMetadataTags": "enabled",
        },
        # The stack lets swr fence and terminate only what carries the app's tag, so every
        # resource the replacement is made of is tagged at creation.
        "TagSpecifications": [
            {"ResourceType": kind, "Tags": tag_list} for kind in ("instance", "volume", "network-interface")
        ],
    }
    if block_devices:
        request["BlockDeviceMappings"] = block_devices
    if spec.instance_profile_arn:
        request["IamInstanceProfile"] = {"Arn": spec.instance_profile_arn}
    if spec.key_name:
        request["KeyName"] = spec.key_name
    return request


def _run(request: dict[str, Any], candidate: LaunchCandidate) -> dict[str, Any]:
    with api_call(f"launch {candidate.instance_type} in {candidate.subnet_id}", keep=CAPACITY_CODES):
        return dict(client("ec2").run_instances(**request)["Instances"][0])


def launch_apps(value: str | None) -> list[str]:
    return (value or "").split()


def with_launch_app(value: str | None, app: str) -> str:
    """The swr:apps value once ``app`` may launch with the resource."""
    apps = launch_apps(value)
    return " ".join(apps if app in apps else [*apps, app])


def without_launch_app(value: str | None, app: str) -> str:
    """The swr:apps value once ``app`` may no longer; empty when no application is left."""
    return " ".join(a for a in launch_apps(value) if a != app)
