"""The network around the instances: network ACL quotas (patch 29), EFS mount targets that take
time to delete (30), interfaces' connection tracking (31) and subnets' address reuse (35)."""

from __future__ import annotations

from typing import Any, cast

from swr.emulator.moto_bridge._state import _hooks, _lock, _Patches, _require, note_backends_changed

# --------------------------------------------------------------------------------------------------
# 29. Network ACL entries within the quota
# --------------------------------------------------------------------------------------------------
# moto accepts any number of entries. Amazon VPC quotas ("Network ACLs"): 20 rules per network
# ACL, one way (inbound and outbound counted apart, IPv4 and IPv6 apart), the default deny rule
# included; adjustable up to 40. Beyond it CreateNetworkAclEntry fails with
# NetworkAclEntryLimitExceeded. The fence must meet that answer here as it would on AWS.

NETWORK_ACL_RULES_PER_DIRECTION = 20


def _patch_network_acl_quota(p: _Patches) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.network_acls import NetworkAclBackend

    original = _require(NetworkAclBackend, "create_network_acl_entry")

    def create_network_acl_entry(self: Any, network_acl_id: str, rule_number: int, *args: Any, **kwargs: Any) -> Any:
        acl = self.get_network_acl(network_acl_id)
        egress = kwargs.get("egress", args[2] if len(args) > 2 else None)
        ipv6 = bool(kwargs.get("ipv6_cidr_block", args[9] if len(args) > 9 else None))
        same_way = [
            e for e in acl.network_acl_entries if bool(e.egress) == bool(egress) and bool(e.ipv6_cidr_block) == ipv6
        ]
        if len(same_way) >= NETWORK_ACL_RULES_PER_DIRECTION:
            raise EC2ClientError(
                "NetworkAclEntryLimitExceeded",
                f"The maximum number of network ACL entries ({NETWORK_ACL_RULES_PER_DIRECTION}) has been reached"
                f" for {network_acl_id}.",
            )
        return original(self, network_acl_id, rule_number, *args, **kwargs)

    p.set(NetworkAclBackend, "create_network_acl_entry", create_network_acl_entry)


