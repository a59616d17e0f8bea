"""``swr unregister``: release an application from swr's protection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from handlers.core import watch
from handlers.core.aws import error_code
from handlers.core.errors import RecordConflict
from handlers.core.fence.instances import NOT_FOUND as INSTANCE_NOT_FOUND
from handlers.core.launching import APP_TAG, GENERATION_TAG, LAUNCH_APPS_TAG
from handlers.core.record import AppRecord, AppState
from handlers.core.record_store import RecordStore
from swr.ops.common import Client, FailoverInProgress, OnboardingError, count, require_record, rules_of, tag_dict
from swr.ops.onboarding.ami import launch_resources, unmark_for_launches
from swr.ops.onboarding.tags import ALLOWED, subnet_app_tag, target_group_tags
from swr.stack import StackOutputs


@dataclass(frozen=True)
class UnregisterResult:
    actions: list[str]
    leftovers: list[str] = field(default_factory=list)  # clean-up that failed after the record went


def unregister(client: Client, stack: StackOutputs, app: str, *, force: bool = False) -> UnregisterResult:
    """Remove the application's record, then its alarms and the swr tags registration put on
    its subnets, target groups and current instance (the instance keeps running, with the
    stack's security group and instance profile). The record goes first, with a condition
    on its version: once it is gone no failover can start, and a failover that started
    meanwhile makes this one fail instead of racing it. Clean-up that fails after that is
    reported in ``leftovers``."""
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    record = require_record(store, app)
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
        actions.append(f"removed {subnet_app_tag(app)} from {count(subnet_ids, 'subnet')}")
    untagged = attempt("untag the current instance", lambda: _untag_instance(ec2, app, record.current_instance_id))
    if untagged:
        actions.append(f"removed {APP_TAG} and {GENERATION_TAG} from {', '.join(untagged)}")
    groups = attempt("untag the target groups", lambda: _untag_target_groups(client("elbv2"), app, record))
    if groups:
        actions.append(f"removed {APP_TAG} from {count(groups, 'target group')}")
    file_system = record.efs.file_system_id
    if attempt("untag the file system", lambda: _untag_file_system(client("efs"), app, file_system)):
        actions.append(f"removed {APP_TAG} from file system {file_system}")
    marked = launch_resources(record, stack)
    unmarked = attempt("unmark the AMI and security groups", lambda: unmark_for_launches(ec2, app, marked))
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
    tags = target_group_tags(elbv2, record.target_group_arns)
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
    if tag_dict(described[0].get("Tags")).get(APP_TAG) != app:
        return []
    efs.untag_resource(ResourceId=file_system_id, TagKeys=[APP_TAG])
    return [file_system_id]


def _untag_instance(ec2: Any, app: str, instance_id: str) -> list[str]:
    """Remove the swr tags from the instance (and its interfaces and volumes) if they name
    this application; an instance that is gone has nothing to remove."""
    try:
        found = [i for r in ec2.describe_instances(InstanceIds=[instance_id])["Reservations"] for i in r["Instances"]]
    except ClientError as error:
        if error_code(error) in INSTANCE_NOT_FOUND:
            return []
        raise
    if not found or tag_dict(found[0].get("Tags")).get(APP_TAG) != app:
        return []
    instance = found[0]
    resources = [
        instance_id,
        *(str(n["NetworkInterfaceId"]) for n in instance.get("NetworkInterfaces", [])),
        *(str(m["Ebs"]["VolumeId"]) for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")),
    ]
    ec2.delete_tags(Resources=resources, Tags=[{"Key": APP_TAG, "Value": app}, {"Key": GENERATION_TAG}])
    return resources
