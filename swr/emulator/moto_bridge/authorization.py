"""Patch 42: every call made with a role's (or an IAM user's) credentials is authorized against
its policies with patch 23's evaluator (iam.py), on the resources and condition keys AWS uses."""

from __future__ import annotations

import json
import re
from typing import Any

from swr.emulator.moto_bridge._state import LOG, _Patches, _require
from swr.emulator.moto_bridge.faults import _emulator_error, _request_params
from swr.emulator.moto_bridge.iam import _principal, _principal_policy_texts, decide

# --------------------------------------------------------------------------------------------------
# 42. Every call a Lambda step makes is authorized against the step's role
# --------------------------------------------------------------------------------------------------
# Request parameters arrive parsed by moto from the botocore model: member names (InstanceIds,
# Resources, Groups, SecurityGroupIds, ...), not the query protocol's (InstanceId.1).
# A step's handler runs on its own thread (patch 1), so each call it makes knows the function, and
# the function its role. The call is authorized as IAM would: each action the request needs (some
# need several: RunInstances is authorized per resource it touches, plus iam:PassRole), on the
# resource ARNs the Service Authorization Reference names, with the condition keys the request
# carries (resource and request tags, ec2:Vpc, dynamodb:LeadingKeys, events:source, ...),
# evaluated by patch 23's evaluator against the role's inline and attached policies. A denied
# call fails as AWS fails it: UnauthorizedOperation (EC2), AccessDenied (query protocols) or
# AccessDeniedException. An action without a model here is refused too: a step that starts
# calling something new fails the suite until its authorization is modelled.
# The principal is per thread (acting_as): a step's handler thread, the interpreter's thread for
# its client calls, the emulator's thread while it runs an instance's hooks. EventBridge's own
# deliveries are authorized in events._deliver. Not enforced: the drivers and the command line.

Authorization = tuple[str, str, dict[str, list[str]]]  # (iam action, resource ARN, context)
denials: list[str] = []  # every refusal of this bridge, for the tests to read


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _tag_context(prefix: str, tags: dict[str, str]) -> dict[str, list[str]]:
    return {f"{prefix}/{k}".lower(): [v] for k, v in tags.items()}


def _ec2_tags(backend: Any, resource_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (backend.tags.get(resource_id) or {}).items()}


def _ec2_vpc_of(backend: Any, resource_id: str) -> str | None:
    try:
        if resource_id.startswith("i-"):
            return str(backend.get_instance(resource_id).vpc_id)
        if resource_id.startswith("eni-"):
            return str(backend.get_network_interface(resource_id).subnet.vpc_id)
        if resource_id.startswith("acl-"):
            return str(backend.get_network_acl(resource_id).vpc_id)
        if resource_id.startswith("subnet-"):
            return str(backend.get_subnet(resource_id).vpc_id)
        if resource_id.startswith("sg-"):
            return str(backend.get_security_group_from_id(resource_id).vpc_id)
    except Exception:
        return None
    return None


_EC2_KIND = {
    "i-": "instance",
    "eni-": "network-interface",
    "vol-": "volume",
    "subnet-": "subnet",
    "sg-": "security-group",
    "acl-": "network-acl",
    "ami-": "image",
}


def _ec2_resource(backend: Any, region: str, account: str, resource_id: str) -> tuple[str, dict[str, list[str]]]:
    kind = next((k for p, k in _EC2_KIND.items() if resource_id.startswith(p)), "unknown")
    arn = _arn("ec2", region, "" if kind == "image" else account, f"{kind}/{resource_id}")
    context = _tag_context("aws:ResourceTag", _ec2_tags(backend, resource_id))
    vpc = _ec2_vpc_of(backend, resource_id)
    if vpc:
        context["ec2:vpc"] = [_arn("ec2", region, account, f"vpc/{vpc}")]
    return arn, context


