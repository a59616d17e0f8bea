"""Following a stack's events while a change set executes, and saying why it failed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from swr.deploy.model import DeployFailed, OnEvent, StackEvent

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"


def newest_event_ids(cloudformation: Any, stack_name: str) -> set[str]:
    """The id of the stack's newest event so far: where the events of a deploy start."""
    newest = cloudformation.describe_stack_events(StackName=stack_name).get("StackEvents", [])[:1]
    return {str(e["EventId"]) for e in newest}


def _new_events(cloudformation: Any, stack_name: str, seen: set[str]) -> list[dict[str, Any]]:
    """The stack's events newer than the newest one in ``seen``, oldest first. CloudFormation
    lists events newest first, so paging stops at the first one already seen."""
    new: list[dict[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        for event in page.get("StackEvents", []):
            if str(event["EventId"]) in seen:
                return new[::-1]
            new.append(event)
    return new[::-1]


def follow_events(
    cloudformation: Any,
    stack_name: str,
    seen: set[str],
    on_event: OnEvent,
    poll: float,
    timeout: float,
) -> tuple[str, list[StackEvent]]:
    """Report each new stack event once, oldest first, until the stack's status is final;
    the final status and the events reported."""
    deadline = time.monotonic() + timeout
    reported: list[StackEvent] = []
    while True:
        # Status before events: once it reads final, every event up to it is listed.
        status = str(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])
        for item in _new_events(cloudformation, stack_name, seen):
            seen.add(str(item["EventId"]))
            event = StackEvent.from_api(item)
            reported.append(event)
            on_event(event)
        if not status.endswith(IN_PROGRESS_SUFFIX):
            return status, reported
        if time.monotonic() > deadline:
            raise DeployFailed(f"stack {stack_name} still {status} after {timeout:.0f} s; it may yet finish")
        time.sleep(poll)


def failure_message(stack_name: str, status: str, events: Sequence[StackEvent]) -> str:
    """The stack's final status and the first resources that failed, with their reasons;
    resources CloudFormation only cancelled because of another failure come last."""
    failed = [e for e in events if e.status.endswith("_FAILED") and e.resource_type != "AWS::CloudFormation::Stack"]
    failed.sort(key=lambda e: "cancelled" in (e.reason or "").lower())
    if not failed:
        return f"stack {stack_name} ended {status}"
    causes = "; ".join(f"{e.logical_id} ({e.resource_type}): {e.reason or 'no reason given'}" for e in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    return f"stack {stack_name} ended {status}: {causes}{more}"
