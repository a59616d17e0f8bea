"""Connections as AWS documents them: what the simulation keeps established, and what cuts it.

A flow is one established connection of an instance, on one of three paths: its NFS session to
an EFS mount target (``efs``), clients' connections to it through a target group
(``clients``), its calls to the AWS API endpoints (``api``). A flow is established while the
instance runs; what ends it is what AWS documents as ending it, and nothing else:

- A security group change does not. EC2 User Guide, "Security group connection tracking":
  "When you change a security group rule, its tracked connections are not immediately
  interrupted. The security group continues to allow packets until existing connections time
  out." The idle timeout of an established TCP connection is 5 days by default, and an NFS
  session or a client connection that carries traffic is never idle. A new connection is
  evaluated against the rules, so the blackhole group (no rules) admits none: an NFS client
  that lost its session cannot open another.
- A network ACL deny does, for traffic that crosses the subnet boundary. Same page: "Adding a
  network ACL that blocks traffic in either direction breaks existing connections." VPC User
  Guide, "Network ACLs": rules apply to traffic entering and leaving a subnet, in rule-number
  order, the first match decides. Traffic between two addresses of one subnet does not cross its
  boundary, so no ACL sees it.
- Deleting the mount target does, for the mounts made through it. EFS API, DeleteMountTarget:
  "This operation forcibly breaks any mounts of the file system by using the mount target that
  is being deleted". Here the mounts break when the deletion completes (the mount target is gone
  from DescribeMountTargets), not when it is requested.
- Deregistration ends client connections only as the ELB guides say ("Deregistration delay"):
  the target drains for the delay; then an Application Load Balancer has completed the
  deregistration and sends it nothing more, and a Network Load Balancer closes the remaining
  connections only when ``deregistration_delay.connection_termination.enabled`` is true (the
  default for TCP target groups is false: "If the deregistered target stays healthy and an
  existing connection is not idle, the load balancer can continue to send traffic to it").
  Network ACLs are not modelled for client connections: a Network Load Balancer node may share
  the instance's subnet, and with client IP preservation its packets carry clients' addresses.
- Stopping or terminating the instance ends them all once it is stopped or terminated. EC2
  User Guide, instance lifecycle: a stopped instance runs no code. While it is stopping or
  shutting down it may still run, and the simulation keeps its flows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

NFS_PORT = 2049
HTTPS_PORT = 443
EPHEMERAL_PORT = 40000  # a client's source port, within Linux's 32768-60999
TCP = "6"
POWERED_OFF = frozenset({"stopped", "terminated"})
APPLICATION_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
CONNECTION_TERMINATION = "deregistration_delay.connection_termination.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"


class PathKind(StrEnum):
    EFS = "efs"
    CLIENTS = "clients"
    API = "api"


@dataclass(frozen=True)
class Address:
    ip: str
    subnet: str


@dataclass
class Flow:
    kind: PathKind
    peer: str  # the mount target, target group or endpoint the instance talks to
    local: Address
    remote: Address | None  # None: no subnet boundary is modelled on this path
    port: int  # the server's port: NFS, HTTPS, or the instance's service port for clients
    established_at: float
    ended_at: float | None = None
    ended_by: str = ""

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def end(self, at: float, why: str) -> None:
        if self.ended_at is None:
            self.ended_at, self.ended_by = at, why

    def describe(self) -> str:
        where = f" ({self.remote.ip})" if self.remote is not None else ""
        return f"{self.kind} via {self.peer}{where}"


@dataclass(frozen=True)
class AclRule:
    number: int
    egress: bool
    allow: bool
    protocol: str
    cidr: ipaddress.IPv4Network
    ports: tuple[int, int] | None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> AclRule:
        ports = entry.get("PortRange")
        return cls(
            number=int(entry["RuleNumber"]),
            egress=bool(entry["Egress"]),
            allow=str(entry["RuleAction"]) == "allow",
            protocol=str(entry["Protocol"]),
            cidr=_network(str(entry["CidrBlock"])),
            ports=(int(ports["From"]), int(ports["To"])) if ports else None,
        )

    def matches(self, address: str, port: int, protocol: str) -> bool:
        if self.protocol not in ("-1", protocol):
            return False
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        return _address(address) in self.cidr


class NetworkAcls:
    """The network ACL each subnet is associated with, and the verdict of its rules."""

    def __init__(self, by_subnet: Mapping[str, tuple[str, list[dict[str, Any]]]]) -> None:
        self._acls = {
            subnet: (acl_id, sorted((AclRule.from_entry(e) for e in entries), key=lambda r: r.number))
            for subnet, (acl_id, entries) in by_subnet.items()
        }

    def verdict(self, subnet: str, egress: bool, address: str, port: int, protocol: str = TCP) -> str | None:
        """Why the subnet's ACL drops this packet, or None when it lets it through. ``address`` is
        the packet's destination leaving the subnet (egress), its source entering it."""
        if subnet not in self._acls:
            return None  # a subnet the world does not know: nothing to say about it
        acl_id, rules = self._acls[subnet]
        for rule in rules:
            if rule.egress == egress and rule.matches(address, port, protocol):
                if rule.allow:
                    return None
                way = "outbound to" if egress else "inbound from"
                return f"network ACL {acl_id} of {subnet} rule {rule.number} denies {way} {address}"
        return f"network ACL {acl_id} of {subnet} has no rule for {address}: denied"

    def blocked(
        self, client: Address, server: Address, server_port: int, client_port: int = EPHEMERAL_PORT
    ) -> str | None:
        """Why a TCP connection between ``client`` and ``server`` cannot carry traffic, or None.
        A deny in either direction at either boundary breaks it; inside one subnet nothing is
        evaluated."""
        if client.subnet == server.subnet:
            return None
        checks = (
            (client.subnet, True, server.ip, server_port),  # request leaving the client's subnet
            (server.subnet, False, client.ip, server_port),  # request entering the server's subnet
            (server.subnet, True, client.ip, client_port),  # reply leaving the server's subnet
            (client.subnet, False, server.ip, client_port),  # reply entering the client's subnet
        )
        for subnet, egress, address, port in checks:
            denied = self.verdict(subnet, egress, address, port)
            if denied is not None:
                return denied
        return None


@dataclass(frozen=True)
class TargetGroupView:
    arn: str
    protocol: str
    attributes: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 2)[-2]

    @property
    def delay(self) -> float:
        return float(self.attributes.get(DEREGISTRATION_DELAY, 300))

    @property
    def terminates_connections(self) -> bool:
        return str(self.attributes.get(CONNECTION_TERMINATION, "false")).lower() == "true"

    def connections_closed(self, deregistered_at: float, now: float) -> str | None:
        """Why the established client connections of a target deregistered at ``deregistered_at``
        have ended by ``now``, or None while they may go on."""
        if now < deregistered_at + self.delay:
            return None  # draining
        if self.protocol in APPLICATION_PROTOCOLS:
            return f"deregistration from {self.name} completed after its {self.delay:g} s delay"
        if self.terminates_connections:
            return f"{self.name} closed its connections at the end of the {self.delay:g} s deregistration delay"
        return None  # a Network Load Balancer without connection termination keeps them


def powered_off(state: str) -> str | None:
    """Why an instance in ``state`` has no connection left, or None while it may run."""
    if state in POWERED_OFF:
        return f"the instance is {state}: it runs no code"
    return None


# The simulation evaluates the ACLs on every tick: parse each address and block once.
@lru_cache(maxsize=4096)
def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr, strict=False)


@lru_cache(maxsize=4096)
def _address(address: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(address)
