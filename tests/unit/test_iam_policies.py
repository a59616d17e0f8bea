"""Least privilege in ``infra/template.yaml``, checked statement by statement.

Every IAM policy the template declares is read (the roles' inline policies and trust policies,
managed policies, SAM functions' and state machines' Policies, bucket, queue and topic
policies, key policies) and refused when it:

- grants an action with a wildcard (``ec2:*``, ``s3:Get*``) or through ``NotAction``;
- grants a mutating action on ``Resource: "*"``, unless the action supports no resource-level
  permissions and is in ``NO_RESOURCE_SCOPE`` with the reason (and the condition, where one
  scopes it);
- lets ``iam:PassRole`` pass any role, or pass it to any service (no ``iam:PassedToService``).

Every ``Resource: "*"`` must also say why in a YAML comment just above it: that is read from the
raw text. The checks are pure functions over one policy document; the scenarios at the end
feed them bad policies, so a checker that finds nothing cannot pass for a clean template.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from swr.deploy import load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

NodePath = tuple[str | int, ...]

# Actions that support no resource-level permissions, so "*" is the only resource they take.
# Each is allowed on "*" only with its reason, and with its condition key where one scopes it.
NO_RESOURCE_SCOPE: dict[str, tuple[str, str | None]] = {
    "xray:puttracesegments": ("X-Ray takes no resource ARN for sending trace data.", None),
    "xray:puttelemetryrecords": ("X-Ray takes no resource ARN for sending telemetry.", None),
    "cloudwatch:putmetricdata": (
        "PutMetricData takes no resource ARN; the cloudwatch:namespace condition is the only scope.",
        "cloudwatch:namespace",
    ),
    "logs:createlogdelivery": ("Step Functions log delivery is account-level: no resource ARN.", None),
    "logs:updatelogdelivery": ("Step Functions log delivery is account-level: no resource ARN.", None),
    "logs:deletelogdelivery": ("Step Functions log delivery is account-level: no resource ARN.", None),
    "logs:putresourcepolicy": (
        "Step Functions log delivery writes the CloudWatch Logs resource policy, which has no ARN of its own.",
        None,
    ),
    "states:sendtasksuccess": ("Task tokens are not IAM resources; the token is the capability.", None),
    "states:sendtaskfailure": ("Task tokens are not IAM resources; the token is the capability.", None),
    "states:sendtaskheartbeat": ("Task tokens are not IAM resources; the token is the capability.", None),
}

READ_PREFIXES = ("describe", "list", "get")
# Reads of data rather than of configuration: on "*" they reach every table, bucket or secret.
DATA_READS = frozenset(
    {
        "dynamodb:getitem",
        "dynamodb:batchgetitem",
        "s3:getobject",
        "s3:getobjectversion",
        "secretsmanager:getsecretvalue",
        "ssm:getparameter",
        "ssm:getparameters",
        "ssm:getparametersbypath",
    }
)


# --- the checker -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    rule: str  # action-wildcard, star-resource, passrole, unreadable
    where: str
    subject: str  # the action (or element) at fault
    detail: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.where, self.rule, self.subject)

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Policy:
    path: NodePath  # where the document sits in the template
    kind: str  # identity, trust, resource, key, opaque
    document: Any


def where(path: NodePath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: Any, path: NodePath = ()) -> Iterator[tuple[NodePath, Any]]:
    """Each statement of a policy document with its path (Statement may be one mapping)."""
    body = document.get("Statement", []) if isinstance(document, Mapping) else []
    if isinstance(body, list):
        for index, statement in enumerate(body):
            yield (*path, "Statement", index), statement
    else:
        yield (*path, "Statement"), body


def is_allow(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def is_star(statement: Mapping[str, Any]) -> bool:
    return "*" in as_list(statement.get("Resource", []))


def condition_keys(statement: Mapping[str, Any]) -> dict[str, Any]:
    """Condition keys (lower case) to their values, whatever the operator."""
    keys: dict[str, Any] = {}
    for block in (statement.get("Condition") or {}).values():
        if isinstance(block, Mapping):
            keys.update({str(key).lower(): value for key, value in block.items()})
    return keys


def is_read(action: str) -> bool:
    service, _, name = action.lower().partition(":")
    return name.startswith(READ_PREFIXES) and f"{service}:{name}" not in DATA_READS


def text_of(resource: Any) -> str | None:
    """The literal text of a resource ARN (a string or a !Sub template); None for !Ref / !GetAtt."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, Mapping) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub[0] if isinstance(sub, list) else str(sub)
    return None


