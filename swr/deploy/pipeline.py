"""What ``swr deploy`` does, on AWS or the emulator: package, transform, change set."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from swr.deploy.artifacts import package
from swr.deploy.change_set import deploy
from swr.deploy.model import Confirm, DeployResult, OnEvent, Progress
from swr.deploy.sam import transform


def untimed(phase: str) -> AbstractContextManager[Any]:
    """The default ``phase`` of deploy_template: brackets nothing."""
    return nullcontext()


def deploy_template(
    template_path: Path,
    cloudformation: Any,
    s3: Any,
    stack_name: str,
    parameters: Mapping[str, str],
    *,
    region: str,
    account_id: str,
    bucket: str,
    prefix: str,
    confirm: Confirm,
    progress: Progress,
    on_event: OnEvent | None = None,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3600.0,
    phase: Callable[[str], AbstractContextManager[Any]] = untimed,
) -> tuple[DeployResult, dict[str, Any]]:
    """What ``swr deploy`` does, on AWS or the emulator: package the template into ``bucket``,
    apply the SAM transform and deploy it through a change set. Returns the result and the
    transformed template. ``phase(name)`` brackets each step: package, transform, change set."""
    with phase("package"):
        packaged = package(template_path, bucket, prefix, s3)
    with phase("transform"):
        transformed = transform(packaged, parameters, region, account_id)
    with phase("change set"):
        result = deploy(
            cloudformation,
            s3,
            stack_name,
            json.dumps(transformed, separators=(",", ":")),
            parameters,
            confirm=confirm,
            progress=progress,
            on_event=on_event,
            bucket=bucket,
            prefix=prefix,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )
    return result, transformed
