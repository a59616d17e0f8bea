"""The EC2 side of a fence: what an instance is, where it is, and powering it off.

Powered off means stopped or terminated: EC2 User Guide, instance lifecycle, a stopped instance
runs no code. An instance that is stopping or shutting-down may still run (EC2 troubleshooting
guide, "Delayed instance termination": it can stay shutting-down for hours when its host has a
problem), so neither counts. Termination is asked for first, with Force and SkipOsShutdown (the
instance is fenced or never started the workload, and may be hung); when EC2 refuses it
(termination protection, a policy), a forced stop is the power fence Pacemaker's fence_aws uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client, error_code

if TYPE_CHECKING:  # boto3-stubs
    from mypy_boto3_ec2.type_defs import InstanceTypeDef

FENCED_BY_TAG = "swr:fenced-by"
GONE = "gone"  # EC2 no longer knows it (terminated instances stay visible about an hour)
POWERED_OFF = frozenset({"stopped", "terminated", GONE})
STOPPING = frozenset({"shutting-down", "stopping"})
NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
# Refusals of TerminateInstances that a forced stop may not meet: termination protection
# (OperationNotPermitted) and a policy denying terminate (UnauthorizedOperation).
TERMINATE_REFUSED = frozenset({"OperationNotPermitted", "UnauthorizedOperation"})


def describe(instance_id: str) -> InstanceTypeDef | None:
    try:
        with api_call(f"describe {instance_id}"):
            reservations = client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise
    found = [i for r in reservations for i in r.get("Instances", [])]
    return found[0] if found else None


def state_of(instance_id: str) -> str:
    """The instance's EC2 state, or "gone" when EC2 no longer knows it."""
    instance = describe(instance_id)
    return str(instance["State"]["Name"]) if instance else GONE


def state(instance: Mapping[str, Any] | None) -> str:
    return str(instance["State"]["Name"]) if instance else GONE


def addresses(instance: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Every private IPv4 address and every IPv6 address of the instance's interfaces."""
    ipv4: list[str] = []
    ipv6: list[str] = []
    for eni in instance.get("NetworkInterfaces", []):
        ipv4 += [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", []) if a.get("PrivateIpAddress")]
        ipv6 += [a["Ipv6Address"] for a in eni.get("Ipv6Addresses", []) if a.get("Ipv6Address")]
    if not ipv4 and instance.get("PrivateIpAddress"):
        ipv4.append(str(instance["PrivateIpAddress"]))
    return list(dict.fromkeys(ipv4)), list(dict.fromkeys(ipv6))


def fenced_by(instance: Mapping[str, Any]) -> str | None:
    """The execution named by the instance's fenced-by tag, if it carries one."""
    return next((str(t["Value"]) for t in instance.get("Tags", []) if t.get("Key") == FENCED_BY_TAG), None)


def tag_fenced(instance_id: str, execution: str) -> None:
    with api_call(f"tag {instance_id} as fenced"):
        client("ec2").create_tags(Resources=[instance_id], Tags=[{"Key": FENCED_BY_TAG, "Value": execution}])


def terminate(instance_id: str) -> None:
    with api_call(f"terminate {instance_id}", keep=TERMINATE_REFUSED):
        # Force + SkipOsShutdown: a clean OS shutdown only delays the power-off of an instance
        # that is fenced or never started the workload.
        client("ec2").terminate_instances(InstanceIds=[instance_id], Force=True, SkipOsShutdown=True)


def force_stop(instance_id: str) -> None:
    with api_call(f"stop {instance_id}"):
        client("ec2").stop_instances(InstanceIds=[instance_id], Force=True, SkipOsShutdown=True)


def terminate_instance(instance_id: str) -> str:
    """Terminate (idempotent) and report the state the instance is in now."""
    current = state_of(instance_id)
    if current in ("shutting-down", "terminated", GONE):
        return current
    terminate(instance_id)
    return state_of(instance_id)
