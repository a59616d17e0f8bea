"""ReleaseFences: undo what a fence holds once it is safe to, without the lease.

- Deny entries for an instance's addresses go once it is terminated (or gone): its addresses
  return to the subnet and would cut off the next instance given one of them. A stopped instance
  keeps its addresses, and its entries stay.
- A mount target deleted in the instance's subnet is created again once the instance can open
  no new NFS session: powered off, or every interface in the blackhole group (a new connection
  is evaluated against the group's rules, and it has none). Until then its AZ has no mount target.
- A fence that holds nothing is dropped from the record, unless a failover in progress still
  needs its proof for the permit.

Run after a failover is finalised, and when EC2 reports a fenced instance terminated or stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from handlers.core import watch
from handlers.core.errors import AwsThrottled, AwsUnavailable
from handlers.core.fence import instances, mount_targets, network_acls
from handlers.core.record import AclEntry, AppRecord, Fence, RemovedMountTarget
from handlers.core.record_store import RecordStore
from handlers.core.steps import ReleaseInput, ReleaseReport


def release(request: ReleaseInput, store: RecordStore) -> ReleaseReport:
    record = store.require(request.app)
    report = ReleaseReport()
    undone = {fence.instance_id: _release(fence, report) for fence in record.fences}
    if not undone:
        return report

    def apply(r: AppRecord) -> None:
        # Change only what was undone: a failover in progress may have written the fences since
        # they were read (its confirmation among them).
        in_progress = r.lease.holder if r.lease is not None else None
        kept = []
        for fence in r.fences:
            entries, targets, state = undone.get(fence.instance_id, ([], [], fence.instance_state))
            left = fence.model_copy(
                update={
                    "acl_entries": [e for e in fence.acl_entries if e not in entries],
                    "removed_mount_targets": [m for m in fence.removed_mount_targets if m not in targets],
                    "instance_state": state,  # as seen now, for the operator reading the record
                }
            )
            if left.holds_anything or fence.instance_id not in undone or fence.execution == in_progress:
                kept.append(left)
        r.fences = kept

    watch.follow(store.update(request.app, apply))
    return report


def _release(fence: Fence, report: ReleaseReport) -> tuple[list[AclEntry], list[RemovedMountTarget], str]:
    """Undo what is safe to undo now; what was undone, and the instance's state."""
    instance = instances.describe(fence.instance_id)
    state = instances.state(instance)
    entries: list[AclEntry] = []
    targets: list[RemovedMountTarget] = []
    if state in ("terminated", instances.GONE):
        for entry in fence.acl_entries:
            what = f"remove {entry.network_acl_id} rule {entry.rule_number} ({entry.cidr})"
            if _done(report, what, network_acls.remove, entry):
                entries.append(entry)
    removed = fence.removed_mount_targets
    if removed and (state in instances.POWERED_OFF or _blackholed(instance, fence)):
        standing = {t.get("AvailabilityZoneName"): t for t in mount_targets.of(removed[0].file_system_id)}
        for target in removed:
            current = standing.get(target.az)
            if current is not None and current.get("LifeCycleState") == "deleting":
                continue  # the old one is still going; its AZ can hold one mount target
            what = f"create the mount target in {target.subnet_id} again"
            if current is not None or _done(report, what, mount_targets.recreate, target):
                targets.append(target)
    held_entries = [e for e in fence.acl_entries if e not in entries]
    held_targets = [m for m in removed if m not in targets]
    if held_entries or held_targets:
        report.held.append(_holding(fence.instance_id, state, held_entries, held_targets))
    elif fence.holds_anything:
        report.released.append(f"the fence of {fence.instance_id} ({state}) holds nothing any more")
    return entries, targets, state


def _blackholed(instance: Mapping[str, Any] | None, fence: Fence) -> bool:
    interfaces = (instance or {}).get("NetworkInterfaces", [])
    return bool(interfaces) and all(
        [g["GroupId"] for g in eni.get("Groups", [])] == [fence.security_group_id] for eni in interfaces
    )


def _done(report: ReleaseReport, what: str, action: Any, argument: Any) -> bool:
    try:
        result = action(argument)
    except (AwsThrottled, AwsUnavailable, ClientError) as error:
        report.held.append(f"{what}: {error}")
        return False
    report.released.append(result if isinstance(result, str) else what)
    return True


def _holding(instance_id: str, state: str, entries: list[Any], removed: list[Any]) -> str:
    held = [f"{len(entries)} network ACL deny entries"] if entries else []
    held += [f"mount target {r.mount_target_id} deleted in {r.subnet_id}" for r in removed]
    why = "until it is terminated" if entries else "until it can open no new NFS session"
    return f"the fence of {instance_id} ({state}) still holds {', '.join(held)}, {why}"
