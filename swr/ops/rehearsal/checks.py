"""What the facts say about a failover now: each launch candidate's chances, and the checks
a rehearsal reports (the AMI, the launch, EFS, the security groups, the target groups, the
old instance, the fence's view of the layout)."""

from __future__ import annotations

from handlers.core.launching import LaunchCandidate
from swr import fence_topology
from swr.ops.rehearsal.facts import Facts
from swr.ops.rehearsal.model import Candidate, Check, Status


def assess(facts: Facts, candidate: LaunchCandidate) -> Candidate:
    """The candidate with what the account says about it: usable, or why not."""
    reasons: list[str] = []
    az_state = facts.az_states.get(candidate.az, "unknown")
    if az_state != "available":
        reasons.append(f"AZ {candidate.az} is {az_state}")
    if (candidate.az, candidate.instance_type) not in facts.offered:
        reasons.append(f"{candidate.instance_type} is not offered in {candidate.az}")
    subnet = facts.subnets.get(candidate.subnet_id)
    if subnet is None:
        reasons.append(f"subnet {candidate.subnet_id} not found")
    elif int(subnet.get("AvailableIpAddressCount", 0)) < 1:
        reasons.append(f"subnet {candidate.subnet_id} has no free IP address")
    return Candidate(
        az=candidate.az,
        instance_type=candidate.instance_type,
        subnet_id=candidate.subnet_id,
        usable=not reasons,
        note="; ".join(reasons),
    )


def checks(facts: Facts, candidates: list[Candidate]) -> list[Check]:
    """Everything but the permissions, in the order a rehearsal reports them."""
    return [
        _image_check(facts),
        *_launch_checks(facts, candidates),
        *_efs_checks(facts, candidates),
        *_group_checks(facts),
        *_target_group_checks(facts),
        _old_instance_check(facts),
        *_fence_checks(facts),
    ]


def _fence_checks(facts: Facts) -> list[Check]:
    if facts.old is None or facts.file_system_problem:
        return []
    found = fence_topology.check(
        facts.client, facts.old, facts.record.efs.file_system_id, facts.record.target_group_arns
    )
    return [Check(name=f"fence: {f.subject}", status=Status.WARNING, detail=f.detail) for f in found]


def _image_check(facts: Facts) -> Check:
    image_id = facts.record.launch_spec.image_id
    if facts.image is None:
        return Check(
            name="ami",
            status=Status.PROBLEM,
            detail=f"AMI {image_id} does not exist (deregistered?): make a new one with"
            f" `swr ami refresh {facts.record.app}`",
        )
    state = facts.image.get("State", "unknown")
    if state != "available":
        return Check(name="ami", status=Status.PROBLEM, detail=f"AMI {image_id} is {state}, not available")
    return Check(name="ami", status=Status.OK, detail=f"AMI {image_id} ({facts.image.get('Name', '')}) is available")


def _launch_checks(facts: Facts, candidates: list[Candidate]) -> list[Check]:
    if not candidates:
        return [
            Check(
                name="launch candidates",
                status=Status.PROBLEM,
                detail=f"no AZ other than {facts.record.current_az} among the registered subnets",
            )
        ]
    usable = [c for c in candidates if c.usable]
    skipped = [f"{c.instance_type} in {c.az}: {c.note}" for c in candidates if not c.usable]
    if not usable:
        return [
            Check(
                name="launch candidates",
                status=Status.PROBLEM,
                detail="no candidate can launch: " + "; ".join(skipped),
            )
        ]
    first = usable[0]
    subnet = facts.subnets[first.subnet_id]
    detail = (
        f"{first.instance_type} is offered in {first.az} (available); subnet {first.subnet_id} has"
        f" {subnet.get('AvailableIpAddressCount')} free IP addresses"
    )
    if candidates[0] is not first:
        return [
            Check(
                name="launch candidates",
                status=Status.WARNING,
                detail=f"first choice skipped ({'; '.join(skipped[: candidates.index(first)])}); {detail}",
            )
        ]
    return [Check(name="launch candidates", status=Status.OK, detail=detail)]


def _efs_checks(facts: Facts, candidates: list[Candidate]) -> list[Check]:
    file_system = facts.record.efs.file_system_id
    if facts.file_system_problem:
        return [Check(name="efs", status=Status.PROBLEM, detail=facts.file_system_problem)]
    checks = []
    for az in dict.fromkeys(c.az for c in candidates):
        target = facts.mount_targets.get(az)
        if target is None:
            checks.append(
                Check(
                    name=f"efs mount target {az}",
                    status=Status.PROBLEM,
                    detail=f"{file_system} has no mount target in {az}: a replacement there cannot mount"
                    f" its data; create one (aws efs create-mount-target) or remove {az}'s subnet",
                )
            )
        elif target.get("LifeCycleState") != "available":
            checks.append(
                Check(
                    name=f"efs mount target {az}",
                    status=Status.PROBLEM,
                    detail=f"{target['MountTargetId']} of {file_system} in {az} is {target.get('LifeCycleState')}",
                )
            )
        else:
            checks.append(
                Check(
                    name=f"efs mount target {az}",
                    status=Status.OK,
                    detail=f"{target['MountTargetId']} ({target.get('IpAddress', '?')}) is available",
                )
            )
    return checks


def _group_checks(facts: Facts) -> list[Check]:
    checks = []
    blackhole = facts.record.blackhole_security_group_id
    if blackhole not in facts.groups:
        checks.append(
            Check(name="blackhole group", status=Status.PROBLEM, detail=f"security group {blackhole} not found")
        )
    elif blackhole != facts.stack.BlackholeSecurityGroupId:
        checks.append(
            Check(
                name="blackhole group",
                status=Status.PROBLEM,
                detail=f"the record names {blackhole}, the stack's is {facts.stack.BlackholeSecurityGroupId}:"
                " the fence may only use the stack's; register the application again",
            )
        )
    else:
        checks.append(Check(name="blackhole group", status=Status.OK, detail=f"{blackhole} exists"))
    missing = [g for g in facts.record.launch_spec.security_group_ids if g not in facts.groups]
    checks.append(
        Check(name="launch security groups", status=Status.PROBLEM, detail=f"not found: {', '.join(missing)}")
        if missing
        else Check(
            name="launch security groups",
            status=Status.OK,
            detail=", ".join(facts.record.launch_spec.security_group_ids) + " exist",
        )
    )
    if facts.instance_profile_problem:
        checks.append(Check(name="instance profile", status=Status.PROBLEM, detail=facts.instance_profile_problem))
    return checks


def _target_group_checks(facts: Facts) -> list[Check]:
    checks = []
    for arn, tags in facts.target_groups.items():
        short = arn.rsplit(":", 1)[-1]
        if tags is None:
            checks.append(Check(name=f"target group {short}", status=Status.PROBLEM, detail=f"{arn} not found"))
        else:
            where = "registered" if arn in facts.registered_in else "not registered"
            checks.append(
                Check(name=f"target group {short}", status=Status.OK, detail=f"exists; the old instance is {where}")
            )
    return checks


def _old_instance_check(facts: Facts) -> Check:
    instance_id = facts.record.current_instance_id
    if facts.old is None:
        return Check(
            name="old instance",
            status=Status.WARNING,
            detail=f"{instance_id} does not exist: the fence would find nothing to isolate",
        )
    return Check(
        name="old instance",
        status=Status.OK,
        detail=f"{instance_id} is {facts.old_state} in {facts.record.current_az} with"
        f" {len(facts.interfaces)} network interface(s)",
    )
