"""The EFS mount targets of the application's file system, and the one a fence deletes.

A mount target in the fenced instance's own subnet is beyond any network ACL (traffic inside a
subnet is not evaluated). EFS API, DeleteMountTarget: "This operation forcibly breaks any mounts
of the file system by using the mount target that is being deleted ... Uncommitted writes might
be lost, but breaking a mount target using this operation does not corrupt the file system
itself." It "returns while the mount target state is still deleting": the mounts count as broken
once DescribeMountTargets no longer lists it. One mount target per AZ: the fenced instance's AZ
has none until swr creates it again, which waits until the instance can open no new session
(its interfaces in the blackhole group, or it is powered off).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client, error_code
from handlers.core.record import RemovedMountTarget

GONE_CODES = frozenset({"MountTargetNotFound"})


def of(file_system_id: str) -> list[dict[str, Any]]:
    efs = client("efs")
    found: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        request: dict[str, Any] = {"FileSystemId": file_system_id}
        if marker:
            request["Marker"] = marker
        with api_call(f"read the mount targets of {file_system_id}"):
            page = efs.describe_mount_targets(**request)
        found += [dict(target) for target in page.get("MountTargets", [])]
        marker = page.get("NextMarker")
        if not marker:
            return found


def before_removal(target: dict[str, Any]) -> RemovedMountTarget:
    """What it takes to create the mount target again, read before it is deleted (and written to
    the record before, so that a step that dies after the delete still knows)."""
    with api_call(f"read the security groups of {target['MountTargetId']}"):
        groups = client("efs").describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])[
            "SecurityGroups"
        ]
    return RemovedMountTarget(
        mount_target_id=str(target["MountTargetId"]),
        file_system_id=str(target["FileSystemId"]),
        subnet_id=str(target["SubnetId"]),
        az=str(target.get("AvailabilityZoneName", "")),
        security_groups=[str(g) for g in groups],
    )


def delete(mount_target_id: str) -> None:
    with api_call(f"delete mount target {mount_target_id}"):
        try:
            client("efs").delete_mount_target(MountTargetId=mount_target_id)
        except ClientError as error:
            if error_code(error) not in GONE_CODES:
                raise


def recreate(removed: RemovedMountTarget) -> str:
    """Create the mount target again in its subnet; say what was done."""
    request: dict[str, Any] = {"FileSystemId": removed.file_system_id, "SubnetId": removed.subnet_id}
    if removed.security_groups:
        request["SecurityGroups"] = removed.security_groups
    with api_call(f"create a mount target for {removed.file_system_id} in {removed.subnet_id}"):
        created = client("efs").create_mount_target(**request)
    return f"mount target {created['MountTargetId']} created again in {removed.subnet_id} ({removed.az})"
