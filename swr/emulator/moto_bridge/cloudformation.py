"""CloudFormation: the resources created through the API for it (patch 15: their base class and
record here, the types in cloudformation_resources.py), security groups' egress rules (16),
change sets' outputs (17) and unchanged parameters (18), roles' policies (22), resources
whose Condition is false (41), and templates read with libyaml (45)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from swr.emulator.moto_bridge._state import LOG, _api_client, _Patches, _require

# --------------------------------------------------------------------------------------------------
# 15. CloudFormation creates through the API what moto's CloudFormation skips or misplaces
# --------------------------------------------------------------------------------------------------
# moto's CloudFormation skips AWS::CloudWatch::Alarm, AWS::CloudTrail::Trail and the bucket and
# queue policies with a warning (the stack still says CREATE_COMPLETE), and it creates
# AWS::StepFunctions::StateMachine in the plain backend, which cannot execute, ignoring
# DefinitionS3Location and DefinitionSubstitutions. Each of these types is created (in
# cloudformation_resources.py) with the same API call CloudFormation makes on AWS, with the
# properties moto already resolved, under the physical id CloudFormation gives it on AWS (the
# type's primary identifier), but for the queue policy (see _QueuePolicyResource there).
#
# An update keeps the resource's logical id and its name (CloudFormation generates a name once;
# only a new explicit name renames) and changes in place what AWS changes in place: a state
# machine, alarm, trail or KMS key keeps its ARN or id. An ingress rule is replaced, as on AWS.
#
# moto deletes a stack's resources in no fixed order (AWS follows the dependencies), so a bucket,
# queue or security group may go before the policy or rule on it: a delete that finds its target
# gone (only the service's not-found errors) has nothing left to do.


@dataclass(frozen=True)
class ApiCreatedResource:
    logical_id: str
    resource_type: str
    physical_id: str  # what the stack reports as PhysicalResourceId (and Ref gives)


_api_created: list[ApiCreatedResource] = []


def resources_created_through_api() -> list[ApiCreatedResource]:
    """What this bridge created through the API on behalf of CloudFormation, in order; a resource
    a stack update changed or replaced is listed once, as it is now."""
    return list(_api_created)


def _record(logical_id: str, resource: _ApiResource, replaces: _ApiResource | None = None) -> None:
    created = ApiCreatedResource(logical_id, resource.resource_type, resource.physical_resource_id)
    if replaces is not None:
        previous = ApiCreatedResource(logical_id, replaces.resource_type, replaces.physical_resource_id)
        if previous in _api_created:
            _api_created[_api_created.index(previous)] = created
            return
    _api_created.append(created)


def _policy_text(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


class _ApiResource:
    """A resource CloudFormation created through a service API (not a moto model)."""

    resource_type = ""
    name_property = ""  # the property naming it; without it CloudFormation generates the name
    # Error codes with which a delete finds the resource, or what it applies to, already gone.
    gone_codes: frozenset[str] = frozenset()

    def __init__(
        self,
        physical_id: str,
        region: str,
        attributes: dict[str, Any],
        name: str = "",
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.physical_resource_id = physical_id
        self.region = region
        self.attributes = attributes
        self.name = name or physical_id
        self.properties = properties or {}

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def is_created(self) -> bool:
        return True  # the API call returned: nothing left to wait for

    def get_cfn_attribute(self, name: str) -> Any:
        if name not in self.attributes:
            raise RuntimeError(f"{self.resource_type} {self.physical_resource_id} has no attribute {name}")
        return self.attributes[name]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _ApiResource:
        properties = dict(cloudformation_json.get("Properties") or {})
        name = str(properties.get(cls.name_property) or resource_name) if cls.name_property else resource_name
        resource = cls.create(name, properties, account_id, region_name)
        _record(str(kwargs.get("LogicalId") or resource_name), resource)
        LOG.info("created %s %s through the API", cls.resource_type, resource.physical_resource_id)
        return resource

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> _ApiResource:
        # moto passes no logical id here, and a freshly generated name.
        logical_id = str(getattr(original_resource, "logical_resource_id", None) or new_resource_name)
        properties = dict(cloudformation_json.get("Properties") or {})
        explicit = properties.get(cls.name_property) if cls.name_property else None
        name = str(explicit or original_resource.name)
        resource = cls.update(original_resource, name, properties, account_id, region_name)
        _record(logical_id, resource, replaces=original_resource)
        LOG.info("updated %s %s through the API", cls.resource_type, resource.physical_resource_id)
        return resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cls(resource_name, region_name, {}).delete(account_id, region_name)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        raise NotImplementedError

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        """Replacement, unless a type changes in place: the old one goes first, because a resource
        with the same name (or an identical rule) cannot exist twice."""
        original.delete(account_id, region)
        return cls.create(name, properties, account_id, region)

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError

    @classmethod
    @contextmanager
    def unless_gone(cls, what: str) -> Iterator[None]:
        """Around a delete's API call: finding `what` already gone is success."""
        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code not in cls.gone_codes:
                raise
            LOG.info("%s: %s is already gone (%s)", cls.resource_type, what, code)


