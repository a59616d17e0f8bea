"""After the emulator deploys infra/template.yaml: does every declared resource exist?

moto's CloudFormation can report CREATE_COMPLETE for a stack whose resources it skipped, so
the emulator does not take the stack status on trust. Every resource the template declares
(whose Condition holds) must be listed by the stack with a physical id, and, for the types
swr depends on, be found by the service's own read API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class StackIncomplete(Exception):
    """A declared resource is missing after the deployment."""


Probe = Callable[[Callable[[str], Any], str], bool]


def _alarm(client: Callable[[str], Any], name: str) -> bool:
    return bool(client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"])


def _rule(client: Callable[[str], Any], name: str) -> bool:
    events = client("events")
    events.describe_rule(Name=name)
    return bool(events.list_targets_by_rule(Rule=name)["Targets"])  # a rule with no target starts nothing


def _queue_policy(client: Callable[[str], Any], urls: str) -> bool:
    sqs = client("sqs")
    return all(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
        for url in urls.split(",")
    )


def _log_group(client: Callable[[str], Any], name: str) -> bool:
    groups = client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(g["logGroupName"] == name for g in groups)


def _trail(client: Callable[[str], Any], name: str) -> bool:
    return bool(client("cloudtrail").get_trail_status(Name=name)["IsLogging"])


def _topic(client: Callable[[str], Any], arn: str) -> bool:
    return bool(client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]["TopicArn"] == arn)


def _topic_policy(client: Callable[[str], Any], arns: str) -> bool:
    # Every topic has a policy; the stack's must be the one that names a service principal.
    sns = client("sns")
    return all(
        "Service" in sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy", "") for arn in arns.split(",")
    )


def _dashboard(client: Callable[[str], Any], name: str) -> bool:
    body = client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"]
    return bool(json.loads(body).get("widgets"))  # a dashboard CloudWatch could not render is not there


def _lambda_permission(client: Callable[[str], Any], physical_id: str) -> bool:
    function, statement = physical_id.split("|", 1)
    policy = json.loads(client("lambda").get_policy(FunctionName=function)["Policy"])
    return any(s.get("Sid") == statement for s in policy.get("Statement", []))


PROBES: dict[str, Probe] = {
    "AWS::Lambda::Function": lambda c, pid: bool(c("lambda").get_function(FunctionName=pid)),
    "AWS::Lambda::Permission": _lambda_permission,
    "AWS::StepFunctions::StateMachine": lambda c, pid: bool(
        c("stepfunctions").describe_state_machine(stateMachineArn=pid)
    ),
    "AWS::DynamoDB::Table": lambda c, pid: (
        c("dynamodb").describe_table(TableName=pid)["Table"]["TableStatus"] == "ACTIVE"
    ),
    "AWS::Events::Rule": _rule,
    "AWS::SQS::Queue": lambda c, pid: bool(c("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])),
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::IAM::Role": lambda c, pid: bool(c("iam").get_role(RoleName=pid)),
    "AWS::IAM::ManagedPolicy": lambda c, pid: bool(c("iam").get_policy(PolicyArn=pid)),
    "AWS::IAM::InstanceProfile": lambda c, pid: bool(c("iam").get_instance_profile(InstanceProfileName=pid)),
    "AWS::EC2::SecurityGroup": lambda c, pid: bool(c("ec2").describe_security_groups(GroupIds=[pid])["SecurityGroups"]),
    "AWS::EC2::SecurityGroupIngress": lambda c, pid: bool(
        c("ec2").describe_security_group_rules(SecurityGroupRuleIds=[pid])["SecurityGroupRules"]
    ),
    "AWS::EC2::VPCEndpoint": lambda c, pid: bool(c("ec2").describe_vpc_endpoints(VpcEndpointIds=[pid])["VpcEndpoints"]),
    "AWS::Logs::LogGroup": _log_group,
    "AWS::KMS::Key": lambda c, pid: c("kms").describe_key(KeyId=pid)["KeyMetadata"]["Enabled"],
    "AWS::S3::Bucket": lambda c, pid: bool(c("s3").head_bucket(Bucket=pid)),
    "AWS::S3::BucketPolicy": lambda c, pid: bool(c("s3").get_bucket_policy(Bucket=pid)["Policy"]),
    "AWS::CloudTrail::Trail": _trail,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::CloudWatch::Dashboard": _dashboard,
}


@dataclass
class StackCheck:
    stack_name: str
    declared: list[str] = field(default_factory=list)  # logical ids whose condition holds
    probed: list[str] = field(default_factory=list)  # also found through the service API
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing


def check_stack(
    client: Callable[[str], Any], stack_name: str, template: dict[str, Any], parameters: dict[str, str]
) -> StackCheck:
    """Compare the deployed stack with the (transformed) template it was deployed from."""
    values = {**_defaults(template), **parameters}
    conditions = template.get("Conditions", {})
    listed = {
        r["LogicalResourceId"]: r
        for r in client("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]
    }
    check = StackCheck(stack_name)
    for logical_id, resource in template.get("Resources", {}).items():
        condition = resource.get("Condition")
        if condition and not _condition(conditions[condition], values, conditions):
            continue
        check.declared.append(logical_id)
        found = listed.get(logical_id)
        physical_id = str((found or {}).get("PhysicalResourceId") or "")
        if not physical_id or physical_id == "None":
            check.missing.append(f"{logical_id} ({resource['Type']}): not created")
            continue
        probe = PROBES.get(resource["Type"])
        if probe is None:
            continue
        try:
            present = probe(client, physical_id)
        except Exception as error:  # the API saying "no such thing" is the finding
            present, detail = False, f": {error}"
        else:
            detail = ""
        if present:
            check.probed.append(logical_id)
        else:
            check.missing.append(f"{logical_id} ({resource['Type']} {physical_id}): not found by its API{detail}")
    return check


def _defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}


def _condition(expression: Any, values: dict[str, str], conditions: dict[str, Any]) -> bool:
    """The condition functions a template may use, over parameter values."""
    if isinstance(expression, bool):
        return expression
    if not isinstance(expression, dict) or len(expression) != 1:
        raise ValueError(f"unsupported condition {expression!r}")
    ((function, argument),) = expression.items()
    if function == "Fn::Equals":
        left, right = (_value(a, values) for a in argument)
        return left == right
    if function == "Fn::And":
        return all(_condition(a, values, conditions) for a in argument)
    if function == "Fn::Or":
        return any(_condition(a, values, conditions) for a in argument)
    if function == "Fn::Not":
        return not _condition(argument[0], values, conditions)
    if function == "Condition":
        return _condition(conditions[argument], values, conditions)
    raise ValueError(f"unsupported condition function {function}")


def _value(expression: Any, values: dict[str, str]) -> str:
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and "Ref" in expression:
        return values[expression["Ref"]]
    if isinstance(expression, dict) and "Fn::Join" in expression:
        separator, parts = expression["Fn::Join"]
        items = _value(parts, values).split(",") if isinstance(parts, dict) else [_value(p, values) for p in parts]
        return separator.join(items)
    if isinstance(expression, dict) and "Condition" in expression:
        raise ValueError("a Condition is not a value")
    return str(expression)
