"""What the world is, read once with read-only calls: the old instance and its interfaces,
the AMI, the AZs, instance type offerings and subnets, the security groups, the target
groups, the EFS mount targets and their network ACLs, and the instance profile's role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from handlers.core import launching
from handlers.core.aws import error_code
from handlers.core.fence.instances import NOT_FOUND as INSTANCE_NOT_FOUND
from handlers.core.launching import LaunchCandidate
from handlers.core.record import AppRecord
from handlers.core.steps import FailoverPlan
from swr.ops.common import FILE_SYSTEM_NOT_FOUND, IMAGE_NOT_FOUND, TARGET_GROUP_NOT_FOUND, Client, tag_dict
from swr.stack import StackOutputs


@dataclass
class Facts:
    client: Client
    stack: StackOutputs
    record: AppRecord
    candidates: list[LaunchCandidate]
    partition: str
    region: str
    account: str
    old: dict[str, Any] | None = None
    interfaces: dict[str, dict[str, str]] = field(default_factory=dict)  # eni -> tags
    target_groups: dict[str, dict[str, str] | None] = field(default_factory=dict)  # arn -> tags (None: gone)
    registered_in: list[str] = field(default_factory=list)
    image: dict[str, Any] | None = None
    az_states: dict[str, str] = field(default_factory=dict)
    offered: set[tuple[str, str]] = field(default_factory=set)  # (az, type)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    mount_targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # az -> mount target
    file_system_tags: dict[str, str] = field(default_factory=dict)
    network_acls: dict[str, str] = field(default_factory=dict)  # subnet of a mount target -> its network ACL
    vpc_id: str = ""
    file_system_problem: str | None = None
    instance_role_arn: str | None = None
    instance_profile_problem: str | None = None

    @property
    def old_state(self) -> str:
        return str(self.old["State"]["Name"]) if self.old else "gone"

    def arn(self, service: str, resource: str, *, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account if account else ''}:{resource}"

    @classmethod
    def gather(
        cls, client: Client, stack: StackOutputs, record: AppRecord, plan: FailoverPlan, execution: str
    ) -> Facts:
        partition, _, region, account = stack.StateMachineArn.split(":")[1:5]
        facts = cls(client, stack, record, launching.launch_candidates(record, plan), partition, region, account)
        facts._read_ec2()
        facts._read_target_groups()
        facts._read_efs()
        facts._read_instance_profile()
        return facts

    def _read_ec2(self) -> None:
        ec2, record = self.client("ec2"), self.record
        try:
            found = ec2.describe_instances(InstanceIds=[record.current_instance_id])["Reservations"]
            self.old = next((i for r in found for i in r.get("Instances", [])), None)
        except ClientError as error:
            if error_code(error) not in INSTANCE_NOT_FOUND:
                raise
        eni_ids = [n["NetworkInterfaceId"] for n in (self.old or {}).get("NetworkInterfaces", [])]
        if eni_ids:
            for eni in ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]:
                self.interfaces[eni["NetworkInterfaceId"]] = tag_dict(eni.get("TagSet"))
        try:
            self.image = next(iter(ec2.describe_images(ImageIds=[record.launch_spec.image_id])["Images"]), None)
        except ClientError as error:
            if error_code(error) not in IMAGE_NOT_FOUND:
                raise
        azs = sorted({c.az for c in self.candidates} | {record.current_az})
        for zone in ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": azs}])[
            "AvailabilityZones"
        ]:
            self.az_states[zone["ZoneName"]] = zone["State"]
        types = sorted({c.instance_type for c in self.candidates})
        if types:
            pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": azs}],
            )
            for page in pages:
                for offer in page.get("InstanceTypeOfferings", []):
                    self.offered.add((offer["Location"], offer["InstanceType"]))
        subnet_ids = sorted({c.subnet_id for c in self.candidates})
        if subnet_ids:
            found_subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnet_ids}])["Subnets"]
            self.subnets = {s["SubnetId"]: s for s in found_subnets}
        group_ids = sorted({*record.launch_spec.security_group_ids, record.blackhole_security_group_id})
        found_groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": group_ids}])
        self.groups = {g["GroupId"]: g for g in found_groups["SecurityGroups"]}

    def _read_target_groups(self) -> None:
        elb = self.client("elbv2")
        for arn in self.record.target_group_arns:
            try:
                elb.describe_target_groups(TargetGroupArns=[arn])
            except ClientError as error:
                if error_code(error) not in TARGET_GROUP_NOT_FOUND:
                    raise
                self.target_groups[arn] = None
                continue
            described = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"]
            self.target_groups[arn] = tag_dict(described[0].get("Tags") if described else [])
            health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if any(h["Target"]["Id"] == self.record.current_instance_id for h in health):
                self.registered_in.append(arn)

    def _read_efs(self) -> None:
        try:
            found = self.client("efs").describe_mount_targets(FileSystemId=self.record.efs.file_system_id)
        except ClientError as error:
            if error_code(error) not in FILE_SYSTEM_NOT_FOUND:
                raise
            self.file_system_problem = (
                f"EFS file system {self.record.efs.file_system_id} not found ({error_code(error)})"
            )
            return
        subnet_azs = {s["SubnetId"]: s["AvailabilityZone"] for s in self.subnets.values()}
        for target in found.get("MountTargets", []):
            az = target.get("AvailabilityZoneName") or subnet_azs.get(target["SubnetId"])
            if az:
                self.mount_targets[az] = target
            self.vpc_id = self.vpc_id or str(target.get("VpcId", ""))
        described = self.client("efs").describe_file_systems(FileSystemId=self.record.efs.file_system_id)
        self.file_system_tags = tag_dict(described["FileSystems"][0].get("Tags"))
        subnet_ids = sorted({t["SubnetId"] for t in self.mount_targets.values()})
        if subnet_ids:
            acls = self.client("ec2").describe_network_acls(
                Filters=[{"Name": "association.subnet-id", "Values": subnet_ids}]
            )["NetworkAcls"]
            for acl in acls:
                for association in acl.get("Associations", []):
                    if association.get("SubnetId") in subnet_ids:
                        self.network_acls[association["SubnetId"]] = acl["NetworkAclId"]

    def _read_instance_profile(self) -> None:
        arn = self.record.launch_spec.instance_profile_arn
        if not arn:
            return
        try:
            profile = self.client("iam").get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[-1])
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            self.instance_profile_problem = f"instance profile {arn} not found"
            return
        roles = profile["InstanceProfile"].get("Roles", [])
        if not roles:
            self.instance_profile_problem = f"instance profile {arn} has no role"
        else:
            self.instance_role_arn = str(roles[0]["Arn"])
