"""How the simulation steers the bridge: the hooks start() takes, and the faults they return."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from swr.emulator.moto_bridge.network import finish_mount_target_deletion
from swr.emulator.scheduler import Scheduler

# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiFault:
    """An error the emulator returns instead of executing an API call."""

    code: str  # e.g. "RequestLimitExceeded", "ThrottlingException", "ServiceUnavailable"
    message: str
    status: int = 400  # 503/500 for server errors


def _no_fault(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
    return None


def _ignore_ids(ids: list[str]) -> None:
    return None


def _ignore_event(event: dict[str, Any]) -> None:
    return None


def _nothing() -> None:
    return None


def _delete_at_once(mount_target_id: str) -> None:
    finish_mount_target_deletion(mount_target_id)


@dataclass
class BridgeHooks:
    """How the simulation steers the emulator. Read on every use, so fields may be swapped live."""

    # Simulated seconds per real second (100.0 = a 50 s Wait takes 0.5 s); <= 0 pauses waits.
    warp: Callable[[], float]
    # (boto3 service name e.g. "ec2"/"elbv2"/"stepfunctions"/"cloudwatch"/"lambda", action e.g.
    # "RunInstances", top-level request params as moto parsed them) -> fault to return, or None.
    fault_for: Callable[[str, str, dict[str, Any]], ApiFault | None] = _no_fault
    on_instances_launched: Callable[[list[str]], None] = _ignore_ids  # new instances, state pending
    on_instances_terminating: Callable[[list[str]], None] = _ignore_ids  # now shutting-down
    on_instances_stopping: Callable[[list[str]], None] = _ignore_ids  # now stopping
    # A mount target is now "deleting"; call finish_mount_target_deletion(id) when it is gone.
    mount_target_deleting: Callable[[str], None] = _delete_at_once
    # (target_group_arn, instance_id) -> (state, reason_code, description) for registered instance
    # targets; None keeps moto's answer.
    target_health: Callable[[str, str], tuple[str, str | None, str | None]] | None = None
    on_alarm_event: Callable[[dict[str, Any]], None] = _ignore_event  # each alarm event published
    # The simulated clock (epoch seconds). When set, interpreter waits last until it has moved on
    # by the declared seconds, so a clock that pauses (warp() == 0) pauses them exactly.
    sim_now: Callable[[], float] | None = None
    # Virtual time: the interpreter's threads are the scheduler's actors and its waits, timestamps
    # and ids come from it (see swr/emulator/scheduler.py); warp and sim_now are then unused.
    scheduler: Scheduler | None = None
    # Entered around every Lambda task the interpreter runs, request and handler both (e.g. to
    # pause the simulated clock while the emulator spends real CPU on a step, which warped time
    # would otherwise multiply). Callback waits (.waitForTaskToken) are outside it.
    invoking: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Called after a function's Environment.Variables changed os.environ (e.g. to drop settings
    # cached from the previous values).
    on_function_environment: Callable[[], None] = _nothing
