"""Canaries for the emulator's model of connections (swr/emulator/network.py): each states the
AWS behaviour it encodes and where AWS documents it, and checks the simulation keeps to it.
The fence is judged by these connections, so a model that cut more than AWS does would pass a
fence that does not work."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from swr.emulator import Emulator
from swr.emulator.network import PathKind
from swr.emulator.simulation import SimInstance
from swr.emulator.world import WorldOptions


def unprotected(options: WorldOptions | None = None) -> Emulator:
    """The account before swr: the simulation runs, no workflow reacts to what a test does."""
    return Emulator(protect=False, world_options=options)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with unprotected() as emu:
        yield emu


def primary(emu: Emulator) -> SimInstance:
    return emu.instance(emu.primary_instance_id)


def live(instance: SimInstance, kind: PathKind) -> bool:
    return bool(instance.live(kind))


def settle(emu: Emulator, simulated_seconds: float = 3.0) -> None:
    """Let the simulation tick over what was just changed through the API."""
    emu.clock.sleep(simulated_seconds)


def eventually(emu: Emulator, condition: Callable[[], bool], simulated_seconds: float = 120.0) -> None:
    deadline = emu.clock.now() + simulated_seconds
    while not condition():
        assert emu.clock.now() < deadline, "condition not met in simulated time"
        emu.clock.sleep(1.0)


def deny_address(emu: Emulator, address: str, subnet: str) -> None:
    """Deny entries for one address, both ways, in the network ACL of ``subnet``."""
    ec2 = emu.boto3_client("ec2")
    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl["NetworkAclId"],
            RuleNumber=1,
            Protocol="-1",
            RuleAction="deny",
            Egress=egress,
            CidrBlock=f"{address}/32",
        )


def mount_target_of(emu: Emulator, az: str) -> dict[str, str]:
    found = emu.boto3_client("efs").describe_mount_targets(FileSystemId=emu.world.file_system_id)["MountTargets"]  # type: ignore[union-attr]
    return dict(next(t for t in found if t["AvailabilityZoneName"] == az))


def test_a_running_instance_holds_its_nfs_session_client_connections_and_api_calls(emulator: Emulator) -> None:
    old = primary(emulator)
    target = mount_target_of(emulator, old.az)
    efs = old.live(PathKind.EFS)
    assert [f.peer for f in efs] == [target["MountTargetId"]] and efs[0].remote.ip == target["IpAddress"]  # type: ignore[union-attr]
    assert live(old, PathKind.CLIENTS) and live(old, PathKind.API)
    assert old.reaches_data and old.serves_clients


def test_a_security_group_change_keeps_established_connections_and_admits_no_new_one(emulator: Emulator) -> None:
    # EC2 User Guide, "Security group connection tracking": "When you change a security group
    # rule, its tracked connections are not immediately interrupted."
    old = primary(emulator)
    ec2 = emulator.boto3_client("ec2")
    eni = ec2.describe_instances(InstanceIds=[old.instance_id])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][
        0
    ]
    world = emulator.world
    assert world is not None
    world.blackhole_security_group_id = ec2.create_security_group(
        GroupName="blackhole", Description="no rules", VpcId=world.vpc_id
    )["GroupId"]
    blackhole = world.blackhole_security_group_id
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[blackhole])
    settle(emulator)
    assert old.isolated
    assert live(old, PathKind.EFS) and live(old, PathKind.CLIENTS) and live(old, PathKind.API)

    # A session that ends for another reason cannot be opened again: new connections are
    # evaluated against the rules, and the blackhole group has none.
    for flow in old.live(PathKind.EFS):
        flow.end(emulator.clock.now(), "the NFS server reset the session")
    settle(emulator)
    assert not live(old, PathKind.EFS)

    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[g["GroupId"] for g in eni["Groups"]]
    )
    eventually(emulator, lambda: live(old, PathKind.EFS))  # the NFS client reconnects


def test_a_network_acl_deny_cuts_the_connections_that_cross_the_subnet_boundary(emulator: Emulator) -> None:
    # EC2 User Guide, same page: "Adding a network ACL that blocks traffic in either direction
    # breaks existing connections." The mount target sits in a data subnet of its own.
    old = primary(emulator)
    target = mount_target_of(emulator, old.az)
    assert target["SubnetId"] != old.subnet_id

    deny_address(emulator, old.address, target["SubnetId"])
    settle(emulator)

    efs = [f for f in old.flows if f.kind is PathKind.EFS]
    assert not efs[0].live and "network ACL" in efs[0].ended_by and "denies" in efs[0].ended_by
    assert not old.reaches_data
    # The API endpoints share the instance's subnet: nothing crosses a boundary, nothing is cut.
    assert live(old, PathKind.API)
    settle(emulator, 10.0)
    assert not live(old, PathKind.EFS)  # and the NFS client cannot reconnect through the deny


def test_a_network_acl_does_not_see_traffic_inside_a_subnet() -> None:
    # VPC User Guide, "Network ACLs": rules apply to traffic entering and leaving a subnet.
    with unprotected(WorldOptions(mount_targets_in_app_subnets=True)) as emu:
        old = primary(emu)
        target = mount_target_of(emu, old.az)
        assert target["SubnetId"] == old.subnet_id

        deny_address(emu, old.address, target["SubnetId"])
        settle(emu)

        assert live(old, PathKind.EFS) and old.reaches_data


def test_deleting_the_mount_target_breaks_the_mounts_made_through_it_once_it_is_gone() -> None:
    # EFS API, DeleteMountTarget: "forcibly breaks any mounts of the file system by using the
    # mount target that is being deleted"; the call returns while it is still "deleting".
    with unprotected(WorldOptions(mount_targets_in_app_subnets=True)) as emu:
        old = primary(emu)
        target = mount_target_of(emu, old.az)

        emu.boto3_client("efs").delete_mount_target(MountTargetId=target["MountTargetId"])
        settle(emu, 1.0)
        assert mount_target_of(emu, old.az)["LifeCycleState"] == "deleting"

        eventually(emu, lambda: not live(old, PathKind.EFS), emu.latency.mount_target_deletion + 10)
        ended = next(f for f in old.flows if f.kind is PathKind.EFS)
        assert "deleted" in ended.ended_by and ended.ended_at is not None
        assert live(old, PathKind.API)  # nothing else of the instance is touched


def test_stopping_ends_every_connection_once_the_instance_is_stopped(emulator: Emulator) -> None:
    # EC2 User Guide: a stopped instance runs no code; while it is stopping it may still run.
    old = primary(emulator)
    emulator.boto3_client("ec2").stop_instances(InstanceIds=[old.instance_id], Force=True)
    settle(emulator)
    assert old.state == "stopping" and live(old, PathKind.EFS) and live(old, PathKind.CLIENTS)

    eventually(emulator, lambda: old.state == "stopped", emulator.latency.stopping_to_stopped + 10)
    assert old.live() == []
    assert all("stopped" in f.ended_by for f in old.flows)


def test_a_deregistered_target_keeps_its_client_connections_while_it_drains(emulator: Emulator) -> None:
    # ELB guides, "Deregistration delay": draining for the delay; an NLB with
    # deregistration_delay.connection_termination.enabled closes what is left when it ends.
    old = primary(emulator)
    emulator.boto3_client("elbv2").deregister_targets(
        TargetGroupArn=emulator.world.target_group_arn,  # type: ignore[union-attr]
        Targets=[{"Id": old.instance_id}],
    )
    settle(emulator)
    assert live(old, PathKind.CLIENTS)

    eventually(emulator, lambda: not live(old, PathKind.CLIENTS), 30 + 10)
    ended = next(f for f in old.flows if f.kind is PathKind.CLIENTS)
    assert "closed its connections at the end of the 30 s deregistration delay" in ended.ended_by


def test_an_nlb_without_connection_termination_keeps_them_after_the_delay() -> None:
    # NLB guide: "If the deregistered target stays healthy and an existing connection is not
    # idle, the load balancer can continue to send traffic to the target."
    with unprotected(WorldOptions(connection_termination=False)) as emu:
        old = primary(emu)
        emu.boto3_client("elbv2").deregister_targets(
            TargetGroupArn=emu.world.target_group_arn,  # type: ignore[union-attr]
            Targets=[{"Id": old.instance_id}],
        )
        settle(emu, 30 + 10)
        assert live(old, PathKind.CLIENTS) and old.serves_clients


def test_an_az_whose_api_does_not_answer_keeps_the_network_acl_rules_it_had() -> None:
    # Nothing documents how ACL changes reach an AZ whose control plane is impaired: the model
    # assumes they do not (scenario az-api-down), for the subnets of that AZ only.
    with unprotected() as emu:
        old = primary(emu)
        target = mount_target_of(emu, old.az)
        emu.sim.freeze_network_acls(old.az)

        deny_address(emu, old.address, target["SubnetId"])  # the mount target's subnet is in old.az too
        settle(emu)

        assert live(old, PathKind.EFS) and old.reaches_data
