"""A CloudFormation change set from start to end: created for the template body, described,
put to ``confirm``, executed (or deleted), and the stack followed to its final status."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from swr.deploy.artifacts import put_artifact
from swr.deploy.events import IN_PROGRESS_SUFFIX, failure_message, follow_events, newest_event_ids
from swr.deploy.model import Change, Confirm, DeployFailed, DeployResult, OnEvent, Progress, StackEvent, TemplateInvalid
from swr.deploy.sam import url_suffix
from swr.deploy.template import parse_body

DEFAULT_PREFIX = "swr"
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline; larger bodies go through S3
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

# Stack states: where a deploy may start from, and where it ends.
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
MUST_DELETE_FIRST = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}


def deploy(
    cloudformation: Any,
    s3: Any,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    *,
    confirm: Confirm,
    progress: Progress,
    on_event: OnEvent | None = None,
    bucket: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3600.0,
) -> DeployResult:
    """Create a change set for the stack, ask ``confirm`` with its changes, execute it and
    follow the stack events to the end, each one to ``on_event``. A change set without
    changes is deleted and reported as "no changes"; a declined one is deleted and the stack
    left as it was. DeployFailed when the stack cannot be changed now or the change fails
    (it names the failed resources)."""
    existing = _describe_stack(cloudformation, stack_name)
    status = existing["StackStatus"] if existing else None
    if status in MUST_DELETE_FIRST:
        raise DeployFailed(
            f"stack {stack_name} is {status}: CloudFormation cannot update it; "
            f"delete it (aws cloudformation delete-stack --stack-name {stack_name}) and deploy again"
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        raise DeployFailed(
            f"stack {stack_name} is UPDATE_ROLLBACK_FAILED: finish its rollback first "
            f"(aws cloudformation continue-update-rollback --stack-name {stack_name}), then deploy again"
        )
    if status and status.endswith(IN_PROGRESS_SUFFIX) and status != "REVIEW_IN_PROGRESS":
        raise DeployFailed(f"stack {stack_name} is busy ({status}); deploy again once it has finished")
    kind = "UPDATE" if status and status != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"swr-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    request: dict[str, Any] = {
        "StackName": stack_name,
        "ChangeSetName": name,
        "ChangeSetType": kind,
        "Capabilities": list(CAPABILITIES),
        "Parameters": _parameters(template_body, parameters, existing if kind == "UPDATE" else None),
        "Description": "swr deploy",
    }
    request.update(_template_source(s3, template_body, bucket, prefix))

    progress(f"creating change set {name} ({kind.lower()} of stack {stack_name})")
    try:
        change_set_id = str(cloudformation.create_change_set(**request)["Id"])
    except ClientError as error:
        # moto (not AWS) refuses an identical UPDATE outright instead of failing the change set.
        if _is_no_changes(str(error)):
            progress(f"no changes: stack {stack_name} is up to date")
            return _result(cloudformation, stack_name, "no changes", None, ())
        raise
    created_stack = status is None  # ours to remove again if nothing gets deployed
    described = _wait_for_change_set(cloudformation, change_set_id, poll_seconds, timeout_seconds)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason") or "")
        _discard(cloudformation, change_set_id, stack_name, created_stack)
        if _is_no_changes(reason):
            progress(f"no changes: stack {stack_name} is up to date")
            return _result(cloudformation, stack_name, "no changes", None, ())
        raise DeployFailed(f"change set {name} failed: {reason or 'no reason given'}")
    changes = tuple(_changes(cloudformation, change_set_id, described))
    if not confirm(changes):
        _discard(cloudformation, change_set_id, stack_name, created_stack)
        progress(f"not deployed: change set {name} deleted, stack {stack_name} left as it was")
        return _result(cloudformation, stack_name, "declined", name, changes)

    seen = newest_event_ids(cloudformation, stack_name)
    cloudformation.execute_change_set(ChangeSetName=change_set_id)
    progress(f"executing change set {name}")
    report = on_event or _ignore
    final, events = follow_events(cloudformation, stack_name, seen, report, poll_seconds, timeout_seconds)
    if final not in SUCCEEDED:
        raise DeployFailed(failure_message(stack_name, final, events))
    outcome: Literal["created", "updated"] = "created" if kind == "CREATE" else "updated"
    result = _result(cloudformation, stack_name, outcome, name, changes)
    progress(f"stack {stack_name}: {final}")
    return result


def _ignore(event: StackEvent) -> None:
    """The default ``on_event``: the events are followed, not reported."""


def _describe_stack(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _parameters(template_body: str, given: Mapping[str, str], existing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The values given, and for an update the stack's previous value of every other
    parameter the template still declares (as ``aws cloudformation deploy`` does), so a
    redeploy does not silently reset what an earlier deploy set."""
    declared = parse_body(template_body).get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateInvalid(
            f"the template has no parameter {', '.join(unknown)}; it has {', '.join(declared) or 'none'}"
        )
    previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
    # What CloudFormation would refuse anyway, said before a change set exists.
    missing = [
        k
        for k, spec in sorted(declared.items())
        if isinstance(spec, dict) and "Default" not in spec and k not in given and k not in previous
    ]
    if missing:
        raise TemplateInvalid(f"no value for parameter {', '.join(missing)}: the template has no default for it")
    result: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(given.items())]
    result += [
        {"ParameterKey": k, "UsePreviousValue": True} for k in sorted(declared) if k in previous and k not in given
    ]
    return result


