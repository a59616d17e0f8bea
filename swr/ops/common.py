"""What the operator-side modules share: the ``client(service)`` callable they take, the
errors they raise, and small readers of records and tags."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from handlers.core import watch
from handlers.core.record import AppRecord
from handlers.core.record_store import RecordStore
from swr.stack import StackOutputs

Client = Callable[[str], Any]

# Error codes that say a resource does not exist (or its id cannot be one).
IMAGE_NOT_FOUND = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"})
GROUP_NOT_FOUND = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.Malformed"})
TARGET_GROUP_NOT_FOUND = frozenset({"TargetGroupNotFound", "ValidationError"})
FILE_SYSTEM_NOT_FOUND = frozenset({"FileSystemNotFound", "ValidationException", "BadRequest"})


class OnboardingError(Exception):
    """An operator's request that could not be carried out; the message says why."""


class NotRegistered(OnboardingError):
    """The application has no record: there is nothing to act on (or to rehearse)."""


class FailoverInProgress(OnboardingError):
    """The application's record is SWITCHING: a failover owns it until it ends."""


def require_record(store: RecordStore, app: str) -> AppRecord:
    record = store.get(app)
    if record is None:
        raise NotRegistered(not_registered(app, store.table_name))
    return record


def not_registered(app: str, table: str) -> str:
    return f"application {app!r} is not registered (no record in table {table})"


def rules_of(stack: StackOutputs) -> watch.Rules:
    """The stack's two EC2 state-change rules."""
    return watch.Rules(stack.InstanceWatchRuleName, stack.FenceReleaseRuleName)


def tag_dict(tags: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as ``{k: v}``."""
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


def count(items: list[str], noun: str) -> str:
    """``3 subnets``, ``1 subnet``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
