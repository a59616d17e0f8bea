"""Every network interface of the fenced instance into the application's blackhole group.

This does not cut what is established: EC2 User Guide, "Security group connection tracking",
"When you change a security group rule, its tracked connections are not immediately
interrupted". A new connection is evaluated against the rules, and the blackhole group has
none: the instance can open no new session (an NFS client that lost its session cannot get
another, to a mount target swr recreates either). That is what it is for here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.core.aws import api_call, client


def blackhole(instance: Mapping[str, Any], group_id: str) -> bool:
    """Put every interface in ``group_id``; True once DescribeNetworkInterfaces shows it so."""
    instance_id = instance["InstanceId"]
    interfaces = [eni["NetworkInterfaceId"] for eni in instance.get("NetworkInterfaces", [])]
    if not interfaces:
        return False
    ec2 = client("ec2")
    for eni in interfaces:
        with api_call(f"move {eni} of {instance_id} into the blackhole security group"):
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[group_id])
    with api_call(f"read network interfaces of {instance_id}"):
        found = ec2.describe_network_interfaces(NetworkInterfaceIds=interfaces)["NetworkInterfaces"]
    return len(found) == len(interfaces) and all(
        [g["GroupId"] for g in eni.get("Groups", [])] == [group_id] for eni in found
    )