def action_wildcards(statement: Mapping[str, Any], at: str) -> list[Finding]:
    if not is_allow(statement):
        return []  # a Deny with a wildcard takes away, it grants nothing
    found = [
        Finding("action-wildcard", at, str(action), "grants every action the pattern matches")
        for action in as_list(statement.get("Action", []))
        if isinstance(action, str) and "*" in action
    ]
    found += [
        Finding("action-wildcard", at, f"{element} {statement[element]!r}", "an Allow with it grants everything else")
        for element in ("NotAction", "NotResource")
        if element in statement
    ]
    found += [
        Finding("unreadable", at, repr(action), "an action must be a literal string to be checked")
        for action in as_list(statement.get("Action", []))
        if not isinstance(action, str)
    ]
    return found


def star_resource_writes(statement: Mapping[str, Any], at: str) -> list[Finding]:
    if not (is_allow(statement) and is_star(statement)):
        return []
    conditions = condition_keys(statement)
    found = []
    for action in as_list(statement.get("Action", [])):
        if not isinstance(action, str) or "*" in action or is_read(action):
            continue  # wildcards and unreadable actions are action_wildcards' findings
        allowed = NO_RESOURCE_SCOPE.get(action.lower())
        if allowed is None:
            found.append(Finding("star-resource", at, action, 'mutating action on Resource "*"'))
        elif allowed[1] is not None and allowed[1] not in conditions:
            found.append(Finding("star-resource", at, action, f'on Resource "*" only with a {allowed[1]} condition'))
    return found


def passrole_problems(statement: Mapping[str, Any], at: str) -> list[Finding]:
    actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
    if not is_allow(statement) or not any(fnmatchcase("iam:passrole", a.lower()) for a in actions):
        return []
    found = []
    texts = [text_of(resource) for resource in as_list(statement.get("Resource", []))]
    if "NotResource" in statement or any(text is not None and "*" in text for text in texts):
        found.append(Finding("passrole", at, "iam:PassRole", "may pass any role: name the role"))
    service = condition_keys(statement).get("iam:passedtoservice")
    if service is None or any("*" in str(value) for value in as_list(service)):
        found.append(Finding("passrole", at, "iam:PassRole", "may pass to any service: add iam:PassedToService"))
    return found


def check_policy(document: Any, at: str = "policy", kind: str = "identity") -> list[Finding]:
    """What is wrong with one policy document. In a key policy "*" is the key itself, so only
    the action rules apply there."""
    if kind == "opaque":
        return [Finding("unreadable", at, repr(document), "a managed policy or SAM policy template: write it out")]
    found: list[Finding] = []
    for path, statement in statements(document):
        here = f"{at}.{where(path)}"
        if not isinstance(statement, Mapping):
            found.append(Finding("unreadable", here, repr(statement), "a statement must be a literal mapping"))
            continue
        if kind == "endpoint":
            # An endpoint policy grants nothing; it narrows what passes the endpoint, and passes
            # everything unless it names who may ("*" here is whatever the caller's policies allow).
            if is_allow(statement) and not statement.get("Condition"):
                found.append(Finding("endpoint-open", here, "Allow without a Condition", "it lets anyone through"))
            continue
        found += action_wildcards(statement, here)
        found += passrole_problems(statement, here)
        if kind in ("identity", "resource"):
            found += star_resource_writes(statement, here)
    return found


# --- where the template keeps its policies ------------------------------------------------------
def iter_policies(template: Mapping[str, Any]) -> Iterator[Policy]:
    for name, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        props = resource.get("Properties") or {}
        base: NodePath = ("Resources", name, "Properties")
        if kind == "AWS::IAM::Role" and "AssumeRolePolicyDocument" in props:
            yield Policy((*base, "AssumeRolePolicyDocument"), "trust", props["AssumeRolePolicyDocument"])
        if kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for index, entry in enumerate(props.get("Policies") or []):
                yield Policy((*base, "Policies", index, "PolicyDocument"), "identity", entry.get("PolicyDocument"))
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield Policy((*base, "PolicyDocument"), "identity", props.get("PolicyDocument"))
        elif kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine") and "Policies" in props:
            policies = props["Policies"]
            if isinstance(policies, Mapping) and "Statement" in policies:
                yield Policy((*base, "Policies"), "identity", policies)
            else:
                for index, entry in enumerate(as_list(policies)):
                    is_document = isinstance(entry, Mapping) and "Statement" in entry
                    yield Policy((*base, "Policies", index), "identity" if is_document else "opaque", entry)
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield Policy((*base, "PolicyDocument"), "resource", props.get("PolicyDocument"))
        elif kind == "AWS::KMS::Key" and "KeyPolicy" in props:
            yield Policy((*base, "KeyPolicy"), "key", props["KeyPolicy"])
        elif kind == "AWS::EC2::VPCEndpoint" and "PolicyDocument" in props:
            yield Policy((*base, "PolicyDocument"), "endpoint", props["PolicyDocument"])