def _ip_permission(rule: dict[str, Any], group_key: str, prefix_list_key: str) -> dict[str, Any]:
    """A CloudFormation security group rule as an EC2 IpPermission, with its Description."""
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    for port in ("FromPort", "ToPort"):
        if port in rule:
            permission[port] = int(rule[port])
    described = {"Description": str(rule["Description"])} if rule.get("Description") else {}
    if rule.get("CidrIp"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **described}]
    if rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **described}]
    if rule.get(group_key):
        permission["UserIdGroupPairs"] = [{"GroupId": rule[group_key], **described}]
    if rule.get(prefix_list_key):
        permission["PrefixListIds"] = [{"PrefixListId": rule[prefix_list_key], **described}]
    return permission


# --------------------------------------------------------------------------------------------------
# 16. CloudFormation security groups honour SecurityGroupEgress
# --------------------------------------------------------------------------------------------------
# On AWS, declaring egress rules replaces the default allow-all egress rule (an empty list declares
# none, so allow-all stays); moto ignores the property and keeps allow-all, so the fence's
# blackhole group would let traffic out.


def _patch_cloudformation_security_group_egress(p: _Patches) -> None:
    from moto.ec2.models.security_groups import SecurityGroup

    original = _require(SecurityGroup, "create_from_cloudformation_json").__func__

    @classmethod  # type: ignore[misc]
    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        group = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        egress = (cloudformation_json.get("Properties") or {}).get("SecurityGroupEgress") or []
        if egress:
            ec2 = _api_client("ec2", region_name)
            ec2.revoke_security_group_egress(
                GroupId=group.id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
            )
            permissions = [
                _ip_permission(rule, "DestinationSecurityGroupId", "DestinationPrefixListId") for rule in egress
            ]
            ec2.authorize_security_group_egress(GroupId=group.id, IpPermissions=permissions)
        return group

    p.set(SecurityGroup, "create_from_cloudformation_json", create_from_cloudformation_json)


# --------------------------------------------------------------------------------------------------
# 17. A stack created through a change set has its template
# --------------------------------------------------------------------------------------------------
# moto makes the stack of a CREATE change set with an empty template and executing the change set
# creates the resources without parsing the template into the stack, so the stack has no outputs
# and no description; `swr deploy` (change sets, as on AWS) reads the outputs.


def _patch_cloudformation_change_set_outputs(p: _Patches) -> None:
    from moto.cloudformation.models import CloudFormationBackend

    original = _require(CloudFormationBackend, "execute_change_set")

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        change_set = self.change_sets.get(change_set_name) or next(
            (cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name), None
        )
        if change_set is None:
            return
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()

    p.set(CloudFormationBackend, "execute_change_set", execute_change_set)


# --------------------------------------------------------------------------------------------------
# 18. An update that changes nothing is "no changes"
# --------------------------------------------------------------------------------------------------
# moto compares an update's parameters with those given when the stack was created, so a parameter
# passed as UsePreviousValue (which it resolves to the stack's value) or a default given explicitly
# looks like a change: the change set "succeeds" and its execution updates every resource. AWS
# compares the effective values and fails the change set with "didn't contain changes".


def _effective_parameters(declared: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)

    effective = {name: text(spec.get("Default")) for name, spec in declared.items() if "Default" in spec}
    effective.update({name: text(value) for name, value in values.items()})
    return effective


def _patch_cloudformation_unchanged_parameters(p: _Patches) -> None:
    from moto.cloudformation.models import Stack

    _require(Stack, "has_parameters")

    def has_parameters(self: Any, other_parameters: dict[str, Any]) -> bool:
        declared = (self.template_dict or {}).get("Parameters") or {}
        current = _effective_parameters(declared, self.stack_parameters)
        return current == _effective_parameters(declared, other_parameters)

    p.set(Stack, "has_parameters", has_parameters)


# --------------------------------------------------------------------------------------------------
# 22. CloudFormation roles get their ManagedPolicyArns
# --------------------------------------------------------------------------------------------------
# moto's AWS::IAM::Role creates the role and its inline Policies and drops ManagedPolicyArns; an
# update changes neither. On AWS the role has exactly the policies its template names, and a
# permission check (swr drill --dry-run asks IAM what each step's role may do) must see them.


