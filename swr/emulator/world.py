"""The seeded world: what a user of swr has in their account before the first failover.

A VPC with subnets in three AZs, the application's AMI, an EFS file system with a mount
target per AZ, an NLB with a target group, the blackhole security group, the record table,
and one protected application "demo". Everything is created through the AWS APIs, so the
same calls would build it on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handlers.core.record import AppRecord, EfsMount, LaunchSpec, SubnetChoice

REGION = "ap-northeast-1"
AZS = ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d")
APP = "demo"
TABLE = "swr-apps"
INSTANCE_TYPES = ["m6i.large", "m5.large"]
HEALTH_TIMEOUT_SECONDS = 600


@dataclass
class WorldInfo:
    region: str
    app: str
    table_name: str
    vpc_id: str
    subnets: dict[str, str]  # az -> subnet
    app_security_group_id: str
    blackhole_security_group_id: str
    image_id: str
    instance_profile_arn: str
    file_system_id: str
    load_balancer_arn: str
    target_group_arn: str
    alarm_names: list[str] = field(default_factory=list)

    def az_of_subnet(self) -> dict[str, str]:
        return {subnet: az for az, subnet in self.subnets.items()}


def seed(client: Any) -> WorldInfo:
    """Build the account-level resources. ``client(service)`` returns a boto3 client."""
    ec2, elb, efs, iam, dynamodb = (client(s) for s in ("ec2", "elbv2", "efs", "iam", "dynamodb"))
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
    blackhole = ec2.create_security_group(
        GroupName="swr-blackhole", Description="swr fence: no ingress, no egress", VpcId=vpc
    )["GroupId"]
    # A new security group allows all egress; a fence must allow nothing.
    ec2.revoke_security_group_egress(
        GroupId=blackhole, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    image = ec2.register_image(
        Name="demo-app-rms-2026.11",
        Description="demo application with PRIMECLUSTER RMS and swr rms_hooks",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}],
    )["ImageId"]
    iam.create_role(RoleName="swr-protected-instance", AssumeRolePolicyDocument=_trust("ec2.amazonaws.com"))
    profile = iam.create_instance_profile(InstanceProfileName="swr-protected-instance")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="swr-protected-instance", RoleName="swr-protected-instance")
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
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return WorldInfo(
        region=REGION,
        app=APP,
        table_name=TABLE,
        vpc_id=vpc,
        subnets=subnets,
        app_security_group_id=app_sg,
        blackhole_security_group_id=blackhole,
        image_id=image,
        instance_profile_arn=profile["Arn"],
        file_system_id=file_system["FileSystemId"],
        load_balancer_arn=nlb,
        target_group_arn=target_group,
    )


def launch_primary(client: Any, world: WorldInfo) -> str:
    """The application's running instance, as the user launched it before protecting it."""
    tags = [
        {"Key": "Name", "Value": "demo-app"},
        {"Key": "swr:app", "Value": world.app},
        {"Key": "swr:generation", "Value": "0"},
    ]
    instance = client("ec2").run_instances(
        ImageId=world.image_id,
        InstanceType=INSTANCE_TYPES[0],
        MinCount=1,
        MaxCount=1,
        SubnetId=world.subnets[AZS[0]],
        SecurityGroupIds=[world.app_security_group_id],
        IamInstanceProfile={"Arn": world.instance_profile_arn},
        MetadataOptions={"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    return str(instance["InstanceId"])


def create_alarms(client: Any, world: WorldInfo, instance_id: str) -> list[str]:
    """Status-check alarms on the instance and the heartbeat-missing alarm on the app."""
    cloudwatch = client("cloudwatch")
    names = []
    for metric in ("StatusCheckFailed_Instance", "StatusCheckFailed_System"):
        name = f"swr-{world.app}-{metric}"
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/EC2",
            MetricName=metric,
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
        )
        names.append(name)
    heartbeat = f"swr-{world.app}-heartbeat-missing"
    cloudwatch.put_metric_alarm(
        AlarmName=heartbeat,
        Namespace="swr",
        MetricName="Heartbeat",
        Dimensions=[{"Name": "App", "Value": world.app}],
        Statistic="SampleCount",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",  # no heartbeat at all is the hang we want to catch
    )
    names.append(heartbeat)
    return names


def app_record(world: WorldInfo, instance_id: str) -> AppRecord:
    return AppRecord(
        app=world.app,
        launch_spec=LaunchSpec(
            image_id=world.image_id,
            instance_types=INSTANCE_TYPES,
            security_group_ids=[world.app_security_group_id],
            instance_profile_arn=world.instance_profile_arn,
            user_data="#!/bin/bash\n# swr boot gate runs from systemd before RMS\n",
            tags={"Name": "demo-app"},
        ),
        subnets=[SubnetChoice(az=az, subnet_id=subnet) for az, subnet in world.subnets.items()],
        target_group_arns=[world.target_group_arn],
        efs=EfsMount(file_system_id=world.file_system_id, mount_point="/srv/demo/shared"),
        alarm_names=world.alarm_names,
        blackhole_security_group_id=world.blackhole_security_group_id,
        health_timeout_seconds=HEALTH_TIMEOUT_SECONDS,
        current_instance_id=instance_id,
        current_az=AZS[0],
    )


def _trust(service: str) -> str:
    return (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        f'"Principal": {{"Service": "{service}"}}, "Action": "sts:AssumeRole"}}]}}'
    )
