"""Canary tests for the moto bridge's IAM patches: CloudFormation roles keep their managed
policies (22) and IAM answers SimulatePrincipalPolicy (23), which ``swr drill --dry-run``
uses to ask what each step's role may do. Each fails against moto 5.2.5 without its patch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from swr.emulator import moto_bridge
from swr.emulator.moto_bridge import BridgeHooks

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
VPC_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0app"
SUBNET_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/swr-apps"

LAUNCH_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/*",
            "Condition": {"StringEquals": {"ec2:Vpc": VPC_ARN}},
        },
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:TerminateInstances"], "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "ec2:TerminateInstances",
            "Resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*",
        },
    ],
}
RECORD_WRITE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN}],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def iam() -> Iterator[Any]:
    moto_bridge.start(BridgeHooks(warp=lambda: 100.0), region=REGION)
    try:
        yield boto3.client("iam", region_name=REGION)
    finally:
        moto_bridge.stop()


def stack_template(role_policies: dict[str, Any], managed: list[str]) -> str:
    return json.dumps(
        {
            "Resources": {
                "RecordWritePolicy": {
                    "Type": "AWS::IAM::ManagedPolicy",
                    "Properties": {"PolicyDocument": RECORD_WRITE_POLICY},
                },
                "FencePolicy": {
                    "Type": "AWS::IAM::ManagedPolicy",
                    "Properties": {"PolicyDocument": LAUNCH_POLICY},
                },
                "StepRole": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "AssumeRolePolicyDocument": LAMBDA_TRUST,
                        "ManagedPolicyArns": [{"Ref": name} for name in managed],
                        "Policies": [
                            {"PolicyName": name, "PolicyDocument": document} for name, document in role_policies.items()
                        ],
                    },
                },
            },
            "Outputs": {"RoleName": {"Value": {"Ref": "StepRole"}}},
        }
    )


def role_with_policies(iam: Any) -> str:
    """A role with one inline and one attached policy, the way the stack's step roles are."""
    iam.create_role(RoleName="swr-launch", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName="swr-launch", PolicyName="launch", PolicyDocument=json.dumps(LAUNCH_POLICY))
    arn = iam.create_policy(PolicyName="record-write", PolicyDocument=json.dumps(RECORD_WRITE_POLICY))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="swr-launch", PolicyArn=arn)
    return str(iam.get_role(RoleName="swr-launch")["Role"]["Arn"])


