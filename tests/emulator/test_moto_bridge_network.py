"""Canaries for the bridge patches the fence meets (27-31): each states the AWS behaviour it
encodes, with where AWS documents it, and fails against moto 5.2.5 without its patch."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from swr.emulator import moto_bridge
from swr.emulator.moto_bridge import BridgeHooks
from tests.emulator.test_moto_bridge import client, describe_instance, hooks, make_subnet, run_instance

__all__ = ["hooks"]  # the fixture, shared with the main canary file


def _running_instance() -> str:
    instance_id = str(run_instance(make_subnet())["Instances"][0]["InstanceId"])
    moto_bridge.set_instance_state(instance_id, "running")
    return instance_id


# --- 27. StopInstances ---------------------------------------------------------------------------
def test_stop_leaves_an_instance_stopping_until_the_simulation_stops_it(hooks: BridgeHooks) -> None:
    # EC2 User Guide, "Stop and start Amazon EC2 instances": stopping, then stopped.
    stopping: list[list[str]] = []
    hooks.on_instances_stopping = stopping.append
    instance_id = _running_instance()
    ec2 = client("ec2")

    answer = ec2.stop_instances(InstanceIds=[instance_id], Force=True)

    assert answer["StoppingInstances"][0]["CurrentState"]["Name"] == "stopping"
    assert describe_instance(instance_id)["State"]["Name"] == "stopping"
    assert stopping == [[instance_id]]
    ec2.stop_instances(InstanceIds=[instance_id], Force=True)  # again: nothing moves on
    assert stopping == [[instance_id]] and describe_instance(instance_id)["State"]["Name"] == "stopping"

    moto_bridge.set_instance_state(instance_id, "stopped")
    assert describe_instance(instance_id)["State"] == {"Code": 80, "Name": "stopped"}


def test_an_instance_that_is_shutting_down_cannot_be_stopped(hooks: BridgeHooks) -> None:
    # EC2 API: StopInstances on an instance that is terminating answers IncorrectInstanceState.
    instance_id = _running_instance()
    ec2 = client("ec2")
    ec2.terminate_instances(InstanceIds=[instance_id])

    with pytest.raises(ClientError) as refused:
        ec2.stop_instances(InstanceIds=[instance_id], Force=True)

    assert refused.value.response["Error"]["Code"] == "IncorrectInstanceState"
    assert describe_instance(instance_id)["State"]["Name"] == "shutting-down"


def test_termination_protection_refuses_terminate_but_not_a_forced_stop(hooks: BridgeHooks) -> None:
    # EC2 User Guide, "Change instance termination protection": TerminateInstances fails with
    # OperationNotPermitted; stopping is governed by the separate stop protection.
    instance_id = _running_instance()
    ec2 = client("ec2")
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": True})

    with pytest.raises(ClientError) as refused:
        ec2.terminate_instances(InstanceIds=[instance_id])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"

    assert ec2.stop_instances(InstanceIds=[instance_id], Force=True)["StoppingInstances"][0]["CurrentState"] == {
        "Code": 64,
        "Name": "stopping",
    }


# --- 28. Deregistration delay --------------------------------------------------------------------
def _target_group(delay: int, protocol: str = "TCP") -> tuple[str, str, str]:
    subnet = make_subnet()
    vpc = client("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    instance_id = str(run_instance(subnet)["Instances"][0]["InstanceId"])
    moto_bridge.set_instance_state(instance_id, "running")
    elb = client("elbv2")
    arn = elb.create_target_group(Name=f"tg-{delay}", Protocol=protocol, Port=8080, VpcId=vpc, TargetType="instance")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}]
    )
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    return str(arn), instance_id, str(vpc)


def _health(arn: str, instance_id: str) -> dict[str, Any]:
    found = client("elbv2").describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    return dict(found["TargetHealthDescriptions"][0]["TargetHealth"])


def test_a_deregistered_target_drains_for_the_delay_then_is_unused(hooks: BridgeHooks) -> None:
    # ELB guides, "Deregistration delay": the target is draining until the delay has passed,
    # even when it has no connections left; then unused.
    now = [1000.0]
    hooks.sim_now = lambda: now[0]
    arn, instance_id, _ = _target_group(delay=30)

    client("elbv2").deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])

    assert _health(arn, instance_id)["State"] == "draining"
    assert _health(arn, instance_id)["Reason"] == "Target.DeregistrationInProgress"
    assert moto_bridge.draining_targets(arn) == {instance_id: 1000.0}
    now[0] += 29.0
    assert _health(arn, instance_id)["State"] == "draining"
    now[0] += 1.0
    assert _health(arn, instance_id) == {
        "State": "unused",
        "Reason": "Target.NotRegistered",
        "Description": "Target is not registered to the target group",
    }
    client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    assert moto_bridge.draining_targets(arn) == {}


def test_a_registered_instance_that_terminates_is_deregistered_and_drains(hooks: BridgeHooks) -> None:
    now = [50.0]
    hooks.sim_now = lambda: now[0]
    arn, instance_id, _ = _target_group(delay=10)

    moto_bridge.set_instance_state(instance_id, "terminated")

    assert _health(arn, instance_id)["State"] == "draining"
    now[0] += 10.0
    assert _health(arn, instance_id)["State"] == "unused"


# --- 29. Network ACL quota -----------------------------------------------------------------------
def test_a_network_acl_takes_twenty_entries_each_way_default_deny_included(hooks: BridgeHooks) -> None:
    # Amazon VPC quotas, "Network ACLs": rules per network ACL 20, one way, including the
    # default deny rule.
    ec2 = client("ec2")
    subnet = make_subnet()
    acl_id, entries = moto_bridge.network_acls_by_subnet()[subnet]
    assert sorted((e["RuleNumber"], e["Egress"]) for e in entries) == [
        (100, False),
        (100, True),
        (32767, False),
        (32767, True),
    ]

    def deny(number: int, egress: bool) -> None:
        ec2.create_network_acl_entry(
            NetworkAclId=acl_id,
            RuleNumber=number,
            Protocol="-1",
            RuleAction="deny",
            Egress=egress,
            CidrBlock=f"10.9.0.{number}/32",
        )

    for number in range(1, 19):  # 18 more beside 100 and the default deny
        deny(number, egress=False)
    with pytest.raises(ClientError) as full:
        deny(19, egress=False)
    assert full.value.response["Error"]["Code"] == "NetworkAclEntryLimitExceeded"
    deny(19, egress=True)  # the other way has its own twenty


# --- 30. DeleteMountTarget -----------------------------------------------------------------------
def _file_system_with_a_mount_target() -> tuple[str, str]:
    efs = client("efs")
    file_system = efs.create_file_system(CreationToken="canary")["FileSystemId"]
    target = efs.create_mount_target(FileSystemId=file_system, SubnetId=make_subnet())["MountTargetId"]
    return str(file_system), str(target)


def test_a_deleted_mount_target_is_deleting_until_the_simulation_lets_it_go(hooks: BridgeHooks) -> None:
    # EFS API, DeleteMountTarget: "returns while the mount target state is still deleting. You
    # can check the mount target deletion by calling the DescribeMountTargets operation".
    deleting: list[str] = []
    hooks.mount_target_deleting = deleting.append
    file_system, target = _file_system_with_a_mount_target()
    efs = client("efs")

    efs.delete_mount_target(MountTargetId=target)

    described = efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"]
    assert [(t["MountTargetId"], t["LifeCycleState"]) for t in described] == [(target, "deleting")]
    assert deleting == [target]
    efs.delete_mount_target(MountTargetId=target)  # again: still deleting, no second notice
    assert deleting == [target]

    moto_bridge.finish_mount_target_deletion(target)

    assert efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"] == []
    with pytest.raises(ClientError) as gone:
        efs.delete_mount_target(MountTargetId=target)
    assert gone.value.response["Error"]["Code"] == "MountTargetNotFound"


def test_without_a_simulation_a_deleted_mount_target_goes_at_once(hooks: BridgeHooks) -> None:
    file_system, target = _file_system_with_a_mount_target()
    client("efs").delete_mount_target(MountTargetId=target)
    assert moto_bridge.mount_targets(file_system) == []


# --- 31. Connection tracking configuration -------------------------------------------------------
def test_an_interface_keeps_its_connection_tracking_configuration(hooks: BridgeHooks) -> None:
    # EC2 User Guide, "Idle connection tracking timeout" (TCP established: 60 to 432,000 s).
    ec2 = client("ec2")
    eni = ec2.create_network_interface(SubnetId=make_subnet())["NetworkInterface"]["NetworkInterfaceId"]

    def configuration() -> Any:
        found = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
        return found.get("ConnectionTrackingConfiguration")

    assert configuration() is None  # never set: the defaults apply
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni, ConnectionTrackingSpecification={"TcpEstablishedTimeout": 120}
    )
    assert configuration() == {"TcpEstablishedTimeout": 120}


def test_availability_zone_of_each_kind_of_resource(hooks: BridgeHooks) -> None:
    subnet = make_subnet()
    instance = run_instance(subnet)["Instances"][0]
    _, target = _file_system_with_a_mount_target()
    az = f"{moto_bridge._bridge.region}a"  # type: ignore[union-attr]
    assert moto_bridge.availability_zone_of(instance["InstanceId"]) == az
    assert moto_bridge.availability_zone_of(instance["NetworkInterfaces"][0]["NetworkInterfaceId"]) == az
    assert moto_bridge.availability_zone_of(subnet) == az
    assert moto_bridge.availability_zone_of(target) == az
    assert moto_bridge.availability_zone_of("i-00000000000000000") is None


def test_a_subnet_reuses_the_lowest_released_address_first(hooks: BridgeHooks) -> None:
    # Patch 35: moto pops an arbitrary released address (a set of strings, ordered by the
    # process's hash seed); the lowest first makes a seed replay alike in any process.
    from moto.ec2.models import ec2_backends

    subnet = ec2_backends["123456789012"]["ap-northeast-1"].get_subnet(make_subnet())
    for address in ("10.0.1.77", "10.0.1.9", "10.0.1.100"):
        subnet.request_ip(address, object())
        subnet.del_subnet_ip(address)  # released, as when an instance or interface goes

    assert [subnet.get_available_subnet_ip(object()) for _ in range(3)] == ["10.0.1.9", "10.0.1.77", "10.0.1.100"]
