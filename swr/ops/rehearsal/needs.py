"""Which IAM statements each step of the workflow needs for this failover: the actions it
calls, on which resources, with the condition keys its requests carry.

``needs(step, ...)`` looks the step up by its handler module's name in ``STEPS``; each
step's list is a function of its own, built from the pieces many steps share (``Shared``:
the record's table, the notifications' bus, the EC2 state-change rules) and from the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.core.launching import APP_TAG, LAUNCH_APPS_TAG
from handlers.core.settings import Settings
from handlers.core.triggers import EC2_DETAIL_TYPE
from swr.ops.common import tag_dict
from swr.ops.rehearsal.facts import Facts

Context = tuple[tuple[str, str], ...]
ACL_ABOUT = "network ACLs of the mount targets' subnets"


@dataclass(frozen=True)
class Need:
    """Actions a step calls on resources, with the condition keys its requests carry."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    context: Context = ()
    about: str = ""  # what the resources are, for the operator


@dataclass(frozen=True)
class Shared:
    """The needs many steps have in common."""

    table: Need  # read the record
    write: Need  # write it
    publish: Need  # a notification on the stack's bus
    watch: tuple[Need, ...]  # point the EC2 state-change rules at what the record names (none: no rules)

    @classmethod
    def of(cls, facts: Facts, environment: dict[str, str]) -> Shared:
        table = Need(("dynamodb:GetItem",), (facts.arn("dynamodb", f"table/{facts.stack.RecordTableName}"),))
        defaults = Settings.model_fields
        bus = environment.get("SWR_EVENT_BUS_NAME", str(defaults["event_bus_name"].default))
        publish = Need(
            ("events:PutEvents",),
            (facts.arn("events", f"event-bus/{bus}"),),
            (("events:source", environment.get("SWR_EVENT_SOURCE", str(defaults["event_source"].default))),),
        )
        # The steps that change what the record names point the EC2 state-change rules at it.
        rules = tuple(
            facts.arn("events", f"rule/{environment[variable]}")
            for variable in ("SWR_INSTANCE_WATCH_RULE", "SWR_FENCE_RELEASE_RULE")
            if environment.get(variable)
        )
        ec2_changes = (("events:source", "aws.ec2"), ("events:detail-type", EC2_DETAIL_TYPE))
        watch = (Need(("events:PutRule",), rules, ec2_changes, "EC2 state-change rules"),) if rules else ()
        return cls(table=table, write=Need(("dynamodb:PutItem",), table.resources), publish=publish, watch=watch)


StepNeeds = Callable[[Facts, Shared, dict[str, Any]], list[Need]]


def needs(step: str, facts: Facts, request: dict[str, Any], environment: dict[str, str]) -> list[Need]:
    """What ``step`` (its name in handlers/core/step_names.py) calls, on what, for this failover; ``request``
    is launch's RunInstances request, ``environment`` the step's function's variables."""
    shared = Shared.of(facts, environment)
    of_step = STEPS.get(step)
    return of_step(facts, shared, request) if of_step else [shared.table]


# --- the pieces -------------------------------------------------------------------------------
def _anywhere(*actions: str) -> Need:
    """Calls IAM authorizes on every resource only (the describes)."""
    return Need(actions, ("*",))


def _resource_tag(tags: dict[str, str] | None) -> Context:
    # An untagged resource gives no aws:ResourceTag key: the simulation says what is missing.
    value = (tags or {}).get(APP_TAG)
    return ((f"aws:ResourceTag/{APP_TAG}", value),) if value is not None else ()


def _launch_apps_tag(tags: list[dict[str, str]] | None) -> Context:
    value = tag_dict(tags or []).get(LAUNCH_APPS_TAG)
    return ((f"aws:ResourceTag/{LAUNCH_APPS_TAG}", value),) if value is not None else ()


def _file_system(facts: Facts) -> str:
    return facts.arn("elasticfilesystem", f"file-system/{facts.record.efs.file_system_id}")


def _vpc(facts: Facts) -> Context:
    """The mount targets' VPC, as the ec2:Vpc key of calls on their subnets' resources."""
    return (("ec2:Vpc", facts.arn("ec2", f"vpc/{facts.vpc_id}")),) if facts.vpc_id else ()


def _acl_entries(facts: Facts, action: str) -> list[Need]:
    """Add or remove the fence's deny entries in the network ACLs of the mount targets' subnets."""
    acls = tuple(facts.arn("ec2", f"network-acl/{acl}") for acl in sorted(set(facts.network_acls.values())))
    return [Need((action,), acls, _vpc(facts), ACL_ABOUT)] if acls else []