def _tag_specs(params: dict[str, Any], kind: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") == kind:
            for tag in spec.get("Tags") or []:
                tags[str(tag["Key"])] = str(tag.get("Value", ""))
    return tags


def _listed(params: dict[str, Any], key: str) -> list[Any]:
    value = params.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ec2_authorizations(action: str, params: dict[str, Any], region: str, account: str) -> list[Authorization] | None:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account][region]
    iam_action = f"ec2:{action}"
    if action.startswith("Describe"):
        return [(iam_action, "*", {})]
    if action in ("TerminateInstances", "StopInstances"):
        return [(iam_action, *_ec2_resource(backend, region, account, i)) for i in _listed(params, "InstanceIds")]
    if action == "CreateTags":
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in _listed(params, "Tags")}
        found = []
        for resource_id in _listed(params, "Resources"):
            arn, context = _ec2_resource(backend, region, account, resource_id)
            context |= _tag_context("aws:RequestTag", tags) | {"aws:tagkeys": list(tags)}
            found.append((iam_action, arn, context))
        return found
    if action in ("CreateNetworkAclEntry", "DeleteNetworkAclEntry"):
        return [(iam_action, *_ec2_resource(backend, region, account, str(params["NetworkAclId"])))]
    if action == "DeleteNetworkInterface":
        return [(iam_action, *_ec2_resource(backend, region, account, str(params["NetworkInterfaceId"])))]
    if action == "ModifyNetworkInterfaceAttribute":
        eni = str(params["NetworkInterfaceId"])
        found = [(iam_action, *_ec2_resource(backend, region, account, eni))]
        groups = [g for g in _listed(params, "Groups") if isinstance(g, str)]
        found += [(iam_action, *_ec2_resource(backend, region, account, g)) for g in groups]
        return found
    if action == "RunInstances":
        return _run_instances_authorizations(backend, params, region, account)
    return None


def _run_instances_authorizations(
    backend: Any, params: dict[str, Any], region: str, account: str
) -> list[Authorization]:
    found: list[Authorization] = []
    tokens = str(((params.get("MetadataOptions") or {}).get("HttpTokens")) or "optional")
    mappings = _listed(params, "BlockDeviceMappings")
    encrypted = bool(mappings) and all(
        str((m.get("Ebs") or {}).get("Encrypted", "")).lower() == "true" for m in mappings
    )
    created = {
        "instance": {"ec2:metadatahttptokens": [tokens]},
        "volume": {"ec2:encrypted": ["true" if encrypted else "false"]},
        "network-interface": {},
    }
    for kind, context in created.items():
        tags = _tag_specs(params, kind)
        found.append(
            (
                "ec2:RunInstances",
                _arn("ec2", region, account, f"{kind}/*"),
                context | _tag_context("aws:RequestTag", tags),
            )
        )
        if tags:
            found.append(
                ("ec2:CreateTags", _arn("ec2", region, account, f"{kind}/*"), {"ec2:createaction": ["RunInstances"]})
            )
    touched = [str(params["ImageId"])]
    if params.get("SubnetId"):
        touched.append(str(params["SubnetId"]))
    touched += [str(g) for g in _listed(params, "SecurityGroupIds")]
    found += [("ec2:RunInstances", *_ec2_resource(backend, region, account, r)) for r in touched]
    if params.get("KeyName"):
        found.append(("ec2:RunInstances", _arn("ec2", region, account, f"key-pair/{params['KeyName']}"), {}))
    profile = params.get("IamInstanceProfile") or {}
    if profile:
        from moto.iam.models import iam_backends

        iam = iam_backends[account]["global"]
        name = str(profile.get("Arn", "")).rsplit("/", 1)[-1] or str(profile.get("Name", ""))
        for role in iam.get_instance_profile(name).roles:
            found.append(("iam:PassRole", role.arn, {"iam:passedtoservice": ["ec2.amazonaws.com"]}))
    return found


