"""The emulator's rules for what cuts a connection (swr/emulator/network.py), rule by rule."""

from __future__ import annotations

from typing import Any

from swr.emulator.network import NFS_PORT, Address, NetworkAcls, TargetGroupView, powered_off

INSTANCE = Address("10.20.0.9", "subnet-app")
MOUNT_TARGET = Address("10.20.10.4", "subnet-data")


def entry(number: int, egress: bool, action: str, cidr: str, protocol: str = "-1", ports: Any = None) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": action,
        "Protocol": protocol,
        "CidrBlock": cidr,
        "PortRange": ports,
    }


DEFAULT = [
    entry(100, False, "allow", "0.0.0.0/0"),
    entry(100, True, "allow", "0.0.0.0/0"),
    entry(32767, False, "deny", "0.0.0.0/0"),
    entry(32767, True, "deny", "0.0.0.0/0"),
]


def acls(data_entries: list[dict[str, Any]]) -> NetworkAcls:
    return NetworkAcls({"subnet-app": ("acl-app", DEFAULT), "subnet-data": ("acl-data", data_entries + DEFAULT)})


def test_the_default_acl_lets_a_connection_between_subnets_through() -> None:
    assert acls([]).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) is None


def test_a_deny_for_the_address_in_either_direction_blocks_it() -> None:
    inbound = acls([entry(1, False, "deny", "10.20.0.9/32")]).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT)
    assert inbound == "network ACL acl-data of subnet-data rule 1 denies inbound from 10.20.0.9"
    outbound = acls([entry(1, True, "deny", "10.20.0.9/32")]).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT)
    assert outbound == "network ACL acl-data of subnet-data rule 1 denies outbound to 10.20.0.9"


def test_the_first_matching_rule_decides_so_a_lower_allow_shadows_a_deny() -> None:
    shadowed = [entry(1, False, "allow", "10.20.0.0/16"), entry(2, False, "deny", "10.20.0.9/32")]
    assert acls(shadowed).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) is None


def test_protocol_and_port_range_narrow_what_a_rule_matches() -> None:
    udp_only = [entry(1, False, "deny", "10.20.0.9/32", protocol="17")]
    assert acls(udp_only).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) is None
    https_only = [entry(1, False, "deny", "10.20.0.9/32", protocol="6", ports={"From": 443, "To": 443})]
    assert acls(https_only).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) is None
    nfs = [entry(1, False, "deny", "10.20.0.9/32", protocol="6", ports={"From": 2049, "To": 2049})]
    assert acls(nfs).blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) is not None


def test_nothing_is_evaluated_inside_one_subnet() -> None:
    same_subnet = Address("10.20.0.4", "subnet-app")
    everything_denied = NetworkAcls({"subnet-app": ("acl-app", [entry(1, False, "deny", "0.0.0.0/0")])})
    assert everything_denied.blocked(INSTANCE, same_subnet, NFS_PORT) is None


def test_an_acl_without_a_matching_rule_denies() -> None:
    empty = NetworkAcls({"subnet-app": ("acl-app", []), "subnet-data": ("acl-data", [])})
    assert "has no rule" in (empty.blocked(INSTANCE, MOUNT_TARGET, NFS_PORT) or "")


def group(protocol: str, **attributes: str) -> TargetGroupView:
    return TargetGroupView("arn:aws:elasticloadbalancing:r:1:targetgroup/app/0123", protocol, attributes)


def test_client_connections_drain_for_the_delay_then_end_as_the_load_balancer_does() -> None:
    delay = "deregistration_delay.timeout_seconds"
    termination = "deregistration_delay.connection_termination.enabled"
    nlb = group("TCP", **{delay: "30"})
    assert nlb.connections_closed(100.0, 129.9) is None
    assert nlb.connections_closed(100.0, 500.0) is None  # no connection termination: they go on
    terminating = group("TCP", **{delay: "30", termination: "true"})
    assert terminating.connections_closed(100.0, 129.9) is None
    assert "closed its connections at the end of the 30 s" in (terminating.connections_closed(100.0, 130.0) or "")
    alb = group("HTTP")
    assert alb.delay == 300.0 and alb.connections_closed(0.0, 299.0) is None
    assert "completed after its 300 s delay" in (alb.connections_closed(0.0, 300.0) or "")


def test_only_a_stopped_or_terminated_instance_has_no_connection_left() -> None:
    for state in ("pending", "running", "stopping", "shutting-down"):
        assert powered_off(state) is None
    for state in ("stopped", "terminated"):
        assert powered_off(state) == f"the instance is {state}: it runs no code"
