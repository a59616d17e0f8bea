"""ConfirmFence: is every instance the failover replaces cut off from the shared data and the
clients, by means AWS documents as cutting established connections? Read from AWS as it stands
now, never from what swr meant to do.

An instance is cut off when it is powered off (stopped or terminated), when an operator has
said it is down (``swr resume --confirm-fenced``), or when every path is:

- each EFS mount target: deleted and gone, or in another subnet whose network ACL denies the
  instance's addresses first (a mount target in the instance's own subnet is beyond any ACL).
  A deny is relied on only while the API of the mount target's AZ answers swr: an AZ that does
  not answer calls about its resources may not have the rule either (nothing documents how ACL
  changes reach an impaired AZ, so swr does not count on it);
- each target group it was a target of: deregistered, and the load balancer closed what was
  left (swr/fence/target_groups.py).

When every instance is cut off, the proof goes to the record (the permit checks it). When one
is not by its fence's deadline, the failover fails closed with what was not cut and why.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.core import clock, lease
from handlers.core.errors import AwsThrottled, AwsUnavailable, FenceNotConfirmed
from handlers.core.fence import instances, mount_targets, network_acls, target_groups
from handlers.core.record import AppRecord, Fence
from handlers.core.record_store import RecordStore
from handlers.core.steps import CutOffRound, FenceInput, FenceReport, InstanceCut, PathCut

ROUND_SECONDS = 5
MAX_ROUND_SECONDS = 30


def confirm(request: FenceInput, store: RecordStore) -> FenceReport:
    record = lease.require(store.get(request.app), request.execution)
    try:
        targets = mount_targets.of(record.efs.file_system_id)
        acls = network_acls.of_subnets(sorted({str(t["SubnetId"]) for t in targets}))
        cuts = [_judge(record, instance_id, targets, acls) for instance_id in request.plan.to_fence]
    except (AwsThrottled, AwsUnavailable) as error:
        # An impaired API proves nothing either way: not confirmed this round, the deadline holds.
        cuts = [
            InstanceCut(instance_id=i, state="unknown", cut=False, note=f"could not be read: {error}")
            for i in request.plan.to_fence
        ]
    rounds = (request.fence.rounds if request.fence else 0) + 1
    impaired = any(c.state == "unknown" for c in cuts) or any(
        (fence := record.fence_of(i)) is not None and fence.unanswered for i in request.plan.to_fence
    )
    impaired_rounds = (request.fence.impaired_rounds if request.fence else 0) + 1 if impaired else 0
    if all(c.cut for c in cuts):
        now = clock.now()

        def proven(r: AppRecord) -> None:
            for cut in cuts:
                fence = r.fence_of(cut.instance_id)
                if fence is not None:
                    fence.confirmed_at, fence.confirmed_in = now, request.execution
                    fence.instance_state = cut.state
                    fence.cut = [cut.note] if cut.note else [f"{p.path}: {p.how}" for p in cut.paths]

        lease.update(store, request.app, request.execution, proven)
        return FenceReport(instances=cuts, confirmed=True, confirmed_at=now, rounds=rounds)
    late = [c for c in cuts if not c.cut and _past_deadline(record, c.instance_id)]
    if late:
        raise FenceNotConfirmed(_cause(record, late))
    return FenceReport(
        instances=cuts,
        confirmed=False,
        rounds=rounds,
        impaired_rounds=impaired_rounds,
        next_round_in=next_round_in(impaired_rounds),
        cut_again=cut_again(request.cutoff, cuts),
    )


def cut_again(cutoff: CutOffRound | None, cuts: list[InstanceCut]) -> bool:
    """Whether the next round starts with CutOffInstances. Not when its last round had nothing
    fail and all that is left is AWS completing what it asked for: the instance shutting down
    (terminate accepted; CutOffInstances leaves such an instance alone) and each path not cut yet
    settling (clients draining, a mount target deleting). Another CutOffInstances round would only
    ask for each again, a dozen calls to an API that may be struggling. Anything else uncut, an
    instance not read, or a part that failed last round: cut again. Skipping a round proves
    nothing: a shutting-down instance may still run for hours (EC2 troubleshooting guide,
    "Delayed instance termination", see instances.py) and a draining target keeps its clients
    until the delay ends (ELB guides, "Deregistration delay", see target_groups.py); only the
    re-asking stops, the reading goes on every round."""
    if cutoff is None or any(c.problems for c in cutoff.instances):
        return True
    return any(
        not cut.cut
        and (cut.state != "shutting-down" or not cut.paths or any(not p.cut and not p.settling for p in cut.paths))
        for cut in cuts
    )


def next_round_in(impaired_rounds: int) -> int:
    """Seconds until the next round: every 5 s while AWS answers (or after one round it did
    not), then twice as long per round it still does not, up to 30 s. Each round calls an API that
    is not answering about the instance (its AZ impaired) several times over; AWS Well-Architected
    REL05-BP03 ("uncontrolled retries turn a small impairment into a large one") asks for
    exponential backoff. No jitter: one execution per application runs this loop, so rounds of
    different clients do not fall into step. The deadline is unchanged: it is counted from the
    fence's start, not in rounds."""
    if impaired_rounds <= 1:
        return ROUND_SECONDS
    return int(min(MAX_ROUND_SECONDS, ROUND_SECONDS * 2 ** (impaired_rounds - 1)))