def _template_source(s3: Any, body: str, bucket: str | None, prefix: str) -> dict[str, str]:
    data = body.encode("utf-8")
    if len(data) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    if not bucket:
        raise TemplateInvalid(f"the template is {len(data)} bytes, over {TEMPLATE_BODY_LIMIT}: it needs an S3 bucket")
    key = f"{prefix.strip('/')}/{hashlib.sha256(data).hexdigest()}.template.json".lstrip("/")
    put_artifact(s3, bucket, key, data)
    region = str(s3.meta.region_name or "us-east-1")
    # CloudFormation fetches the template itself; the virtual-hosted URL is what it expects.
    return {"TemplateURL": f"https://{bucket}.s3.{region}.{url_suffix(region)}/{key}"}


def _is_no_changes(text: str) -> bool:
    return any(marker in text for marker in NO_CHANGES)


def _wait_for_change_set(cloudformation: Any, change_set_id: str, poll: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = dict(cloudformation.describe_change_set(ChangeSetName=change_set_id))
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise DeployFailed(f"change set {change_set_id} still {described['Status']} after {timeout:.0f} s")
        time.sleep(poll)


def _changes(cloudformation: Any, change_set_id: str, first_page: dict[str, Any]) -> Iterator[Change]:
    page = first_page
    while True:
        for item in page.get("Changes", []):
            change = item.get("ResourceChange") or {}
            yield Change(
                action=str(change.get("Action", "?")),
                logical_id=str(change.get("LogicalResourceId", "?")),
                resource_type=str(change.get("ResourceType", "?")),
                physical_id=change.get("PhysicalResourceId"),
                replacement=change.get("Replacement"),
            )
        token = page.get("NextToken")
        if not token:
            return
        page = dict(cloudformation.describe_change_set(ChangeSetName=change_set_id, NextToken=token))


def _discard(cloudformation: Any, change_set_id: str, stack_name: str, created_stack: bool) -> None:
    """Delete the change set and, when this deploy created the stack for it, the empty
    stack (REVIEW_IN_PROGRESS, no resources) too: nothing is left behind."""
    cloudformation.delete_change_set(ChangeSetName=change_set_id)
    if created_stack:
        cloudformation.delete_stack(StackName=stack_name)


def _result(
    cloudformation: Any,
    stack_name: str,
    outcome: Literal["created", "updated", "no changes", "declined"],
    change_set_name: str | None,
    changes: Sequence[Change],
) -> DeployResult:
    stack = _describe_stack(cloudformation, stack_name) or {}
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs") or []}
    return DeployResult(
        stack_name=stack_name,
        stack_id=stack.get("StackId"),
        outcome=outcome,
        change_set_name=change_set_name,
        changes=tuple(changes),
        stack_status=stack.get("StackStatus"),
        outputs=outputs,
    )
