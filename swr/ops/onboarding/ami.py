"""The AMI replacements launch from: made from the current instance (at registration or by
``swr ami refresh``), and the ``swr:apps`` tag that marks an AMI and security groups as ones
the application's launches may use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.core.errors import RecordConflict
from handlers.core.launching import APP_TAG, LAUNCH_APPS_TAG, with_launch_app, without_launch_app
from handlers.core.record import AppRecord, AppState
from handlers.core.record_store import RecordStore
from swr.ops.common import Client, FailoverInProgress, OnboardingError, require_record, tag_dict
from swr.ops.onboarding._undo import Undo
from swr.stack import StackOutputs

IMAGE_WAIT = {"Delay": 15, "MaxAttempts": 120}  # AMIs of large volumes take a while: up to 30 min


class AmiRefreshFailed(OnboardingError):
    """A new AMI could not be recorded; the image made for it was removed again."""


@dataclass(frozen=True)
class AmiRefreshResult:
    record: AppRecord
    image_id: str
    previous_image_id: str


def refresh_ami(client: Client, stack: StackOutputs, app: str) -> AmiRefreshResult:
    """Make a new AMI from the application's current instance and launch replacements from it."""
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    record = require_record(store, app)
    if record.state is AppState.SWITCHING:
        raise FailoverInProgress(f"a failover of {app} is running: refresh the AMI once it has ended")
    ec2 = client("ec2")
    image_id = create_image(ec2, app, record.current_instance_id)
    updated = record.model_copy(update={"launch_spec": record.launch_spec.model_copy(update={"image_id": image_id})})
    try:
        stored = store.save(updated)
    except RecordConflict:
        # A failover (or another refresh) wrote meanwhile: the image may be of an instance that
        # is no longer current, so it is not recorded.
        delete_image(ec2, image_id)
        raise AmiRefreshFailed(
            f"the record of {app} changed while image {image_id} was made; the image was removed, run the command again"
        ) from None
    return AmiRefreshResult(record=stored, image_id=image_id, previous_image_id=record.launch_spec.image_id)


def launch_resources(record: AppRecord, stack: StackOutputs) -> list[str]:
    """What the launch role checks for the application's swr:apps mark: the AMI and the
    launch's security groups (the stack's own group carries it from the template)."""
    return [
        record.launch_spec.image_id,
        *(g for g in record.launch_spec.security_group_ids if g != stack.ProtectedInstanceSecurityGroupId),
    ]


def _launch_tags(ec2: Any, resources: list[str]) -> dict[str, str | None]:
    """Each AMI's and security group's swr:apps value (None: untagged)."""
    found: dict[str, str | None] = {}
    images = [r for r in resources if r.startswith("ami-")]
    groups = [r for r in resources if r.startswith("sg-")]
    for image in ec2.describe_images(ImageIds=images)["Images"] if images else []:
        found[str(image["ImageId"])] = tag_dict(image.get("Tags")).get(LAUNCH_APPS_TAG)
    for group in ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"] if groups else []:
        found[str(group["GroupId"])] = tag_dict(group.get("Tags")).get(LAUNCH_APPS_TAG)
    return found


def mark_for_launches(ec2: Any, app: str, resources: list[str], undo: Undo) -> list[str]:
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


def unmark_for_launches(ec2: Any, app: str, resources: list[str]) -> list[str]:
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


def create_image(ec2: Any, app: str, instance_id: str, undo: Undo | None = None) -> str:
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
        undo.add(f"deregister image {image_id}", lambda: delete_image(ec2, image_id))
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=IMAGE_WAIT)
    return image_id


def delete_image(ec2: Any, image_id: str) -> None:
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