def _service_authorizations(
    service: str, action: str, params: dict[str, Any], region: str, account: str
) -> list[Authorization] | None:
    if service == "ec2":
        return _ec2_authorizations(action, params, region, account)
    if service == "elbv2":
        if action.startswith("Describe"):
            return [(f"elasticloadbalancing:{action}", "*", {})]
        if action in ("RegisterTargets", "DeregisterTargets"):
            from moto.elbv2.models import elbv2_backends

            arn = str(params["TargetGroupArn"])
            tags = elbv2_backends[account][region].tagging_service.get_tag_dict_for_resource(arn)
            return [(f"elasticloadbalancing:{action}", arn, _tag_context("aws:ResourceTag", tags))]
        return None
    if service == "efs":
        return _efs_authorizations(action, params, region, account)
    if service == "dynamodb" and action in ("GetItem", "PutItem", "DeleteItem"):
        table = _arn("dynamodb", region, account, f"table/{params['TableName']}")
        key = params.get("Key") or params.get("Item") or {}
        leading = [str(v.get("S") or v.get("N") or "") for k, v in key.items() if isinstance(v, dict)][:1]
        return [(f"dynamodb:{action}", table, {"dynamodb:leadingkeys": leading})]
    if service == "events" and action == "PutEvents":
        found = []
        for entry in params.get("Entries") or []:
            bus = str(entry.get("EventBusName") or "default")
            arn = bus if bus.startswith("arn:") else _arn("events", region, account, f"event-bus/{bus}")
            context = {
                "events:source": [str(entry.get("Source"))],
                "events:detail-type": [str(entry.get("DetailType"))],
            }
            found.append(("events:PutEvents", arn, context))
        return found
    if service == "events" and action == "PutRule":
        pattern = json.loads(params.get("EventPattern") or "{}")
        arn = _arn("events", region, account, f"rule/{params['Name']}")
        context = {
            "events:source": [str(s) for s in pattern.get("source", [])],
            "events:detail-type": [str(d) for d in pattern.get("detail-type", [])],
        }
        return [("events:PutRule", arn, context)]
    if service == "cloudwatch":
        if action == "DescribeAlarms":
            names = _listed(params, "AlarmNames")
            return [
                ("cloudwatch:DescribeAlarms", _arn("cloudwatch", region, account, f"alarm:{n}"), {}) for n in names
            ] or [("cloudwatch:DescribeAlarms", "*", {})]
        if action == "PutMetricAlarm":
            arn = _arn("cloudwatch", region, account, f"alarm:{params['AlarmName']}")
            actions = [str(a) for a in _listed(params, "AlarmActions")]
            return [("cloudwatch:PutMetricAlarm", arn, {"cloudwatch:alarmactions": actions} if actions else {})]
        if action == "PutMetricData":  # no resource-level permissions; the namespace condition key
            return [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": [str(params.get("Namespace", ""))]})]
        return None
    if service == "stepfunctions" and action in ("DescribeExecution", "GetExecutionHistory"):
        return [(f"states:{action}", str(params["executionArn"]), {})]
    if service == "stepfunctions" and action in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return [(f"states:{action}", "*", {})]  # a task token is not a resource
    if service == "stepfunctions" and action in ("StartExecution", "ListExecutions", "DescribeStateMachine"):
        return [(f"states:{action}", str(params["stateMachineArn"]), {})]
    if service == "stepfunctions" and action in (
        "StopExecution",
        "RedriveExecution",
        "DescribeStateMachineForExecution",
    ):
        return [(f"states:{action}", str(params["executionArn"]), {})]
    if service == "stepfunctions" and action == "ListStateMachines":
        return [("states:ListStateMachines", "*", {})]
    if service == "cloudformation" and action in ("DescribeStacks", "ListStacks"):
        return [(f"cloudformation:{action}", "*", {})]  # resource-level exists; the policies use "*"
    if service == "dynamodb" and action in ("Scan", "DescribeTable"):
        return [(f"dynamodb:{action}", _arn("dynamodb", region, account, f"table/{params['TableName']}"), {})]
    if service == "events" and action == "DescribeRule":
        return [("events:DescribeRule", _arn("events", region, account, f"rule/{params['Name']}"), {})]
    if service == "iam" and action == "SimulatePrincipalPolicy":
        return [("iam:SimulatePrincipalPolicy", str(params["PolicySourceArn"]), {})]
    if service == "iam" and action == "GetInstanceProfile":
        return [
            ("iam:GetInstanceProfile", f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}", {})
        ]
    if service == "lambda" and action == "GetFunctionConfiguration":
        name = str(params["FunctionName"])
        return [
            (
                "lambda:GetFunctionConfiguration",
                name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}"),
                {},
            )
        ]
    if service == "sts" and action == "GetCallerIdentity":
        return []  # "No permissions are required to perform this operation" (STS API reference)

    if service == "lambda" and action == "Invoke":
        name = str(params["FunctionName"])
        arn = name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}")
        qualifier = params.get("Qualifier")
        return [("lambda:InvokeFunction", f"{arn}:{qualifier}" if qualifier else arn, {})]
    if service == "sqs" and action == "SendMessage":
        queue = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
        return [("sqs:SendMessage", _arn("sqs", region, account, queue), {})]
    return None