def _sync_role_policies(backend: Any, role: Any, properties: dict[str, Any]) -> None:
    wanted_managed = set(properties.get("ManagedPolicyArns") or [])
    for arn in set(role.managed_policies) - wanted_managed:
        backend.detach_role_policy(arn, role.name)
    for arn in wanted_managed - set(role.managed_policies):
        backend.attach_role_policy(arn, role.name)
    wanted_inline = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies") or []}
    for name in set(role.policies) - set(wanted_inline):
        backend.delete_role_policy(role.name, name)
    for name, document in wanted_inline.items():
        backend.put_role_policy(role.name, name, _policy_text(document))


def _patch_cloudformation_role_policies(p: _Patches) -> None:
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    create = _require(Role, "create_from_cloudformation_json").__func__
    update = _require(Role, "update_from_cloudformation_json").__func__
    delete = _require(Role, "delete_from_cloudformation_json").__func__

    def backend_of(account_id: str, region_name: str) -> Any:
        return iam_backends[account_id][get_partition(region_name)]

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        role = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _sync_role_policies(backend_of(account_id, region_name), role, cloudformation_json.get("Properties") or {})
        return role

    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        role = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        _sync_role_policies(backend_of(account_id, region_name), role, cloudformation_json.get("Properties") or {})
        return role

    def delete_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        # As CloudFormation does on AWS: detach the managed policies, or the delete is a conflict.
        backend = backend_of(account_id, region_name)
        for role in [r for r in backend.roles.values() if r.name == resource_name]:
            for arn in list(role.managed_policies):
                backend.detach_role_policy(arn, role.name)
        delete(cls, resource_name, cloudformation_json, account_id, region_name)

    p.set(Role, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
    p.set(Role, "update_from_cloudformation_json", classmethod(update_from_cloudformation_json))
    p.set(Role, "delete_from_cloudformation_json", classmethod(delete_from_cloudformation_json))


# --------------------------------------------------------------------------------------------------
# 41. A resource whose Condition is false is not listed
# --------------------------------------------------------------------------------------------------


def _patch_cloudformation_conditioned_out(p: _Patches) -> None:
    from moto.cloudformation.models import Stack

    listed = _require(Stack, "stack_resources")

    def stack_resources(self: Any) -> list[Any]:
        return [resource for resource in listed.fget(self) if resource is not None]

    p.set(Stack, "stack_resources", property(stack_resources))


def tag_stack(stack_name: str, tags: dict[str, str], region: str) -> None:
    """Add tags to a stack as they would read back from DescribeStacks, without an update:
    the served emulator marks its stack with its time warp this way (swr.stack.TIME_WARP_TAG)."""
    from moto.cloudformation.models import cloudformation_backends

    for account in list(cloudformation_backends):
        backend = cloudformation_backends[account][region]
        for stack in list(backend.stacks.values()):
            if stack.name == stack_name and stack.status != "DELETE_COMPLETE":
                stack.tags = {**(stack.tags or {}), **tags}


# --------------------------------------------------------------------------------------------------
# 45. CloudFormation reads templates with libyaml's parser
# --------------------------------------------------------------------------------------------------
# moto parses a template body with PyYAML's pure-Python yaml.Loader, once for the change set, once
# to execute it and once more for its description: over half a second each for swr's template,
# most of the time it took to build a world. yaml.CLoader is the same constructor and resolver
# (with moto's tag constructor added, as moto adds it to yaml.Loader) over libyaml's parser, so
# the template reads the same.


class _LibyamlModule:
    """Stands for the ``yaml`` module in moto's CloudFormation modules: ``load`` with yaml.Loader
    goes to the libyaml loader; everything else is PyYAML's."""

    def __init__(self, fast_loader: type[Any]) -> None:
        import yaml

        self._yaml = yaml
        self._fast_loader = fast_loader

    def load(self, stream: Any, Loader: Any) -> Any:
        return self._yaml.load(stream, Loader=self._fast_loader if Loader is self._yaml.Loader else Loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._yaml, name)


def _patch_cloudformation_libyaml(p: _Patches) -> None:
    import yaml
    from moto.cloudformation import models, responses
    from moto.cloudformation.utils import yaml_tag_constructor

    if not getattr(yaml, "__with_libyaml__", False):
        return  # PyYAML built without libyaml: moto's own loader it is

    class _CfnCLoader(yaml.CLoader):
        pass

    _CfnCLoader.add_multi_constructor("", yaml_tag_constructor)
    libyaml = _LibyamlModule(_CfnCLoader)
    for module in (models, responses):
        if vars(module).get("yaml") is not yaml:
            raise RuntimeError(f"{module.__name__} no longer reads templates with yaml: revisit bridge patch 45")
        p.set(module, "yaml", libyaml)
