"""CutOffInstances: one round of cutting every instance the failover replaces off from the
shared data and the clients, by every means AWS documents, each idempotent and each tried
again next round when it did not work.

For each instance: out of its target groups; deny entries for its addresses in the network ACLs
of the mount targets' subnets; the mount target in its own subnet deleted; its interfaces into
the blackhole group (no new connection); then powered off, terminate first and a forced stop
when terminate is refused. What the round did and what failed goes to the record's fence of the
instance, and what is about to be made (a deny entry, a deleted mount target) goes there first,
so that it can be undone even if this step dies half-way. Nothing here decides that the
instance is cut off: ConfirmFence does, from what AWS reports afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from handlers.core import clock, lease
from handlers.core.aws import error_code
from handlers.core.errors import AwsThrottled, AwsUnavailable
from handlers.core.fence import instances, mount_targets, network_acls, security_groups, target_groups
from handlers.core.record import AclEntry, AppRecord, Fence
from handlers.core.record_store import RecordStore
from handlers.core.steps import CutOff, CutOffRound, FenceInput

ACL_REFUSALS = frozenset({"NetworkAclEntryLimitExceeded", "NetworkAclEntryAlreadyExists"})
LIVE_MOUNT_TARGET = frozenset({"available", "creating", "updating"})


def cut_off(request: FenceInput, store: RecordStore) -> CutOffRound:
    record = lease.require(store.get(request.app), request.execution)
    rounds = []
    for instance_id in request.plan.to_fence:
        try:
            # Read afresh for each instance: what the last one's round deleted counts.
            targets = mount_targets.of(record.efs.file_system_id)
            cut = _cut_off(request, store, record, instance_id, targets)
        except (AwsThrottled, AwsUnavailable) as error:  # an impaired API: the next round tries again
            cut = CutOff(instance_id=instance_id, state="unknown", problems=[str(error)])
        rounds.append(cut)
    return CutOffRound(instances=rounds)


def _cut_off(
    request: FenceInput, store: RecordStore, record: AppRecord, instance_id: str, targets: list[dict[str, Any]]
) -> CutOff:
    instance = instances.describe(instance_id)
    state = instances.state(instance)
    known = record.fence_of(instance_id)
    if known is not None and known.subnet_id:
        fence = known
        if known.execution != request.execution:  # held since an earlier failover: this one's now
            fence = known.model_copy(update={"execution": request.execution, "started_at": clock.now()})
    else:
        fence = _new_fence(record, request.execution, instance_id, instance)
        if known is not None:  # an operator's confirmation came before swr read the instance
            fence = fence.model_copy(update={"operator": known.operator, "started_at": known.started_at})
    round_ = CutOff(instance_id=instance_id, state=state)
    fence = fence.model_copy(update={"instance_state": state})
    if instance is None or state == "terminated":
        round_.done.append(f"{instance_id} is {state}: nothing left to cut")
        _save(store, request, fence.model_copy(update={"attempts": []}), known)
        return round_

    # Written before anything is made, so that it can be undone whatever happens next.
    fence, acls = _plan(fence, instance_id, targets, round_)
    stored = known
    if known is None or fence.model_copy(update={"instance_state": known.instance_state}) != known:
        _save(store, request, fence, known)
        stored = fence

    if instances.fenced_by(instance) == request.execution:
        round_.done.append(f"{instance_id} is tagged as fenced by this failover")
    else:
        _try(
            round_, fence, f"tag {instance_id} as fenced", lambda: instances.tag_fenced(instance_id, request.execution)
        )
    _try(
        round_,
        fence,
        f"deregister {instance_id} from its target groups",
        lambda: target_groups.deregister(instance_id, record.target_group_arns),
    )
    fence = _make_acl_entries(fence, acls, round_)
    for removed in fence.removed_mount_targets:
        _try(
            round_,
            fence,
            f"delete mount target {removed.mount_target_id} in {instance_id}'s subnet",
            lambda removed=removed: mount_targets.delete(removed.mount_target_id),
        )
    if fence.isolated_at is None:
        isolated = _try(
            round_,
            fence,
            f"move {instance_id}'s interfaces into {fence.security_group_id}",
            lambda: security_groups.blackhole(instance, fence.security_group_id),
        )
        if isolated is True:
            fence = fence.model_copy(update={"isolated_at": clock.now()})
    fence = _power_off(fence, instance_id, state, round_)
    _save(store, request, fence.model_copy(update={"attempts": list(round_.problems)}), stored)
    return round_


def _new_fence(record: AppRecord, execution: str, instance_id: str, instance: Mapping[str, Any] | None) -> Fence:
    ipv4, ipv6 = instances.addresses(instance) if instance else ([], [])
    serving = target_groups.serving_in(instance_id, record.target_group_arns) if instance else []
    return Fence(
        instance_id=instance_id,
        execution=execution,
        az=str(instance["Placement"]["AvailabilityZone"]) if instance else "",
        subnet_id=str(instance.get("SubnetId", "")) if instance else "",
        addresses=[*ipv4, *ipv6],
        started_at=clock.now(),
        security_group_id=record.blackhole_security_group_id,
        registered_in=serving,
    )


def _plan(
    fence: Fence, instance_id: str, targets: list[dict[str, Any]], round_: CutOff
) -> tuple[Fence, dict[str, network_acls.Acl]]:
    """The deny entries still missing and the mount target to delete, recorded before made;
    with the network ACLs of the mount targets' subnets as they stand now."""
    peers = sorted({str(t["SubnetId"]) for t in targets if t["SubnetId"] != fence.subnet_id})
    acls = {acl.acl_id: acl for acl in network_acls.of_subnets(peers).values()}
    # Keep only the recorded entries that stand (one made by a step that died before it ran
    # is planned again below).
    standing = [e for e in fence.acl_entries if _stands(acls.get(e.network_acl_id), e)]
    planned = list(standing)
    for acl in acls.values():
        taken = {e.rule_number for e in planned if e.network_acl_id == acl.acl_id}
        for address in (a for a in fence.addresses if ":" not in a):
            for egress in acl.needs(address):
                if any(
                    e.network_acl_id == acl.acl_id and e.egress == egress and e.cidr == f"{address}/32" for e in planned
                ):
                    continue
                number = acl.free_number(egress, address, taken)
                if number is None:
                    round_.problems.append(
                        f"no rule number in {acl.acl_id} comes before the rule that allows {address}: no deny entry"
                    )
                    continue
                taken.add(number)
                planned.append(
                    AclEntry(network_acl_id=acl.acl_id, rule_number=number, egress=egress, cidr=f"{address}/32")
                )
    removed = list(fence.removed_mount_targets)
    for target in targets:
        in_own_subnet = target["SubnetId"] == fence.subnet_id
        known = any(r.mount_target_id == target["MountTargetId"] for r in removed)
        if in_own_subnet and not known and target.get("LifeCycleState") in LIVE_MOUNT_TARGET:
            removed.append(mount_targets.before_removal(target))
            round_.done.append(
                f"mount target {target['MountTargetId']} shares {instance_id}'s subnet {fence.subnet_id}, where no"
                " network ACL sees the NFS session: deleting it"
            )
    return fence.model_copy(update={"acl_entries": planned, "removed_mount_targets": removed}), acls


