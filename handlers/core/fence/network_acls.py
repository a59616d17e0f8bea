"""Deny entries for the fenced instance's addresses, in the network ACLs of the subnets it
reaches the shared data in.

EC2 User Guide, "Security group connection tracking": "To ensure that traffic is immediately
interrupted ... you can use a network ACL for your subnet ... Adding a network ACL that blocks
traffic in either direction breaks existing connections." VPC User Guide, "Network ACLs": rules
are evaluated for traffic entering and leaving a subnet, lowest rule number first, and the first
match decides; traffic between two addresses of one subnet crosses no boundary and is not seen.
Hence:

- the entries go into the ACL of each mount target's subnet: inbound deny from the instance's
  address, outbound deny to it, all protocols. (In the instance's own subnet's ACL they would
  name it only as a peer, which traffic leaving or entering its own subnet never has.) A mount
  target in the instance's own subnet is out of their reach (swr/fence/mount_targets.py);
- an entry counts only when it is the first rule that matches: it takes the lowest free rule
  number, and is useless below an allow rule that matches the address first;
- an ACL holds 20 rules each way, the default deny included (Amazon VPC quotas, "Network
  ACLs"): beyond, CreateNetworkAclEntry answers NetworkAclEntryLimitExceeded;
- the entries stay until the instance is terminated, then go: its address returns to the subnet
  and will be given to another instance.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client, error_code
from handlers.core.record import AclEntry

MAX_RULE_NUMBER = 32766  # the highest a rule may have; 32767 is the default deny
NFS = ("6", 2049)
ALL = "-1"
GONE_CODES = frozenset({"InvalidNetworkAclEntry.NotFound", "InvalidNetworkAclID.NotFound"})


@dataclass(frozen=True)
class Rule:
    number: int
    egress: bool
    allow: bool
    protocol: str
    cidr: str
    ports: tuple[int, int] | None

    def matches(self, address: str, protocol: str, port: int | None) -> bool:
        """Whether the rule applies to a packet with this remote address; a port of None stands
        for any port, which only a rule without a port range surely covers."""
        if self.protocol not in (ALL, protocol):
            return False
        if self.ports is not None and (port is None or not self.ports[0] <= port <= self.ports[1]):
            return False
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False


@dataclass(frozen=True)
class Acl:
    acl_id: str
    rules: tuple[Rule, ...]

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> Acl:
        rules = []
        for entry in described.get("Entries", []):
            if not entry.get("CidrBlock"):
                continue  # IPv6 entries: swr adds none, and judges IPv4 addresses
            ports = entry.get("PortRange")
            rules.append(
                Rule(
                    number=int(entry["RuleNumber"]),
                    egress=bool(entry["Egress"]),
                    allow=entry["RuleAction"] == "allow",
                    protocol=str(entry["Protocol"]),
                    cidr=str(entry["CidrBlock"]),
                    ports=(int(ports["From"]), int(ports["To"])) if ports else None,
                )
            )
        return cls(str(described["NetworkAclId"]), tuple(sorted(rules, key=lambda r: r.number)))

    def first_match(self, egress: bool, address: str, protocol: str, port: int | None) -> Rule | None:
        return next((r for r in self.rules if r.egress == egress and r.matches(address, protocol, port)), None)

    def cuts(self, address: str) -> Rule | None:
        """The rule that breaks the instance's NFS sessions into this subnet: the first match of
        its requests coming in, or of the replies going out to it, is a deny."""
        for egress, protocol, port in ((False, *NFS), (True, NFS[0], None)):
            rule = self.first_match(egress, address, protocol, port)
            if rule is not None and not rule.allow:
                return rule
        return None

    def needs(self, address: str) -> list[bool]:
        """The directions (egress or not) in which no deny for exactly this address comes first."""
        cidr = f"{address}/32"
        return [
            egress
            for egress in (False, True)
            if not any(
                r.egress == egress and not r.allow and r.cidr == cidr and r.protocol == ALL
                for r in self.rules[: self._first_allow_index(egress, address)]
            )
        ]

    def free_number(self, egress: bool, address: str, taken: set[int]) -> int | None:
        """The lowest free rule number that still comes before the first allow matching the
        address, or None when there is none."""
        used = {r.number for r in self.rules if r.egress == egress} | taken
        index = self._first_allow_index(egress, address)
        limit = self.rules[index].number if index < len(self.rules) else MAX_RULE_NUMBER + 1
        return next((n for n in range(1, min(limit, MAX_RULE_NUMBER + 1)) if n not in used), None)

    def _first_allow_index(self, egress: bool, address: str) -> int:
        for index, rule in enumerate(self.rules):
            if rule.egress == egress and rule.allow and rule.matches(address, ALL, None):
                return index
            if rule.egress == egress and rule.allow and rule.matches(address, *NFS):
                return index
        return len(self.rules)


def of_subnets(subnet_ids: list[str]) -> dict[str, Acl]:
    """Subnet -> the network ACL it is associated with (every subnet has one)."""
    if not subnet_ids:
        return {}
    with api_call("read network ACLs"):
        described = client("ec2").describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": sorted(set(subnet_ids))}]
        )["NetworkAcls"]
    found: dict[str, Acl] = {}
    for acl in described:
        parsed = Acl.from_description(acl)
        for association in acl.get("Associations", []):
            if association.get("SubnetId") in subnet_ids:
                found[str(association["SubnetId"])] = parsed
    return found


def create(entry: AclEntry) -> None:
    with api_call(f"add deny rule {entry.rule_number} for {entry.cidr} to {entry.network_acl_id}"):
        client("ec2").create_network_acl_entry(
            NetworkAclId=entry.network_acl_id,
            RuleNumber=entry.rule_number,
            Protocol=ALL,
            RuleAction="deny",
            Egress=entry.egress,
            CidrBlock=entry.cidr,
        )


def remove(entry: AclEntry) -> None:
    """Delete the entry if it is still the one swr made (a rule number can be reused)."""
    with api_call(f"read {entry.network_acl_id}"):
        try:
            described = client("ec2").describe_network_acls(NetworkAclIds=[entry.network_acl_id])["NetworkAcls"]
        except ClientError as error:
            if error_code(error) in GONE_CODES:
                return
            raise
    still_ours = any(
        int(e["RuleNumber"]) == entry.rule_number
        and bool(e["Egress"]) == entry.egress
        and e.get("CidrBlock") == entry.cidr
        and e["RuleAction"] == "deny"
        for acl in described
        for e in acl.get("Entries", [])
    )
    if not still_ours:
        return
    with api_call(f"remove deny rule {entry.rule_number} for {entry.cidr} from {entry.network_acl_id}"):
        try:
            client("ec2").delete_network_acl_entry(
                NetworkAclId=entry.network_acl_id, RuleNumber=entry.rule_number, Egress=entry.egress
            )
        except ClientError as error:
            if error_code(error) not in GONE_CODES:
                raise