def _judge(
    record: AppRecord, instance_id: str, targets: list[dict[str, Any]], acls: dict[str, network_acls.Acl]
) -> InstanceCut:
    state = instances.state_of(instance_id)
    fence = record.fence_of(instance_id)
    if state in instances.POWERED_OFF:
        return InstanceCut(instance_id=instance_id, state=state, cut=True, note=f"powered off ({state})")
    if fence is not None and fence.operator is not None:
        o = fence.operator
        note = f"{o.by} confirmed it down at {o.at.isoformat(timespec='seconds')}: {o.reason}"
        return InstanceCut(instance_id=instance_id, state=state, cut=True, note=note)
    if fence is None:
        return InstanceCut(instance_id=instance_id, state=state, cut=False, note="not fenced yet")
    paths = [_efs_path(fence, t, acls) for t in targets] + [
        _gone_mount_target(r.mount_target_id)
        for r in fence.removed_mount_targets
        if not any(t["MountTargetId"] == r.mount_target_id for t in targets)
    ]
    for arn in record.target_group_arns:
        if arn in fence.registered_in:
            clients = target_groups.clients_cut(instance_id, arn)
        else:
            clients = target_groups.ClientsPath(True, f"never a target of {target_groups.name_of(arn)} while fenced")
        paths.append(
            PathCut(
                path=f"clients via {target_groups.name_of(arn)}",
                cut=clients.cut,
                how=clients.how,
                settling=clients.settling,
            )
        )
    return InstanceCut(instance_id=instance_id, state=state, cut=all(p.cut for p in paths), paths=paths)


def _efs_path(fence: Fence, target: dict[str, Any], acls: dict[str, network_acls.Acl]) -> PathCut:
    name = f"efs via {target['MountTargetId']} ({target.get('IpAddress', '?')})"
    if target.get("LifeCycleState") == "deleting":
        return PathCut(path=name, cut=False, how="deleting: its mounts break once it is gone", settling=True)
    if target["SubnetId"] == fence.subnet_id:
        return PathCut(
            path=name,
            cut=False,
            how=f"in {fence.instance_id}'s own subnet {fence.subnet_id}, where no network ACL sees the NFS session;"
            " only deleting it cuts that",
        )
    ipv6 = [a for a in fence.addresses if ":" in a]
    if ipv6:
        return PathCut(path=name, cut=False, how=f"swr adds no IPv6 entries, and it has {', '.join(ipv6)}")
    acl = acls.get(str(target["SubnetId"]))
    denials = [acl.cuts(a) if acl else None for a in fence.addresses]
    if acl is None or not fence.addresses or any(rule is None for rule in denials):
        where = f"network ACL {acl.acl_id if acl else '?'} of {target['SubnetId']}"
        return PathCut(path=name, cut=False, how=f"{where} lets {', '.join(fence.addresses) or 'it'} reach it")
    rules = ", ".join(sorted({str(rule.number) for rule in denials if rule is not None}))
    if fence.unanswered and target.get("AvailabilityZoneName") == fence.az:
        return PathCut(
            path=name,
            cut=False,
            how=f"network ACL {acl.acl_id} denies it (rule {rules}), but {fence.az} does not answer"
            f" ({fence.unanswered}): swr does not count on the rule reaching that AZ",
        )
    return PathCut(
        path=name, cut=True, how=f"network ACL {acl.acl_id} of {target['SubnetId']} denies it (rule {rules})"
    )


def _gone_mount_target(mount_target_id: str) -> PathCut:
    return PathCut(
        path=f"efs via {mount_target_id}",
        cut=True,
        how="deleted: DeleteMountTarget broke the mounts made through it",
    )


def _past_deadline(record: AppRecord, instance_id: str) -> bool:
    fence = record.fence_of(instance_id)
    started = fence.started_at if fence else clock.now()
    return clock.now() >= started + timedelta(seconds=record.fence_timeout_seconds)


def _cause(record: AppRecord, late: list[InstanceCut]) -> str:
    parts = []
    for cut in late:
        fence = record.fence_of(cut.instance_id)
        uncut = "; ".join(f"{p.path}: {p.how}" for p in cut.paths if not p.cut) or cut.note
        tried = "; ".join(fence.attempts) if fence and fence.attempts else "nothing failed"
        held = _held(fence)
        parts.append(
            f"{cut.instance_id} ({cut.state}) is not cut off after {record.fence_timeout_seconds} s: {uncut}."
            f" Last round: {tried}. It stays as isolated as swr got it{held}"
        )
    instance_ids = " ".join(c.instance_id for c in late)
    return (
        " | ".join(parts)
        + f". No replacement was permitted. If you have confirmed by other means that {instance_ids} is down,"
        f" run: swr resume {record.app} --confirm-fenced --reason '...'"
    )


def _held(fence: Fence | None) -> str:
    if fence is None:
        return ""
    held = [f"{len(fence.acl_entries)} network ACL deny entries"] if fence.acl_entries else []
    held += [f"mount target {r.mount_target_id} deleted" for r in fence.removed_mount_targets]
    if fence.isolated_at:
        held.append(f"interfaces in {fence.security_group_id}")
    return f" ({', '.join(held)})" if held else ""