def _stands(acl: network_acls.Acl | None, entry: AclEntry) -> bool:
    return acl is not None and any(
        r.number == entry.rule_number and r.egress == entry.egress and r.cidr == entry.cidr and not r.allow
        for r in acl.rules
    )


def _make_acl_entries(fence: Fence, acls: dict[str, network_acls.Acl], round_: CutOff) -> Fence:
    """Create the planned entries that do not stand yet; keep on record only those that do."""
    kept: list[AclEntry] = []
    for entry in fence.acl_entries:
        if _stands(acls.get(entry.network_acl_id), entry):
            kept.append(entry)
            continue
        way = "outbound to" if entry.egress else "inbound from"
        try:
            network_acls.create(entry)
        except ClientError as error:
            code = error_code(error)
            round_.problems.append(
                f"deny {way} {entry.cidr} in {entry.network_acl_id}: {code if code in ACL_REFUSALS else error}"
            )
            continue  # not made: not swr's to remove later
        except (AwsThrottled, AwsUnavailable) as error:
            round_.problems.append(f"deny {way} {entry.cidr} in {entry.network_acl_id}: {error}")
            continue
        round_.done.append(f"network ACL {entry.network_acl_id} rule {entry.rule_number} denies {way} {entry.cidr}")
        kept.append(entry)
    return fence.model_copy(update={"acl_entries": kept})


def _power_off(fence: Fence, instance_id: str, state: str, round_: CutOff) -> Fence:
    """Terminate; a forced stop when termination is refused. Nothing while it is already going."""
    if state in instances.POWERED_OFF or state == "shutting-down" or (state == "stopping" and fence.power == "stop"):
        return fence
    if fence.power != "stop":
        try:
            instances.terminate(instance_id)
        except ClientError as error:
            if error_code(error) not in instances.TERMINATE_REFUSED:
                round_.problems.append(f"terminate {instance_id}: {error}")
                return fence
            round_.problems.append(f"terminate {instance_id} refused ({error_code(error)}): stopping it instead")
            fence = fence.model_copy(update={"power": "stop"})
        except AwsUnavailable as error:
            round_.problems.append(str(error))
            return fence.model_copy(update={"unanswered": str(error)})
        except AwsThrottled as error:
            round_.problems.append(str(error))
            return fence
        else:
            round_.done.append(f"terminate {instance_id} (forced, no OS shutdown)")
            return fence.model_copy(update={"power": "terminate", "unanswered": None})
    if state == "stopping":
        return fence
    try:
        instances.force_stop(instance_id)
    except AwsUnavailable as error:
        round_.problems.append(str(error))
        return fence.model_copy(update={"unanswered": str(error)})
    except (AwsThrottled, ClientError) as error:
        round_.problems.append(f"stop {instance_id}: {error}")
        return fence
    round_.done.append(f"stop {instance_id} (forced)")
    return fence.model_copy(update={"unanswered": None})


def _try(round_: CutOff, fence: Fence, what: str, action: Any) -> Any:
    """Run one part of the cut-off; a failure is noted, and the round goes on with the rest."""
    try:
        result = action()
    except (AwsThrottled, AwsUnavailable) as error:
        round_.problems.append(str(error))  # it says what it was about
        return None
    except ClientError as error:
        round_.problems.append(f"{what}: {error}")
        return None
    round_.done.append(what)
    return result


def _save(store: RecordStore, request: FenceInput, fence: Fence, stored: Fence | None) -> None:
    """Write the fence to the record under the lease, unless the record already holds it as is."""
    if fence == stored:
        return

    def put(record: AppRecord) -> None:
        record.fences = [f for f in record.fences if f.instance_id != fence.instance_id] + [fence]

    lease.update(store, request.app, request.execution, put)