def network_acls_by_subnet() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Subnet id -> (network ACL id, its IPv4 entries as DescribeNetworkAcls reports them)."""
    from moto.ec2.models import ec2_backends

    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for _account, _region, backend in ec2_backends.iter_backends():
        for acl in list(cast(Any, backend).network_acls.values()):
            entries = [
                {
                    "RuleNumber": int(e.rule_number),
                    "Egress": bool(e.egress),
                    "RuleAction": str(e.rule_action),
                    "Protocol": str(e.protocol),
                    "CidrBlock": str(e.cidr_block),
                    "PortRange": {"From": int(e.port_range_from), "To": int(e.port_range_to)}
                    if e.port_range_from not in (None, "")
                    else None,
                }
                for e in list(acl.network_acl_entries)
                if e.cidr_block
            ]
            for association in list(acl.associations):
                found[str(association.subnet_id)] = (str(acl.id), entries)
    return found


# --------------------------------------------------------------------------------------------------
# 30. DeleteMountTarget leaves the mount target deleting
# --------------------------------------------------------------------------------------------------
# moto removes a mount target (and its network interface) at once. The EFS API reference,
# DeleteMountTarget: "This operation forcibly breaks any mounts of the file system by using the
# mount target that is being deleted ... The DeleteMountTarget call returns while the mount
# target state is still deleting. You can check the mount target deletion by calling the
# DescribeMountTargets operation". Here it stays "deleting" until hooks.mount_target_deleting
# lets it go (the simulation does, after the latency profile's delay; the default at once).


def _patch_efs_mount_target_deletion(p: _Patches) -> None:
    from moto.efs.models import EFSBackend

    original = _require(EFSBackend, "delete_mount_target")

    def delete_mount_target(self: Any, mount_target_id: str) -> None:
        target = self.mount_targets_by_id.get(mount_target_id)
        if target is None:
            original(self, mount_target_id)  # MountTargetNotFound, as moto answers it
            return
        if target.life_cycle_state == "deleting":
            return
        target.life_cycle_state = "deleting"
        hooks = _hooks()
        (hooks.mount_target_deleting if hooks is not None else finish_mount_target_deletion)(mount_target_id)

    p.set(EFSBackend, "delete_mount_target", delete_mount_target)
    p.set(EFSBackend, "_swr_delete_mount_target", original)


def finish_mount_target_deletion(mount_target_id: str) -> None:
    """The deletion of a mount target completes: it and its network interface are gone."""
    from moto.efs.models import efs_backends

    with _lock:
        for _account, _region, backend in efs_backends.iter_backends():
            target = cast(Any, backend).mount_targets_by_id.get(mount_target_id)
            if target is not None and target.life_cycle_state == "deleting":
                cast(Any, backend)._swr_delete_mount_target(mount_target_id)
                note_backends_changed()
                return


def mount_targets(file_system_id: str) -> list[dict[str, str]]:
    """Every mount target of a file system: id, subnet, AZ, address and lifecycle state."""
    from moto.efs.models import efs_backends

    for _account, _region, backend in efs_backends.iter_backends():
        file_system = cast(Any, backend).file_systems_by_id.get(file_system_id)
        if file_system is not None:
            return [
                {
                    "MountTargetId": str(t.mount_target_id),
                    "SubnetId": str(t.subnet_id),
                    "AvailabilityZoneName": str(t.availability_zone_name),
                    "IpAddress": str(t.ip_address),
                    "LifeCycleState": str(t.life_cycle_state),
                }
                for t in list(file_system.iter_mount_targets())
            ]
    raise KeyError(f"no such file system: {file_system_id}")


# --------------------------------------------------------------------------------------------------
# 31. Network interfaces keep their connection tracking configuration
# --------------------------------------------------------------------------------------------------
# moto ignores ModifyNetworkInterfaceAttribute's ConnectionTrackingSpecification. EC2 User Guide,
# "Idle connection tracking timeout": an interface's TCP established timeout is 432,000 s (5 days)
# unless set (60 s at the least); DescribeNetworkInterfaces reports what was set as
# ConnectionTrackingConfiguration. swr register and swr drill --dry-run read it.


def _patch_eni_connection_tracking(p: _Patches) -> None:
    from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

    original = _require(ElasticNetworkInterfaces, "modify_network_interface_attribute")

    def modify_network_interface_attribute(self: Any) -> Any:
        specification = self._get_param("ConnectionTrackingSpecification")
        if isinstance(specification, dict) and specification:
            self.error_on_dryrun()
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            current = dict(getattr(eni, "connection_tracking_configuration", None) or {})
            current.update({str(k): int(v) for k, v in specification.items()})
            eni.connection_tracking_configuration = current
        return original(self)

    p.set(ElasticNetworkInterfaces, "modify_network_interface_attribute", modify_network_interface_attribute)


def availability_zone_of(resource_id: str) -> str | None:
    """The AZ of an instance, network interface, subnet or EFS mount target, or None."""
    from moto.ec2.models import ec2_backends
    from moto.efs.models import efs_backends

    for _account, _region, backend in ec2_backends.iter_backends():
        ec2: Any = backend
        if resource_id.startswith("i-"):
            instance = ec2.get_instance_by_id(resource_id)
            if instance is not None:
                return str(instance.placement.availability_zone)
        elif resource_id.startswith("eni-") and resource_id in ec2.enis:
            return str(ec2.enis[resource_id].subnet.availability_zone)
        elif resource_id.startswith("subnet-"):
            for subnets in ec2.subnets.values():
                if resource_id in subnets:
                    return str(subnets[resource_id].availability_zone)
    if resource_id.startswith("fsmt-"):
        for _account, _region, backend in efs_backends.iter_backends():
            target = cast(Any, backend).mount_targets_by_id.get(resource_id)
            if target is not None:
                return str(target.availability_zone_name)
    return None


# --------------------------------------------------------------------------------------------------
# 35. Released private addresses are reused lowest first
# --------------------------------------------------------------------------------------------------


def _patch_subnet_ip_reuse(p: _Patches) -> None:
    import ipaddress

    from moto.ec2.models.subnets import Subnet

    get_available_subnet_ip = _require(Subnet, "get_available_subnet_ip")

    def lowest_first(self: Any, instance: Any) -> str:
        unused = self._unused_ips
        if not unused:
            return str(get_available_subnet_ip(self, instance))
        address = min(unused, key=ipaddress.ip_address)
        unused.discard(address)
        self._subnet_ips[address] = instance
        return str(address)

    p.set(Subnet, "get_available_subnet_ip", lowest_first)
