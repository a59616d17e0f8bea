"""Resume: continue a failover whose execution stopped before it finished.

An execution can stop part-way: an operator stopped it, it timed out, or it ended FAILED.
What it had done is in two durable places: the record (lease, generation, fence, permit)
and its own history, whose last state document says which replacement it had launched and
whether that replacement's boot gate reported the workload started. From those, Admit
decides where the new execution picks up:

- the replacement started the workload and still runs: adopt it, go on at RegisterTargets
  (registration, health and finalise are idempotent);
- a replacement was launched but never reported a start: it may hold a permit of a dead
  execution, so roll it back (isolate, terminate, next generation) and launch again;
- nothing usable was launched: take the lease for a new generation and start over; an
  instance the stopped execution may still have booting finds its generation superseded
  and fences itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from handlers.core import launching
from handlers.core.aws import api_call, client
from handlers.core.fence.instances import state_of
from handlers.core.record import AppRecord
from handlers.core.steps import BootReport, FailoverPlan, Route, StepError, Takeover

# What a rolled-back replacement is charged with when its execution stopped: not a fault of
# its AZ, so the AZ stays in the running for the next launch.
INTERRUPTED = "ExecutionInterrupted"
ALIVE_STATES = frozenset({"pending", "running"})


class Continuation(BaseModel):
    """Where a resumed failover picks up, with the state it carries over."""

    route: Route
    reason: str
    plan: FailoverPlan | None = None
    takeover: Takeover | None = None
    boot: BootReport | None = None
    error: StepError | None = None
    # Replacements the stopped execution launched that its state never recorded (stopped inside
    # the fence-and-launch branch): a fresh start fences them like rolled-back ones.
    orphans: list[str] = []


def continuation(record: AppRecord, interrupted: str) -> Continuation:
    """Decide from the record and the stopped execution's last state document."""
    document = last_state_document(interrupted)
    fresh = Continuation(route=Route.FENCE_AND_LAUNCH, reason="")
    if document is None:
        orphans = [str(i["InstanceId"]) for i in launching.instances_of(interrupted)]
        fresh.orphans = orphans
        fresh.reason = (
            f"{_name(interrupted)} stopped before it recorded its replacement {', '.join(orphans)}: fencing it"
            " and starting over with a new generation"
            if orphans
            else f"{_name(interrupted)} launched no replacement: starting over with a new generation"
        )
        return fresh
    plan, takeover, boot = document
    replacement = takeover.replacement
    state = state_of(replacement.instance_id)
    if state not in ALIVE_STATES:
        fresh.reason = (
            f"replacement {replacement.instance_id} of {_name(interrupted)} is {state}:"
            " starting over with a new generation"
        )
        return fresh
    permit = record.permit
    started = boot is not None and boot.instance_id == replacement.instance_id
    permitted = (
        permit is not None
        and permit.instance_id == replacement.instance_id
        and permit.generation == record.generation == replacement.generation
    )
    if started and permitted:
        return Continuation(
            route=Route.REGISTER_TARGETS,
            reason=(
                f"replacement {replacement.instance_id} in {replacement.az} started the workload under"
                f" {_name(interrupted)} and is {state}: adopting it"
            ),
            plan=plan,
            takeover=takeover,
            boot=boot,
        )
    cause = (
        f"{_name(interrupted)} stopped before replacement {replacement.instance_id} in {replacement.az}"
        " reported the workload started"
    )
    return Continuation(
        route=Route.ROLLBACK_REPLACEMENT,
        reason=f"{cause}: fencing it and launching again",
        plan=plan,
        takeover=takeover,
        error=StepError(Error=INTERRUPTED, Cause=cause),
    )


def last_state_document(execution: str) -> tuple[FailoverPlan, Takeover, BootReport | None] | None:
    """The latest state document of ``execution`` that names a replacement."""
    sfn = client("stepfunctions")
    latest: tuple[int, tuple[FailoverPlan, Takeover, BootReport | None]] | None = None
    token: str | None = None
    while True:
        # Read it all rather than trust reverseOrder: a failover's history is a few hundred
        # events, and not every endpoint honours the order.
        request: dict[str, Any] = {"executionArn": execution, "maxResults": 1000}
        if token:
            request["nextToken"] = token
        try:
            with api_call(f"read the history of {_name(execution)}"):
                page = sfn.get_execution_history(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                # Nothing to continue from; an instance it may have launched finds its
                # generation superseded by the next one and fences itself.
                return None
            raise
        for event in page.get("events", []):
            found = _takeover_document(event)
            if found is not None and (latest is None or int(event["id"]) > latest[0]):
                latest = (int(event["id"]), found)
        token = page.get("nextToken")
        if not token:
            return latest[1] if latest else None


def _takeover_document(event: Mapping[str, Any]) -> tuple[FailoverPlan, Takeover, BootReport | None] | None:
    exited = event.get("stateExitedEventDetails")
    if not exited:
        return None
    try:
        document = json.loads(exited.get("output") or "null")
    except ValueError:
        return None
    # Inside a Parallel branch the document is the branch's own; only the workflow's main
    # document carries both the plan and the takeover.
    if not isinstance(document, dict) or not document.get("takeover") or not document.get("plan"):
        return None
    try:
        plan = FailoverPlan.model_validate(document["plan"])
        takeover = Takeover.model_validate(document["takeover"])
        boot = BootReport.model_validate(document["boot"]) if document.get("boot") else None
    except ValidationError:
        return None
    return plan, takeover, boot


def _name(execution: str) -> str:
    return f"execution {execution.rsplit(':', 1)[-1]}"