def _read_efs(facts: Facts) -> Need:
    return Need(("elasticfilesystem:DescribeMountTargets",), (_file_system(facts),), (), "file system")


def _target_groups(facts: Facts, action: str) -> list[Need]:
    return [
        Need((f"elasticloadbalancing:{action}",), (arn,), _resource_tag(tags), "target group")
        for arn, tags in facts.target_groups.items()
    ]


# --- each step's needs -----------------------------------------------------------------------
def _admit(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    executions = facts.stack.StateMachineArn.replace(":stateMachine:", ":execution:", 1) + ":*"
    return [
        shared.table,
        shared.write,
        shared.publish,
        _anywhere("ec2:DescribeTags"),
        Need(("states:DescribeExecution",), (executions,)),
        *shared.watch,
    ]


def _cut_off_instances(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    record, file_system = facts.record, _file_system(facts)
    interfaces = [
        Need(
            ("ec2:ModifyNetworkInterfaceAttribute",),
            (facts.arn("ec2", f"network-interface/{eni}"),),
            _resource_tag(tags),
            "network interface",
        )
        for eni, tags in facts.interfaces.items()
    ]
    old = (
        [
            Need(
                ("ec2:CreateTags", "ec2:TerminateInstances", "ec2:StopInstances"),
                (facts.arn("ec2", f"instance/{record.current_instance_id}"),),
                _resource_tag(tag_dict(facts.old.get("Tags"))),
                "old instance",
            )
        ]
        if facts.old
        else []
    )
    blackhole = facts.arn("ec2", f"security-group/{record.blackhole_security_group_id}")
    return [
        shared.table,
        shared.write,
        _anywhere(
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeNetworkAcls",
            "elasticloadbalancing:DescribeTargetHealth",
        ),
        Need(
            ("elasticfilesystem:DescribeMountTargets", "elasticfilesystem:DescribeMountTargetSecurityGroups"),
            (file_system,),
            (),
            "file system",
        ),
        *interfaces,
        Need(("ec2:ModifyNetworkInterfaceAttribute",), (blackhole,), (), "blackhole group"),
        *old,
        *_target_groups(facts, "DeregisterTargets"),
        *_acl_entries(facts, "ec2:CreateNetworkAclEntry"),
        *_delete_shared_mount_targets(facts),
    ]


def _delete_shared_mount_targets(facts: Facts) -> list[Need]:
    """A mount target in the old instance's own subnet: the fence deletes it (and its interface)."""
    shared = [t for t in facts.mount_targets.values() if facts.old and t["SubnetId"] == facts.old.get("SubnetId")]
    if not shared:
        return []
    return [
        Need(
            ("elasticfilesystem:DeleteMountTarget",),
            (_file_system(facts),),
            _resource_tag(facts.file_system_tags),
            "file system",
        ),
        Need(
            ("ec2:DeleteNetworkInterface",),
            tuple(facts.arn("ec2", f"network-interface/{t.get('NetworkInterfaceId', '*')}") for t in shared),
            _vpc(facts),
            "mount target's interface",
        ),
    ]


def _confirm_fence(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    describe = _anywhere(
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkAcls",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
    )
    return [shared.table, shared.write, describe, _read_efs(facts)]


def _release_fences(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    subnets = tuple(
        facts.arn("ec2", f"subnet/{t['SubnetId']}") for t in facts.mount_targets.values() if t.get("SubnetId")
    )
    return [
        shared.table,
        shared.write,
        _anywhere(
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeSubnets",
            "ec2:DescribeNetworkInterfaces",
        ),
        *_acl_entries(facts, "ec2:DeleteNetworkAclEntry"),
        _read_efs(facts),
        Need(
            ("elasticfilesystem:CreateMountTarget",),
            (_file_system(facts),),
            _resource_tag(facts.file_system_tags),
            "file system",
        ),
        Need(
            ("ec2:CreateNetworkInterface",),
            (facts.arn("ec2", "network-interface/*"), *subnets),
            _vpc(facts),
            "a mount target's interface",
        ),
        *shared.watch,
        # The fence release rule invokes it asynchronously; what fails every attempt goes here.
        Need(
            ("sqs:SendMessage",),
            (facts.arn("sqs", facts.stack.TriggerDeadLetterQueueUrl.rsplit("/", 1)[-1]),),
            (),
            "its dead-letter queue",
        ),
    ]


def _launch_replacement(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    return [shared.table, _anywhere("ec2:DescribeInstances"), *_launch(facts, request)]


def _check_replacement(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    return [shared.table, _anywhere("ec2:DescribeInstances")]


def _record_only(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    return [shared.table, shared.write]


def _register_targets(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    return [
        shared.table,
        _anywhere("elasticloadbalancing:DescribeTargetHealth"),
        *_target_groups(facts, "RegisterTargets"),
    ]


def _check_target_health(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    return [shared.table, _anywhere("elasticloadbalancing:DescribeTargetHealth")]


def _finalise_failover(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    alarms = tuple(facts.arn("cloudwatch", f"alarm:{name}") for name in facts.record.alarm_names)
    retarget = [Need(("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"), alarms)] if alarms else []
    return [
        shared.table,
        shared.write,
        shared.publish,
        _anywhere("ec2:DescribeInstances"),
        *retarget,
        *shared.watch,
    ]


def _fail_failover(facts: Facts, shared: Shared, request: dict[str, Any]) -> list[Need]:
    # The replacement carries the launch request's tags: what its permissions are judged by.
    new_tags = tag_dict(
        next((s["Tags"] for s in request.get("TagSpecifications", []) if s["ResourceType"] == "instance"), [])
    )
    return [
        shared.table,
        shared.write,
        shared.publish,
        _anywhere("ec2:DescribeInstances"),
        Need(("ec2:TerminateInstances",), (facts.arn("ec2", "instance/*"),), _resource_tag(new_tags), "replacement"),
        *shared.watch,
    ]


def _launch(facts: Facts, request: dict[str, Any]) -> list[Need]:
    """RunInstances as launch sends it: what it creates, from what, where, with which role."""
    if not request:
        return []
    request_tag = (f"aws:RequestTag/{APP_TAG}", tag_dict(request["TagSpecifications"][0]["Tags"]).get(APP_TAG, ""))
    created = tuple(facts.arn("ec2", f"{kind}/*") for kind in ("instance", "volume", "network-interface"))
    imds = ("ec2:MetadataHttpTokens", str(request.get("MetadataOptions", {}).get("HttpTokens", "optional")))
    devices = request.get("BlockDeviceMappings") or []
    encrypted = ("ec2:Encrypted", "true" if devices and all(d["Ebs"].get("Encrypted") for d in devices) else "false")
    found = [
        Need(("ec2:RunInstances",), created[:1], (request_tag, imds), "new instance (IMDSv2)"),
        Need(("ec2:RunInstances",), created[1:2], (request_tag, encrypted), "its volumes, encrypted"),
        Need(("ec2:RunInstances",), created[2:], (request_tag,), "its network interfaces"),
        Need(
            ("ec2:RunInstances",),
            (facts.arn("ec2", f"image/{request['ImageId']}", account=False),),
            _launch_apps_tag((facts.image or {}).get("Tags")),
            "AMI, marked for the application",
        ),
        Need(("ec2:CreateTags",), created, (("ec2:CreateAction", "RunInstances"),), "tags at launch"),
    ]
    for subnet_id in dict.fromkeys(c.subnet_id for c in facts.candidates):
        subnet = facts.subnets.get(subnet_id)
        if subnet is None:
            continue
        vpc = ("ec2:Vpc", facts.arn("ec2", f"vpc/{subnet['VpcId']}"))
        found.append(Need(("ec2:RunInstances",), (facts.arn("ec2", f"subnet/{subnet_id}"),), (vpc,), "subnet"))
    for group in dict.fromkeys(request["SecurityGroupIds"]):
        described = facts.groups.get(group) or {}
        context = (
            ("ec2:Vpc", facts.arn("ec2", f"vpc/{described.get('VpcId', '')}")),
            *_launch_apps_tag(described.get("Tags")),
        )
        found.append(
            Need(
                ("ec2:RunInstances",),
                (facts.arn("ec2", f"security-group/{group}"),),
                context,
                "security group, marked for the application",
            )
        )
    if request.get("KeyName"):
        found.append(Need(("ec2:RunInstances",), (facts.arn("ec2", f"key-pair/{request['KeyName']}"),), (), "key"))
    if facts.instance_role_arn:
        found.append(
            Need(
                ("iam:PassRole",),
                (facts.instance_role_arn,),
                (("iam:PassedToService", "ec2.amazonaws.com"),),
                "instance role",
            )
        )
    return found


# The step's name (handlers/core/step_names.py) -> its needs; a step not named here only reads the record.
STEPS: dict[str, StepNeeds] = {
    "Admit": _admit,
    "CutOffInstances": _cut_off_instances,
    "ConfirmFence": _confirm_fence,
    "ReleaseFences": _release_fences,
    "LaunchReplacement": _launch_replacement,
    "CheckReplacement": _check_replacement,
    "IssuePermit": _record_only,
    "RegisterTargets": _register_targets,
    "CheckTargetHealth": _check_target_health,
    "FinaliseFailover": _finalise_failover,
    "RollbackReplacement": _record_only,
    "FailFailover": _fail_failover,
}