def check_template(template: Mapping[str, Any]) -> list[Finding]:
    return [f for p in iter_policies(template) for f in check_policy(p.document, where(p.path), p.kind)]


def star_statements(template: Mapping[str, Any]) -> set[NodePath]:
    """Allow statements on Resource "*" where "*" means every resource (not in key policies)."""
    return {
        path
        for policy in iter_policies(template)
        if policy.kind in ("identity", "resource")
        for path, statement in statements(policy.document, policy.path)
        if isinstance(statement, Mapping) and is_allow(statement) and is_star(statement)
    }


# --- the raw text: is each Resource "*" explained? -----------------------------------------------
def _star_nodes(node: yaml.Node, path: NodePath) -> Iterator[tuple[NodePath, int, int]]:
    """(path, statement line, Resource line), 0-based, of each Allow statement on "*"."""
    if isinstance(node, yaml.MappingNode):
        entries = {key.value: value for key, value in node.value if isinstance(key, yaml.ScalarNode)}
        resource = entries.get("Resource")
        effect = entries.get("Effect")
        if isinstance(effect, yaml.ScalarNode) and effect.value == "Allow" and resource is not None:
            items = resource.value if isinstance(resource, yaml.SequenceNode) else [resource]
            if any(isinstance(item, yaml.ScalarNode) and item.value == "*" for item in items):
                yield path, node.start_mark.line, resource.start_mark.line
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield from _star_nodes(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _star_nodes(item, (*path, index))


def star_statements_in_text(text: str) -> dict[NodePath, tuple[int, int]]:
    """The raw text's Allow statements on "*" outside key policies, with their (1-based) line
    and whether a comment explains them: a comment line just above the statement or just above
    its Resource, or a comment after "*" on the Resource line. Values: (line, 1 if commented)."""
    lines = text.splitlines()

    def comment_on(index: int) -> bool:
        return 0 <= index < len(lines) and lines[index].strip().startswith("#")

    root = yaml.compose(text, Loader=yaml.SafeLoader)  # composing needs no constructors for !Sub & co.
    found: dict[NodePath, tuple[int, int]] = {}
    if root is None:
        return found
    endpoints = _endpoint_names(root)
    for path, line, resource_line in _star_nodes(root, ()):
        if "KeyPolicy" in path or (len(path) > 1 and path[1] in endpoints):
            continue  # "*" is the key itself, or whatever passes the endpoint
        commented = comment_on(line - 1) or comment_on(resource_line - 1) or "#" in lines[resource_line]
        found[path] = (line + 1, int(commented))
    return found


def _endpoint_names(root: yaml.Node) -> set[str]:
    """The logical ids of the VPC endpoints in the composed template."""
    if not isinstance(root, yaml.MappingNode):
        return set()
    top = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    resources = top.get("Resources")
    names = set()
    for key, value in resources.value if isinstance(resources, yaml.MappingNode) else []:
        fields = (
            {k.value: v for k, v in value.value if isinstance(k, yaml.ScalarNode)}
            if isinstance(value, yaml.MappingNode)
            else {}
        )
        kind = fields.get("Type")
        if isinstance(kind, yaml.ScalarNode) and kind.value == "AWS::EC2::VPCEndpoint":
            names.add(key.value)
    return names


def uncommented_star_statements(text: str) -> list[str]:
    return [
        f"line {line}: {where(path)}"
        for path, (line, commented) in sorted(star_statements_in_text(text).items(), key=lambda kv: kv[1])
        if not commented
    ]


# --- the template -------------------------------------------------------------------------------
TEMPLATE = load_template(TEMPLATE_PATH)
TEMPLATE_TEXT = TEMPLATE_PATH.read_text(encoding="utf-8")
RULES = ("action-wildcard", "star-resource", "passrole", "unreadable", "endpoint-open")


def test_the_walker_finds_the_templates_policies_wherever_they_are_declared():
    policies = list(iter_policies(TEMPLATE))
    by_kind = {kind: [p for p in policies if p.kind == kind] for kind in ("identity", "trust", "resource", "key")}
    roles = [name for name, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    # 12 inline policies on roles and 4 managed policies, today.
    assert len(by_kind["identity"]) >= 16, [where(p.path) for p in by_kind["identity"]]
    assert len(by_kind["trust"]) == len(roles) >= 13
    assert {p.path[1] for p in by_kind["resource"]} == {
        "TriggerDeadLetterQueuePolicy",
        "TrailBucketPolicy",
        "NotificationTopicPolicy",
        "NotificationDeadLetterQueuePolicy",
    }
    assert sorted(p.path[1] for p in by_kind["key"]) == ["NotificationKey", "TrailKey"]
    statement_count = sum(1 for p in policies for _ in statements(p.document))
    assert statement_count > 40
    passroles = [
        where(path)
        for p in by_kind["identity"]
        for path, s in statements(p.document, p.path)
        if "iam:PassRole" in as_list(s.get("Action"))
    ]
    assert passroles == ["Resources.LaunchReplacementRole.Properties.Policies[0].PolicyDocument.Statement[9]"]


@pytest.mark.parametrize("rule", RULES)
def test_the_template_grants_nothing_a_rule_refuses(rule: str):
    new = [str(f) for f in check_template(TEMPLATE) if f.rule == rule]
    assert new == [], "\n".join(new)


def test_every_resource_star_in_the_template_says_why_in_a_comment_just_above_it():
    assert uncommented_star_statements(TEMPLATE_TEXT) == []


def test_the_raw_text_scan_sees_the_same_star_statements_as_the_policy_walker():
    in_text = set(star_statements_in_text(TEMPLATE_TEXT))
    assert len(in_text) >= 10  # the Describe calls, X-Ray, log delivery, metrics, task tokens
    assert in_text == star_statements(TEMPLATE)


def test_every_action_allowed_on_star_has_a_reason_and_is_still_needed():
    assert all(reason.strip() for reason, _ in NO_RESOURCE_SCOPE.values())
    used = {
        action.lower()
        for p in iter_policies(TEMPLATE)
        if p.kind in ("identity", "resource")
        for _, s in statements(p.document)
        if is_allow(s) and is_star(s)
        for action in as_list(s.get("Action"))
    }
    assert set(NO_RESOURCE_SCOPE) <= used, f"no longer used, remove: {sorted(set(NO_RESOURCE_SCOPE) - used)}"


# --- scenarios: bad policies are refused ---------------------------------------------------------
def allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def rules_of(document: Any, kind: str = "identity") -> list[tuple[str, str]]:
    return [(f.rule, f.subject) for f in check_policy(document, kind=kind)]


INSTANCES = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
INSTANCE_ROLE = {"Fn::GetAtt": ["InstanceRole", "Arn"]}
TO_EC2 = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_a_role_that_may_call_every_ec2_action_is_refused():
    assert rules_of(allow("ec2:*", INSTANCES)) == [("action-wildcard", "ec2:*")]


def test_a_role_that_may_read_every_kind_of_s3_object_data_is_refused():
    assert rules_of(allow(["s3:Get*", "s3:PutObject"], "arn:aws:s3:::bucket/*")) == [("action-wildcard", "s3:Get*")]


def test_a_role_that_may_do_anything_at_all_is_refused():
    assert ("action-wildcard", "*") in rules_of(allow("*", "*"))


def test_a_role_allowed_everything_but_a_few_actions_is_refused():
    document = {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}
    assert [rule for rule, _ in rules_of(document)] == ["action-wildcard"]


def test_a_function_role_that_may_terminate_any_instance_is_refused():
    assert rules_of(allow("ec2:TerminateInstances", "*")) == [("star-resource", "ec2:TerminateInstances")]


def test_a_function_role_that_may_terminate_its_applications_instances_is_accepted():
    tagged = {"StringEquals": {"aws:ResourceTag/swr:app": "app"}}
    assert rules_of(allow("ec2:TerminateInstances", INSTANCES, tagged)) == []


def test_describing_every_instance_is_accepted_but_reading_every_table_is_not():
    assert rules_of(allow(["ec2:DescribeInstances", "elasticloadbalancing:DescribeTargetHealth"], "*")) == []
    assert rules_of(allow("dynamodb:GetItem", "*")) == [("star-resource", "dynamodb:GetItem")]


def test_metrics_on_star_are_accepted_only_within_a_namespace():
    assert rules_of(allow("cloudwatch:PutMetricData", "*")) == [("star-resource", "cloudwatch:PutMetricData")]
    scoped = {"StringEquals": {"cloudwatch:namespace": "swr"}}
    assert rules_of(allow("cloudwatch:PutMetricData", "*", scoped)) == []
    assert rules_of(allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")) == []


def test_a_role_that_may_pass_any_role_is_refused():
    # On "*" it is also a mutating action on every resource: both rules say so.
    assert set(rules_of(allow("iam:PassRole", "*", TO_EC2))) == {
        ("passrole", "iam:PassRole"),
        ("star-resource", "iam:PassRole"),
    }
    any_role = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
    assert rules_of(allow("iam:PassRole", any_role, TO_EC2)) == [("passrole", "iam:PassRole")]


def test_a_role_that_may_pass_its_role_to_any_service_is_refused():
    assert rules_of(allow("iam:PassRole", INSTANCE_ROLE)) == [("passrole", "iam:PassRole")]
    any_service = {"StringLike": {"iam:PassedToService": "*"}}
    assert rules_of(allow("iam:PassRole", INSTANCE_ROLE, any_service)) == [("passrole", "iam:PassRole")]


def test_passing_one_named_role_to_ec2_only_is_accepted():
    assert rules_of(allow("iam:PassRole", INSTANCE_ROLE, TO_EC2)) == []


def test_a_deny_with_wildcards_takes_away_and_is_accepted():
    tls_only = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    assert rules_of({"Statement": [tls_only]}, kind="resource") == []


def test_in_a_key_policy_star_is_the_key_but_an_action_wildcard_is_still_refused():
    assert rules_of(allow("kms:Decrypt", "*"), kind="key") == []
    assert rules_of(allow("kms:*", "*"), kind="key") == [("action-wildcard", "kms:*")]


def test_the_walker_reads_every_place_a_template_can_hold_a_policy():
    document = allow("ec2:*", "*")
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": document, "Policies": [{"PolicyDocument": document}]},
            },
            "Managed": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": document}},
            "Function": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [document, "AdminAccess"]}},
            "Machine": {"Type": "AWS::Serverless::StateMachine", "Properties": {"Policies": document}},
            "Bucket": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": document}},
            "Queue": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": document}},
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": document}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    wildcards = {f.where.split(".")[1] for f in check_template(template) if f.rule == "action-wildcard"}
    assert wildcards == {"Role", "Managed", "Function", "Machine", "Bucket", "Queue", "Key"}
    # A named managed policy or a SAM policy template cannot be read here: it is refused.
    unreadable = [f.where for f in check_template(template) if f.rule == "unreadable"]
    assert unreadable == ["Resources.Function.Properties.Policies[1]"]


def test_a_resource_star_without_a_comment_just_above_it_is_reported():
    text = """\
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              # X-Ray takes no resource ARN.
              - Effect: Allow
                Action: xray:PutTraceSegments
                Resource: "*"
              - Effect: Allow
                Action: ec2:DescribeInstances
                # Describe calls take no resource ARN.
                Resource: "*"
              - Effect: Allow
                Action: ec2:DescribeTags
                Resource: "*"
              - Effect: Allow
                Action: states:DescribeExecution
                Resource: !Sub arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:x:*
"""
    assert uncommented_star_statements(text) == [
        "line 17: Resources.Role.Properties.Policies[0].PolicyDocument.Statement[2]"
    ]


def test_an_endpoint_policy_that_lets_anyone_through_is_refused():
    open_door = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
    }
    assert rules_of(open_door, kind="endpoint") == [("endpoint-open", "Allow without a Condition")]


def test_every_endpoint_lets_only_this_accounts_principals_through():
    endpoints = [p for p in iter_policies(TEMPLATE) if p.kind == "endpoint"]
    assert len(endpoints) == 6  # events, states, monitoring, logs, ec2; the DynamoDB gateway
    for policy in endpoints:
        (statement,) = policy.document["Statement"]
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
