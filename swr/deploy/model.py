"""What a deploy reports and how it fails: the errors, a change set's changes, stack events,
the result, and the callbacks the caller gives (``progress``, ``confirm``, ``on_event``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


# --- errors -------------------------------------------------------------------------------------
class DeployError(Exception):
    """Base of what can go wrong in a deploy."""


class TemplateInvalid(DeployError):
    """The template cannot be read, packaged or transformed; nothing was created."""


class DeployFailed(DeployError):
    """CloudFormation could not make the change, or the stack cannot take one now."""


class ArtifactBucketUnusable(DeployError):
    """The artifact bucket exists but is not ours, or cannot be created."""


# --- models -------------------------------------------------------------------------------------
class Change(BaseModel):
    """One row of a change set."""

    model_config = ConfigDict(frozen=True)

    action: str  # Add, Modify, Remove, Import, Dynamic
    logical_id: str
    resource_type: str
    physical_id: str | None = None
    replacement: str | None = None  # True, False, Conditional (Modify only)


class StackEvent(BaseModel):
    """One event of the stack while a change set executes."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str  # CREATE_IN_PROGRESS, UPDATE_FAILED, ...
    reason: str | None = None

    @classmethod
    def from_api(cls, event: Mapping[str, Any]) -> StackEvent:
        """From an item of DescribeStackEvents."""
        return cls(
            event_id=str(event["EventId"]),
            timestamp=event["Timestamp"],
            logical_id=str(event.get("LogicalResourceId", "?")),
            resource_type=str(event.get("ResourceType", "?")),
            status=str(event.get("ResourceStatus", "?")),
            reason=event.get("ResourceStatusReason"),
        )


class DeployResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    stack_name: str
    stack_id: str | None
    outcome: Literal["created", "updated", "no changes", "declined"]
    change_set_name: str | None
    changes: tuple[Change, ...] = ()
    stack_status: str | None = None
    outputs: dict[str, str] = {}


# --- callbacks ----------------------------------------------------------------------------------
Progress = Callable[[str], None]  # a line saying what the deploy does now
Confirm = Callable[[Sequence[Change]], bool]  # shown the change set: execute it?
OnEvent = Callable[[StackEvent], None]  # each new stack event while the change set executes
