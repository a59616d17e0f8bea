"""What the fence relies on, checked against the account before it is needed.

The fence proves an instance cut off by means AWS documents as cutting established
connections (handlers/core/fence/): deny entries in the network ACLs of the EFS mount targets'
subnets, a mount target in the instance's own subnet deleted, deregistration from target groups
that close what is left, or the power-off. How the account is laid out decides which it can use
and how long it waits; a layout that leaves it only the power-off makes a failover wait for EC2,
and fail closed when EC2 cannot power the instance off. ``swr register`` and ``swr drill
--dry-run`` report each such finding with its fix; none stops a failover from being safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.core.fence import network_acls
from handlers.core.fence.target_groups import (
    APPLICATION_PROTOCOLS,
    CONNECTION_TERMINATION,
    DEREGISTRATION_DELAY,
    name_of,
)

RULES_PER_DIRECTION = 20  # Amazon VPC quotas: rules per network ACL, one way, default deny included
SLOW_DEREGISTRATION = 60  # seconds: beyond, the fence waits that long for clients' connections
DEFAULT_TCP_ESTABLISHED_TIMEOUT = 432_000  # EC2 User Guide, "Idle connection tracking timeout": 5 days


@dataclass(frozen=True)
class Finding:
    subject: str  # what it is about: "mount target fsmt-...", "target group ...", ...
    detail: str  # what is wrong for the fence, and the fix


def check(
    client: Callable[[str], Any], instance: dict[str, Any], file_system_id: str, target_group_arns: list[str]
) -> list[Finding]:
    """Every finding about the layout the fence of ``instance`` would meet. Read-only."""
    ec2 = client("ec2")
    subnet = str(instance.get("SubnetId", ""))
    addresses = [
        a["PrivateIpAddress"]
        for eni in instance.get("NetworkInterfaces", [])
        for a in eni.get("PrivateIpAddresses", [])
        if a.get("PrivateIpAddress")
    ] or [str(instance.get("PrivateIpAddress", ""))]
    targets = client("efs").describe_mount_targets(FileSystemId=file_system_id).get("MountTargets", [])
    findings = [_shared_subnet(t, instance["InstanceId"]) for t in targets if t["SubnetId"] == subnet]
    findings += _acl_room(ec2, sorted({t["SubnetId"] for t in targets if t["SubnetId"] != subnet}), addresses)
    findings += [f for arn in target_group_arns if (f := _target_group(client("elbv2"), arn)) is not None]
    findings += _connection_tracking(ec2, instance)
    return findings


def _shared_subnet(target: dict[str, Any], instance_id: str) -> Finding:
    az = target.get("AvailabilityZoneName", "its AZ")
    return Finding(
        f"mount target {target['MountTargetId']}",
        f"shares subnet {target['SubnetId']} with {instance_id}: no network ACL sees an NFS session inside a"
        f" subnet, so the fence deletes this mount target to cut it (DeleteMountTarget breaks its mounts), and"
        f" {az} has none until swr creates it again. Fix: give the mount target a subnet of its own in {az}"
        " (aws efs delete-mount-target, then create-mount-target in the other subnet)",
    )


def _acl_room(ec2: Any, subnets: list[str], addresses: list[str]) -> list[Finding]:
    if not subnets:
        return []
    described = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    findings = []
    for acl in described.get("NetworkAcls", []):
        parsed = network_acls.Acl.from_description(acl)
        for egress in (False, True):
            used = sum(1 for r in parsed.rules if r.egress == egress)
            room = RULES_PER_DIRECTION - used
            way = "outbound" if egress else "inbound"
            if room < len(addresses):
                findings.append(
                    Finding(
                        f"network ACL {parsed.acl_id}",
                        f"has {used} {way} rules of {RULES_PER_DIRECTION}: no room for the fence's deny entries"
                        f" ({len(addresses)} needed), so it can cut the NFS sessions through it only by powering"
                        " the instance off. Fix: remove rules you do not need, or ask AWS for a higher quota"
                        " (up to 40)",
                    )
                )
            for address in addresses:
                if parsed.free_number(egress, address, set()) is None:
                    findings.append(
                        Finding(
                            f"network ACL {parsed.acl_id}",
                            f"allows {address} {way} at its lowest rule numbers: a deny entry would come after"
                            " the allow and do nothing. Fix: leave rule numbers free below your allow rules",
                        )
                    )
    return findings


def _target_group(elbv2: Any, arn: str) -> Finding | None:
    protocol = str(elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0].get("Protocol", ""))
    attributes = {
        a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    }
    delay = int(attributes.get(DEREGISTRATION_DELAY, 300))
    terminates = str(attributes.get(CONNECTION_TERMINATION, "false")).lower() == "true"
    name = f"target group {name_of(arn)}"
    if protocol not in APPLICATION_PROTOCOLS and not terminates:
        return Finding(
            name,
            f"keeps the established connections of a deregistered target ({CONNECTION_TERMINATION} is false), so"
            " the fence can cut clients off only by powering the instance off. Fix: aws elbv2"
            f" modify-target-group-attributes --attributes Key={CONNECTION_TERMINATION},Value=true",
        )
    if delay > SLOW_DEREGISTRATION:
        return Finding(
            name,
            f"drains a deregistered target for {delay} s before its connections end: the fence waits that long"
            f" (or for the power-off). Fix: a shorter {DEREGISTRATION_DELAY}, such as 30",
        )
    return None


def _connection_tracking(ec2: Any, instance: dict[str, Any]) -> list[Finding]:
    interfaces = [eni["NetworkInterfaceId"] for eni in instance.get("NetworkInterfaces", [])]
    if not interfaces:
        return []
    findings = []
    for eni in ec2.describe_network_interfaces(NetworkInterfaceIds=interfaces)["NetworkInterfaces"]:
        timeout = int(
            (eni.get("ConnectionTrackingConfiguration") or {}).get(
                "TcpEstablishedTimeout", DEFAULT_TCP_ESTABLISHED_TIMEOUT
            )
        )
        if timeout >= DEFAULT_TCP_ESTABLISHED_TIMEOUT:
            findings.append(
                Finding(
                    f"network interface {eni['NetworkInterfaceId']}",
                    f"tracks an idle established TCP connection for {timeout} s (the default, 5 days): once the"
                    " fence moves it into the blackhole group, idle connections the deny entries and the"
                    " deregistration do not reach live that long. Fix: aws ec2 modify-network-interface-attribute"
                    " --connection-tracking-specification TcpEstablishedTimeout=600 (60 at the least)",
                )
            )
    return findings
