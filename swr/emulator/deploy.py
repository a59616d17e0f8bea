"""Deploy swr into the emulator the way a user deploys it to AWS: ``infra/template.yaml``
packaged into an artifact bucket, SAM-transformed, and deployed through a CloudFormation
change set (``swr deploy``'s code). Then every declared resource is checked, because moto's
CloudFormation can report CREATE_COMPLETE for a resource it skipped."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swr.deploy import default_bucket_name, deploy_template, ensure_artifact_bucket, untimed
from swr.emulator import moto_bridge
from swr.emulator.stack_check import StackCheck, StackIncomplete, check_stack
from swr.emulator.world import WorldInfo
from swr.stack import DEFAULT_STACK_NAME, StackOutputs, read_outputs

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
STACK_NAME = DEFAULT_STACK_NAME
ARTIFACT_PREFIX = "swr"


@dataclass(frozen=True)
class Deployment:
    stack_name: str
    template_bytes: int  # of the transformed template CloudFormation got
    outputs: StackOutputs
    check: StackCheck
    created_through_api: list[moto_bridge.ApiCreatedResource]

    def summary(self) -> str:
        api = ", ".join(f"{r.logical_id} ({r.resource_type})" for r in self.created_through_api) or "none"
        return (
            f"stack {self.stack_name}: {len(self.check.declared)} resources declared, all present "
            f"({len(self.check.probed)} confirmed through their own API); "
            f"created through the API because moto's CloudFormation skips or mishandles them: {api}"
        )


def parameters_for(world: WorldInfo) -> dict[str, str]:
    """What a user of the seeded account would pass to ``swr deploy``."""
    return {
        "AppName": world.app,
        "VpcId": world.vpc_id,
        "EndpointSubnetIds": ",".join(world.subnets.values()),
        "EndpointRouteTableIds": world.route_table_id,
        # So the demo stack has its notification topic, rules and dead-letter queue.
        "NotificationEmail": f"oncall@{world.app}.example.com",
    }


def deploy(
    client: Callable[[str], Any],
    parameters: dict[str, str],
    progress: Callable[[str], None],
    phase: Callable[[str], AbstractContextManager[Any]] = untimed,
) -> Deployment:
    """Deploy the stack with ``swr deploy``'s code, confirm that every declared resource exists,
    return its outputs. StackIncomplete names what is missing. ``phase(name)`` brackets each
    step (the benchmark times them): package, transform, change set, check."""
    s3, cloudformation = client("s3"), client("cloudformation")
    region = str(s3.meta.region_name)
    account = str(client("sts").get_caller_identity()["Account"])
    bucket = default_bucket_name(account, region)
    ensure_artifact_bucket(s3, bucket, region, account, progress)
    _, transformed = deploy_template(
        TEMPLATE,
        cloudformation,
        s3,
        STACK_NAME,
        parameters,
        region=region,
        account_id=account,
        bucket=bucket,
        prefix=ARTIFACT_PREFIX,
        confirm=lambda changes: True,
        progress=progress,
        poll_seconds=0.02,
        timeout_seconds=120.0,
        phase=phase,
    )
    with phase("check"):
        check = check_stack(client, STACK_NAME, transformed, parameters)
    if not check.ok:
        raise StackIncomplete(f"stack {STACK_NAME} deployed without: " + "; ".join(check.missing))
    return Deployment(
        stack_name=STACK_NAME,
        template_bytes=len(json.dumps(transformed, separators=(",", ":"))),
        outputs=read_outputs(cloudformation, STACK_NAME),
        check=check,
        created_through_api=moto_bridge.resources_created_through_api(),
    )