def simulate(iam: Any, role: str, actions: list[str], resources: list[str], **context: str) -> list[dict[str, Any]]:
    entries = [{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in context.items()]
    kwargs: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": actions, "ResourceArns": resources}
    if entries:
        kwargs["ContextEntries"] = entries
    return list(iam.simulate_principal_policy(**kwargs)["EvaluationResults"])


# --- 22 ---------------------------------------------------------------------------------------
def test_a_stack_role_has_the_managed_policies_its_template_names_through_update_and_delete(iam: Any):
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="roles", TemplateBody=stack_template({"launch": LAUNCH_POLICY}, ["RecordWritePolicy", "FencePolicy"])
    )
    outputs = cloudformation.describe_stacks(StackName="roles")["Stacks"][0]["Outputs"]
    role = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RoleName")

    def attached() -> list[str]:
        return sorted(
            p["PolicyName"].split("-")[1] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        )

    assert attached() == ["FencePolicy", "RecordWritePolicy"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["launch"]

    cloudformation.update_stack(
        StackName="roles", TemplateBody=stack_template({"launch-v2": LAUNCH_POLICY}, ["RecordWritePolicy"])
    )

    assert attached() == ["RecordWritePolicy"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["launch-v2"]

    cloudformation.delete_stack(StackName="roles")  # the attached policy is detached first, as on AWS

    assert [s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"]] == ["DELETE_COMPLETE"]
    assert role not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


# --- 23 ---------------------------------------------------------------------------------------
def test_an_action_allowed_by_an_attached_policy_is_allowed_and_names_the_policy(iam: Any):
    role = role_with_policies(iam)

    [result] = simulate(iam, role, ["dynamodb:PutItem"], [TABLE_ARN])

    assert result["EvalDecision"] == "allowed"
    assert result["EvalResourceName"] == TABLE_ARN
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "record-write"
    assert result["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"


def test_an_action_the_role_lacks_is_an_implicit_deny(iam: Any):
    role = role_with_policies(iam)

    [put, delete] = simulate(iam, role, ["dynamodb:PutItem", "dynamodb:DeleteItem"], [TABLE_ARN])

    assert (put["EvalDecision"], delete["EvalDecision"]) == ("allowed", "implicitDeny")
    assert delete["MatchedStatements"] == []


def test_a_conditional_allow_needs_its_context_key_with_the_right_value(iam: Any):
    role = role_with_policies(iam)

    [right] = simulate(iam, role, ["ec2:RunInstances"], [SUBNET_ARN], **{"ec2:Vpc": VPC_ARN})
    [wrong] = simulate(iam, role, ["ec2:RunInstances"], [SUBNET_ARN], **{"ec2:Vpc": VPC_ARN + "-other"})
    [absent] = simulate(iam, role, ["ec2:RunInstances"], [SUBNET_ARN])

    assert right["EvalDecision"] == "allowed"
    # moto's own evaluator would call the unmet condition an explicit deny, and the absent one allowed.
    assert wrong["EvalDecision"] == "implicitDeny"
    assert absent["EvalDecision"] == "implicitDeny"
    assert absent["MissingContextValues"] == ["ec2:Vpc"]


def test_an_explicit_deny_wins_over_an_allow_and_each_resource_has_its_own_result(iam: Any):
    role = role_with_policies(iam)
    instance = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0old"
    volume = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0old"

    [result] = simulate(iam, role, ["ec2:TerminateInstances"], [volume, instance])

    assert result["EvalDecision"] == "explicitDeny"  # the most restrictive of the resources'
    assert [(r["EvalResourceName"], r["EvalResourceDecision"]) for r in result["ResourceSpecificResults"]] == [
        (volume, "allowed"),
        (instance, "explicitDeny"),
    ]


def test_not_resource_applies_to_every_resource_but_those_listed(iam: Any):
    everything_but_the_record = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "dynamodb:PutItem",
                "NotResource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/swr-apps",
            },
        ],
    }
    iam.create_role(RoleName="writer", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName="writer", PolicyName="p", PolicyDocument=json.dumps(everything_but_the_record))
    role = str(iam.get_role(RoleName="writer")["Role"]["Arn"])
    record, other = (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}" for t in ("swr-apps", "orders"))

    [result] = simulate(iam, role, ["dynamodb:PutItem"], [record, other])

    assert [(r["EvalResourceName"], r["EvalResourceDecision"]) for r in result["ResourceSpecificResults"]] == [
        (record, "allowed"),
        (other, "explicitDeny"),
    ]


def test_action_names_match_whatever_their_case(iam: Any):
    role = role_with_policies(iam)

    [result] = simulate(iam, role, ["EC2:describeinstances"], ["*"])

    assert result["EvalDecision"] == "allowed"


def test_an_unknown_role_is_no_such_entity(iam: Any):
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        simulate(iam, f"arn:aws:iam::{ACCOUNT}:role/nobody", ["ec2:DescribeInstances"], ["*"])


# --- 23: set operators, Null and policy variables ----------------------------------------------
def role_with(iam: Any, name: str, *statements: dict[str, Any]) -> str:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    return str(iam.get_role(RoleName=name)["Role"]["Arn"])


def decide(iam: Any, role: str, action: str, resource: str, context: dict[str, list[str]]) -> str:
    entries = [{"ContextKeyName": k, "ContextKeyValues": v, "ContextKeyType": "stringList"} for k, v in context.items()]
    kwargs: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": [resource]}
    if entries:
        kwargs["ContextEntries"] = entries
    return str(iam.simulate_principal_policy(**kwargs)["EvaluationResults"][0]["EvalDecision"])


def test_for_all_values_holds_when_every_requested_value_is_listed_and_with_none(iam: Any):
    # The instance role's own record read: dynamodb:LeadingKeys must all be its application.
    role = role_with(
        iam,
        "reader",
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": TABLE_ARN,
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["demo"]}},
        },
    )
    assert decide(iam, role, "dynamodb:GetItem", TABLE_ARN, {"dynamodb:LeadingKeys": ["demo"]}) == "allowed"
    assert decide(iam, role, "dynamodb:GetItem", TABLE_ARN, {"dynamodb:LeadingKeys": ["demo", "b"]}) == "implicitDeny"
    # "ForAllValues ... returns true if there are no context keys in the request" (IAM User Guide).
    assert decide(iam, role, "dynamodb:GetItem", TABLE_ARN, {}) == "allowed"


def test_for_any_value_needs_one_listed_value_and_fails_without_the_key(iam: Any):
    role = role_with(
        iam,
        "tagger",
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": ["swr:*"]}},
        },
    )
    assert decide(iam, role, "ec2:CreateTags", "*", {"aws:TagKeys": ["Name", "swr:app"]}) == "allowed"
    assert decide(iam, role, "ec2:CreateTags", "*", {"aws:TagKeys": ["Name"]}) == "implicitDeny"
    assert decide(iam, role, "ec2:CreateTags", "*", {}) == "implicitDeny"


def test_null_and_policy_variables_bind_credentials_to_where_they_were_issued(iam: Any):
    allow = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}
    deny_elsewhere = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringNotEquals": {"aws:EC2InstanceSourceVPC": "${aws:SourceVpc}"},
            "Null": {"ec2:SourceInstanceARN": "false"},
        },
    }
    deny_outside_endpoints = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Null": {"aws:SourceVpc": "true", "ec2:SourceInstanceARN": "false"}},
    }
    role = role_with(iam, "instance", allow, deny_elsewhere, deny_outside_endpoints)
    issued = {"ec2:SourceInstanceARN": ["arn:aws:ec2:r:a:instance/i-1"], "aws:EC2InstanceSourceVPC": ["vpc-a"]}

    assert decide(iam, role, "events:PutEvents", "*", issued | {"aws:SourceVpc": ["vpc-a"]}) == "allowed"
    assert decide(iam, role, "events:PutEvents", "*", issued | {"aws:SourceVpc": ["vpc-b"]}) == "explicitDeny"
    assert decide(iam, role, "events:PutEvents", "*", issued) == "explicitDeny"  # not through an endpoint
    # Credentials that are not an instance's: neither deny applies.
    assert decide(iam, role, "events:PutEvents", "*", {"aws:SourceVpc": ["vpc-b"]}) == "allowed"
