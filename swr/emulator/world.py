"""The seeded world: what a user of swr has in their account before deploying swr.

A VPC with subnets in three AZs, the application's security group and AMI, an EFS file
system with a mount target per AZ, an NLB with a target group, and the application's
running instance (no swr tags, no swr instance profile). Everything is created through the
AWS APIs, so the same calls would build it on AWS. What swr itself deploys (table,
blackhole group, instance role, workflow) comes from infra/template.yaml, and the WorldInfo
fields for it are filled from the stack's outputs; `registration()` is what the user passes
to `swr register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swr import onboarding

REGION = "ap-northeast-1"
AZS = ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d")
APP = "demo"
INSTANCE_TYPES = ["m6i.large", "m5.large"]
HEALTH_TIMEOUT_SECONDS = 600
MOUNT_POINT = "/srv/demo/shared"
USER_DATA = "#!/bin/bash\n# swr boot gate runs from systemd before RMS\n"


@dataclass
class WorldInfo:
    region: str
    app: str
    vpc_id: str
    subnets: dict[str, str]  # az -> subnet
    app_security_group_id: str
    image_id: str
    file_system_id: str
    load_balancer_arn: str
    target_group_arn: str
    route_table_id: str
    # filled from the deployed stack's outputs
    table_name: str = ""
    blackhole_security_group_id: str = ""
    instance_profile_arn: str = ""

    def az_of_subnet(self) -> dict[str, str]:
        return {subnet: az for az, subnet in self.subnets.items()}


def seed(client: Any) -> WorldInfo:
    """Build the account-level resources. ``client(service)`` returns a boto3 client."""
    ec2, elb, efs = (client(s) for s in ("ec2", "elbv2", "efs"))
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        az: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        for i, az in enumerate(AZS)
    }
    app_sg = ec2.create_security_group(GroupName="demo-app", Description="demo application", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
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
    for subnet in subnets.values():
        efs.create_mount_target(FileSystemId=file_system["FileSystemId"], SubnetId=subnet, SecurityGroups=[app_sg])
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
