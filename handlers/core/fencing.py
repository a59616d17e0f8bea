"""Fence an instance: isolate it (blackhole security group on every network interface,
out of every target group), confirm the isolation, then terminate it.

Isolation confirmed is what makes an instance safe; termination may finish later. When
isolation cannot be shown, fail closed with IsolationNotConfirmed.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from handlers.core import clock
from handlers.core.aws import api_call, client, error_code
from handlers.core.errors import AwsThrottled, AwsUnavailable, IsolationNotConfirmed
from handlers.core.steps import FenceResult

FENCED_BY_TAG = "swr:fenced-by"
GONE_STATES = frozenset({"shutting-down", "terminated"})
# Deregistered targets stop receiving new connections at once, whatever the draining delay.
OUT_OF_SERVICE = frozenset({"unused", "draining"})
NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


def isolate(instance_id: str, blackhole_sg: str, target_group_arns: list[str], execution: str) -> FenceResult:
    try:
        return _isolate(instance_id, blackhole_sg, target_group_arns, execution)
    except (ClientError, AwsThrottled, AwsUnavailable) as error:
        raise IsolationNotConfirmed(f"isolation of {instance_id} not confirmed: {error}") from error


def terminate(fence: FenceResult) -> FenceResult:
    """Terminate the fenced instance (idempotent) and report the state it is in now."""
    requested_at = fence.terminate_requested_at or clock.now()
    state = terminate_instance(fence.instance_id)
    return fence.model_copy(
        update={"instance_state": state, "terminate_requested_at": requested_at, "checks": fence.checks + 1}
    )


def terminate_instance(instance_id: str) -> str:
    state = state_of(instance_id)
    if state in GONE_STATES | {"gone"}:
        return state
    with api_call(f"terminate {instance_id}"):
        # Force + SkipOsShutdown: the instance is isolated or never started the workload and
        # may be hung; a clean OS shutdown only delays the release of its capacity.
        client("ec2").terminate_instances(InstanceIds=[instance_id], Force=True, SkipOsShutdown=True)
    return state_of(instance_id)


def deregister(instance_id: str, target_group_arns: list[str]) -> list[str]:
    elb = client("elbv2")
    for arn in target_group_arns:
        with api_call(f"deregister {instance_id} from {arn}"):
            try:
                elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
            except ClientError as error:
                if error_code(error) != "InvalidTarget":
                    raise
    return list(target_group_arns)


def _isolate(instance_id: str, blackhole_sg: str, target_group_arns: list[str], execution: str) -> FenceResult:
    instance = _describe(instance_id)
    state = instance["State"]["Name"] if instance else "gone"

    def result(note: str, interfaces: list[str], deregistered: list[str]) -> FenceResult:
        return FenceResult(
            instance_id=instance_id,
            isolated=True,
            isolated_at=clock.now(),
            security_group_id=blackhole_sg,
            network_interfaces=interfaces,
            deregistered_from=deregistered,
            instance_state=state,
            note=note,
        )

    deregistered = deregister(instance_id, target_group_arns)
    _confirm_out_of_service(instance_id, target_group_arns)
    if instance is None or state == "terminated":
        return result(f"instance {instance_id} is {state}: no network interface left to isolate", [], deregistered)

    ec2 = client("ec2")
    with api_call(f"tag {instance_id} as fenced"):
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": FENCED_BY_TAG, "Value": execution}])
    interfaces = [eni["NetworkInterfaceId"] for eni in instance.get("NetworkInterfaces", [])]
    for eni in interfaces:
        with api_call(f"move {eni} of {instance_id} into the blackhole security group"):
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[blackhole_sg])
    _confirm_blackholed(instance_id, interfaces, blackhole_sg)
    return result(f"all {len(interfaces)} network interface(s) in {blackhole_sg}", interfaces, deregistered)


def _confirm_blackholed(instance_id: str, interfaces: list[str], blackhole_sg: str) -> None:
    if not interfaces:
        return
    with api_call(f"read network interfaces of {instance_id}"):
        found = client("ec2").describe_network_interfaces(NetworkInterfaceIds=interfaces)["NetworkInterfaces"]
    leaking = {
        eni["NetworkInterfaceId"]: sorted(g["GroupId"] for g in eni.get("Groups", []))
        for eni in found
        if [g["GroupId"] for g in eni.get("Groups", [])] != [blackhole_sg]
    }
    if leaking or len(found) != len(interfaces):
        raise IsolationNotConfirmed(f"{instance_id} still reachable: security groups {leaking or 'unreadable'}")


def _confirm_out_of_service(instance_id: str, target_group_arns: list[str]) -> None:
    elb = client("elbv2")
    for arn in target_group_arns:
        with api_call(f"read health of {instance_id} in {arn}"):
            try:
                descriptions = elb.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
            except ClientError as error:
                if error_code(error) == "InvalidTarget":
                    continue
                raise
        for description in descriptions.get("TargetHealthDescriptions", []):
            state = description.get("TargetHealth", {}).get("State")
            if state not in OUT_OF_SERVICE:
                raise IsolationNotConfirmed(f"{instance_id} still {state} in target group {arn}")


def _describe(instance_id: str) -> dict[str, Any] | None:
    try:
        with api_call(f"describe {instance_id}"):
            reservations = client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise
    instances = [i for r in reservations for i in r.get("Instances", [])]
    return instances[0] if instances else None


def state_of(instance_id: str) -> str:
    """The instance's EC2 state, or "gone" when EC2 no longer knows it."""
    instance = _describe(instance_id)
    return str(instance["State"]["Name"]) if instance else "gone"