def _efs_authorizations(action: str, params: dict[str, Any], region: str, account: str) -> list[Authorization] | None:
    from moto.ec2.models import ec2_backends
    from moto.efs.models import efs_backends

    efs = efs_backends[account][region]

    def file_system(file_system_id: str) -> tuple[str, dict[str, list[str]]]:
        arn = _arn("elasticfilesystem", region, account, f"file-system/{file_system_id}")
        tags = efs.tagging_service.get_tag_dict_for_resource(file_system_id)  # moto keys them by id
        return arn, _tag_context("aws:ResourceTag", tags)

    def of_mount_target(mount_target_id: str) -> Any:
        return efs.mount_targets_by_id[mount_target_id]

    if action == "DescribeMountTargets":
        if params.get("FileSystemId"):
            return [("elasticfilesystem:DescribeMountTargets", *file_system(str(params["FileSystemId"])))]
        target = of_mount_target(str(params["MountTargetId"]))
        return [("elasticfilesystem:DescribeMountTargets", *file_system(str(target.file_system_id)))]
    if action == "DescribeFileSystems":
        if params.get("FileSystemId"):
            return [("elasticfilesystem:DescribeFileSystems", *file_system(str(params["FileSystemId"])))]
        return [("elasticfilesystem:DescribeFileSystems", "*", {})]
    if action == "DescribeMountTargetSecurityGroups":
        target = of_mount_target(str(params["MountTargetId"]))
        return [("elasticfilesystem:DescribeMountTargetSecurityGroups", *file_system(str(target.file_system_id)))]
    if action == "DeleteMountTarget":
        target = of_mount_target(str(params["MountTargetId"]))
        eni = _ec2_resource(ec2_backends[account][region], region, account, str(target.network_interface_id))
        return [
            ("elasticfilesystem:DeleteMountTarget", *file_system(str(target.file_system_id))),
            ("ec2:DeleteNetworkInterface", *eni),
        ]
    if action == "CreateMountTarget":
        backend = ec2_backends[account][region]
        subnet = _ec2_resource(backend, region, account, str(params["SubnetId"]))
        return [
            ("elasticfilesystem:CreateMountTarget", *file_system(str(params["FileSystemId"]))),
            ("ec2:CreateNetworkInterface", _arn("ec2", region, account, "network-interface/*"), subnet[1]),
            ("ec2:CreateNetworkInterface", *subnet),
        ]
    return None


_DENIED_CODES = {
    "ec2": ("UnauthorizedOperation", 403),
    "elbv2": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
}


def _authorize(
    role_arn: str,
    service: str,
    action: str,
    params: dict[str, Any],
    region: str,
    account: str,
    context: dict[str, list[str]] | None = None,
) -> str | None:
    """Why the role may not make this call (with the caller's global condition keys
    ``context``), or None."""
    from moto.iam.models import iam_backends

    try:
        needed = _service_authorizations(service, action, params, region, account)
    except Exception as error:  # a resource the request names does not exist: moto says so next
        LOG.debug("no authorization context for %s:%s (%s)", service, action, error)
        return None
    if needed is None:
        return f"the emulator has no authorization model for {service}:{action}"
    iam = iam_backends[account]["global"]
    known = [*(role.arn for role in iam.roles.values()), *(user.arn for user in iam.users.values())]
    if role_arn not in known:
        return None  # a role IAM does not know: the bridge's own canaries give made-up ones
    policies = _principal_policy_texts(iam, role_arn)
    for iam_action, resource, needed_context in needed:
        full = {"aws:requestedregion": [region], **(context or {}), **needed_context}
        decision, _, _ = decide(policies, iam_action, resource, full)
        if decision != "allowed":
            return f"{role_arn} is not authorized to perform {iam_action} on {resource} ({decision})"
    return None


_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


def _signing_user(response: Any) -> tuple[str, dict[str, list[str]]] | None:
    """Whose access key signed the request (a client outside the process): an IAM user's (an
    operator's command line), or a role session's from AssumeRole (a hook given the instance
    role's credentials; its aws:userid is "<role id>:<session name>"). None for any other key
    (the emulator's default test credentials), whose calls stay unchecked."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    found = _CREDENTIAL.search(str(response.headers.get("Authorization") or ""))
    if found is None:
        return None
    key, account = found.group(1), str(response.current_account)
    try:
        iam = iam_backends[account]["global"]
        user = iam.get_user_from_access_key_id(key)
        if user is not None:
            return str(user.arn), {}
        session = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
    except Exception:  # no IAM or STS backend for the account yet
        return None
    if session is None:
        return None
    role = next((r for r in iam.roles.values() if r.arn == session.role_arn), None)
    if role is None:
        return None
    return str(role.arn), {"aws:userid": [f"{role.id}:{session.session_name}"]}


def _patch_step_authorization(p: _Patches) -> None:
    from moto.core.responses import ActionResult, BaseResponse

    original = _require(BaseResponse, "call_action")

    def call_action(self: Any) -> Any:
        current = getattr(_principal, "current", None) or _signing_user(self)
        if current is None:
            return original(self)
        try:
            action = self._get_action()
        except Exception:
            action = None
        if not action:
            return original(self)
        role_arn, context = current
        service = str(self.boto3_service_name if hasattr(self, "boto3_service_name") else "")
        refused = _authorize(
            role_arn,
            service,
            action,
            _request_params(self, action),
            str(self.region),
            str(self.current_account),
            context,
        )
        if refused is None:
            return original(self)
        denials.append(refused)
        code, status = _DENIED_CODES.get(service, ("AccessDeniedException", 400))
        _, headers, body = self.serialized(ActionResult(_emulator_error(code, refused)))
        headers, body = self._enrich_response(headers, body)
        return status, headers, body

    p.set(BaseResponse, "call_action", call_action)
