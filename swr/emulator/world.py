"""The seeded world: what a user of swr has in their account before deploying swr.

A VPC with an application subnet and a data subnet in each of three AZs, the application's
security group and AMI, an EFS file system with a mount target per AZ (in the data subnets,
or with ``WorldOptions.mount_targets_in_app_subnets`` beside the instances), an NLB with a
target group, and the application's running instance (no swr tags, no swr instance
profile). Everything is created through the AWS APIs, so the same calls would build it on
AWS. What swr itself deploys (table, blackhole group, instance role, workflow) comes from
infra/template.yaml, and the WorldInfo fields for it are filled from the stack's outputs;
`registration()` is what the user passes to `swr register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swr.emulator.network import CONNECTION_TERMINATION, DEREGISTRATION_DELAY, Address
from swr.ops import onboarding

REGION = "ap-northeast-1"
AZS = ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d")
APP = "demo"
INSTANCE_TYPES = ["m6i.large", "m5.large"]
HEALTH_TIMEOUT_SECONDS = 600
MOUNT_POINT = "/srv/demo/shared"
USER_DATA = "#!/bin/bash\n# swr boot gate runs from systemd before RMS\n"


@dataclass(frozen=True)
class WorldOptions:
    """How the user's account is laid out: what a scenario may vary."""

    # EFS mount targets in the instances' own subnets (network ACLs cannot cut what stays inside
    # a subnet) rather than in data subnets of their own.
    mount_targets_in_app_subnets: bool = False
    # The target group's deregistration delay and whether its NLB closes the connections of a
    # deregistered target when the delay ends (AWS's defaults: 300 s, false).
    deregistration_delay: int = 30
    connection_termination: bool = True


@dataclass
class WorldInfo:
    region: str
    app: str
    vpc_id: str
    subnets: dict[str, str]  # az -> application subnet
    app_security_group_id: str
    image_id: str
    file_system_id: str
    load_balancer_arn: str
    target_group_arn: str
    route_table_id: str
    data_subnets: dict[str, str] = field(default_factory=dict)  # az -> subnet of the mount target
    subnet_cidrs: dict[str, str] = field(default_factory=dict)  # subnet -> CIDR block
    # filled from the deployed stack's outputs
    table_name: str = ""
    blackhole_security_group_id: str = ""
    instance_profile_arn: str = ""

    def az_of_subnet(self) -> dict[str, str]:
        return {subnet: az for by_az in (self.subnets, self.data_subnets) for az, subnet in by_az.items()}

    def endpoint_address(self, az: str) -> Address | None:
        """Where an instance in ``az`` reaches the AWS APIs: the interface endpoints the stack
        puts in the application subnets (EndpointSubnetIds)."""
        subnet = self.subnets.get(az)
        if subnet is None or subnet not in self.subnet_cidrs:
            return None
        return Address(self.subnet_cidrs[subnet].rsplit(".", 1)[0] + ".250", subnet)


def seed(client: Any, options: WorldOptions | None = None) -> WorldInfo:
    """Build the account-level resources. ``client(service)`` returns a boto3 client."""
    options = options or WorldOptions()
    ec2, elb, efs = (client(s) for s in ("ec2", "elbv2", "efs"))
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    cidrs: dict[str, str] = {}

    def subnet(cidr: str, az: str) -> str:
        subnet_id = str(ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"])
        cidrs[subnet_id] = cidr
        return subnet_id

    subnets = {az: subnet(f"10.20.{i}.0/24", az) for i, az in enumerate(AZS)}
    data_subnets = {az: subnet(f"10.20.{10 + i}.0/24", az) for i, az in enumerate(AZS)}
    app_sg = ec2.create_security_group(GroupName="demo-app", Description="demo application", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
        ],
    )
    efs_sg = ec2.create_security_group(GroupName="demo-efs", Description="demo shared data (NFS)", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=efs_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
        ],
    )
    image = ec2.register_image(
        Name="demo-app-rms-2026.11",
        Description="demo application with PRIMECLUSTER RMS and swr rms_hooks",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}],
    )["ImageId"]
    file_system = efs.create_file_system(
        CreationToken="demo-shared-data", Encrypted=True, PerformanceMode="generalPurpose"
    )
    for mount_subnet in (subnets if options.mount_targets_in_app_subnets else data_subnets).values():
        efs.create_mount_target(
            FileSystemId=file_system["FileSystemId"], SubnetId=mount_subnet, SecurityGroups=[efs_sg]
        )
    nlb = elb.create_load_balancer(Name="demo-nlb", Type="network", Scheme="internal", Subnets=list(subnets.values()))[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    target_group = elb.create_target_group(
        Name="demo-app",
        Protocol="TCP",
        Port=8080,
        VpcId=vpc,
        TargetType="instance",
        HealthCheckProtocol="TCP",
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=3,
        UnhealthyThresholdCount=3,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=target_group,
        Attributes=[
            {"Key": DEREGISTRATION_DELAY, "Value": str(options.deregistration_delay)},
            {"Key": CONNECTION_TERMINATION, "Value": str(options.connection_termination).lower()},
        ],
    )
    elb.create_listener(
        LoadBalancerArn=nlb,
        Protocol="TCP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}],
    )
    route_table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
    return WorldInfo(
        region=REGION,
        app=APP,
        vpc_id=vpc,
        subnets=subnets,
        app_security_group_id=app_sg,
        image_id=image,
        file_system_id=file_system["FileSystemId"],
        load_balancer_arn=nlb,
        target_group_arn=target_group,
        route_table_id=route_table["RouteTableId"],
        data_subnets=data_subnets,
        subnet_cidrs=cidrs,
    )


def launch_primary(client: Any, world: WorldInfo) -> str:
    """The application's running instance, as the user launched it before protecting it:
    no swr tags, no swr instance profile (``swr register`` adds both)."""
    instance = client("ec2").run_instances(
        ImageId=world.image_id,
        InstanceType=INSTANCE_TYPES[0],
        MinCount=1,
        MaxCount=1,
        SubnetId=world.subnets[AZS[0]],
        SecurityGroupIds=[world.app_security_group_id],
        UserData=USER_DATA,
        MetadataOptions={"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "demo-app"}]}],
    )["Instances"][0]
    # Idle established connections tracked for 10 minutes, not the 5-day default (swr register
    # and drill --dry-run point at the default).
    client("ec2").modify_network_interface_attribute(
        NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
        ConnectionTrackingSpecification={"TcpEstablishedTimeout": 600},
    )
    return str(instance["InstanceId"])


def registration(world: WorldInfo, instance_id: str) -> onboarding.Registration:
    """What the user passes to ``swr register`` for the seeded application."""
    return onboarding.Registration(
        app=world.app,
        instance_id=instance_id,
        target_group_arns=[world.target_group_arn],
        file_system_id=world.file_system_id,
        mount_point=MOUNT_POINT,
        subnet_ids=[world.subnets[az] for az in AZS],
        extra_instance_types=INSTANCE_TYPES[1:],
        health_timeout_seconds=HEALTH_TIMEOUT_SECONDS,
    )
