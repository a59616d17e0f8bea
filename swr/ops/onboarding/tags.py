"""The tags onboarding puts on an application's resources, and how it puts them back."""

from __future__ import annotations

from typing import Any

from swr.ops.common import tag_dict
from swr.ops.onboarding._undo import Undo

# Subnet tags: each subnet an application may run in gets its own key, swr:app:<APP>=allowed.
# A subnet can serve several applications (swr:app=<APP> could name only one), and the key
# lets a stack, which protects one application, condition its launch function's
# RunInstances on ec2:ResourceTag/swr:app:${AppName} (infra/template.yaml conditions it on
# the VPC today). Unregister removes the application's own key only.
SUBNET_APP_TAG_PREFIX = "swr:app:"
ALLOWED = "allowed"


def subnet_app_tag(app: str) -> str:
    return f"{SUBNET_APP_TAG_PREFIX}{app}"


def target_group_tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    described = elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
    found = {str(d["ResourceArn"]): tag_dict(d.get("Tags")) for d in described}
    return {arn: found.get(arn, {}) for arn in arns}


# Each service tags and untags its own way; registration and its undo go through these.
class Ec2Tags:
    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        self.ec2.create_tags(Resources=resources, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        self.ec2.delete_tags(Resources=resources, Tags=[{"Key": k} for k in keys])


class ElbTags:
    def __init__(self, elbv2: Any) -> None:
        self.elbv2 = elbv2

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        self.elbv2.add_tags(ResourceArns=resources, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        self.elbv2.remove_tags(ResourceArns=resources, TagKeys=keys)


class EfsTags:
    def __init__(self, efs: Any) -> None:
        self.efs = efs

    def put(self, resources: list[str], tags: dict[str, str]) -> None:
        for resource in resources:
            self.efs.tag_resource(ResourceId=resource, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove(self, resources: list[str], keys: list[str]) -> None:
        for resource in resources:
            self.efs.untag_resource(ResourceId=resource, TagKeys=keys)


def tag_resources(
    tagger: Ec2Tags | ElbTags | EfsTags,
    resources: list[str],
    tags: dict[str, str],
    previous: dict[str, dict[str, str | None]],
    undo: Undo,
) -> None:
    """Put ``tags`` on ``resources``; undone to the values in ``previous`` (None: absent)."""

    def restore() -> None:
        for resource in resources:
            before = previous.get(resource, {})
            absent = [key for key in tags if before.get(key) is None]
            changed = {k: v for k in tags if (v := before.get(k)) is not None and v != tags[k]}
            if absent:
                tagger.remove([resource], absent)
            if changed:
                tagger.put([resource], changed)

    undo.add(f"restore the tags of {', '.join(resources)}", restore)
    tagger.put(resources, tags)
