"""``swr resume``: finish a failover whose execution stopped, with no manual procedure.

Which failover: the record says. SWITCHING with a lease whose holder no longer runs is a
failover that was stopped or timed out; FAILED is one that ended through FailFailover.

How: an execution that stopped with its lease still held is redriven where the endpoint
supports ``RedriveExecution`` (same ARN, so the lease is still its own, and Step Functions
continues from the failed state). Otherwise, and for a FAILED failover (its FailFailover
already cleaned up, so a redrive would only repeat its Fail state), a new execution is
started with a resume trigger; its Admit reads the stopped execution's history and the
record and continues from there (handlers/core/resumption.py). Either way the lease keeps
it to one failover: should a redrive have gone through after all, the new execution finds
the lease held by a running execution and touches nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from handlers.core.record import AppState
from swr.ops.common import Client, FailoverInProgress, NotRegistered, not_registered
from swr.ops.status import settled_record
from swr.stack import StackOutputs


class NothingToResume(Exception):
    """The application has no stopped failover."""


@dataclass
class ResumeResult:
    app: str
    interrupted: str
    interrupted_status: str
    how: str  # "redrive" or "new execution"
    execution_arn: str
    note: str


def resume(
    client: Client,
    stack: StackOutputs,
    app: str,
    requested_by: str,
    confirm_fenced: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ResumeResult:
    """``confirm_fenced``: the operator's reason for taking the old instance to be down, where
    swr could not prove it cut off (recorded with who; its fence then counts as confirmed).
    ``now`` names the new execution (an emulator in virtual time passes its clock)."""
    # A failover that ends while this reads must not look stopped: a second one would start.
    record, holder = settled_record(client, stack.RecordTableName, app)
    if record is None:
        raise NotRegistered(not_registered(app, stack.RecordTableName))
    sfn = client("stepfunctions")
    if record.state is AppState.SWITCHING and record.lease is not None:
        interrupted = record.lease.holder
        status = holder or "GONE"
        if status == "RUNNING":
            raise FailoverInProgress(f"the failover of {app} is running ({interrupted}): nothing to resume")
        if confirm_fenced:
            note = "a redrive would fence again without the confirmation: continuing with a new execution"
        else:
            redriven, note = _redrive(sfn, interrupted)
            if redriven:
                return ResumeResult(app, interrupted, status, "redrive", interrupted, note)
    elif record.state is AppState.FAILED and record.history and record.history[-1].outcome == "failed":
        interrupted = record.history[-1].execution
        status = "FAILED"
        note = "it ended FAILED through FailFailover, which already cleaned up: a redrive would only repeat its end"
    else:
        raise NothingToResume(
            f"nothing to resume: {app} is {record.state.value} on {record.current_instance_id} in {record.current_az}"
        )
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    name = f"resume-{app[: 80 - len('resume--') - len(stamp)]}-{stamp}"
    payload = {"kind": "resume", "app": app, "interrupted": interrupted, "requested_by": requested_by}
    if confirm_fenced:
        payload["confirm_fenced"] = confirm_fenced
        note += f"; {requested_by} confirms {record.current_instance_id} down: {confirm_fenced}"
    arn = str(
        sfn.start_execution(stateMachineArn=stack.StateMachineArn, name=name, input=json.dumps(payload))["executionArn"]
    )
    return ResumeResult(app, interrupted, status, "new execution", arn, note)


def _redrive(sfn: Any, execution: str) -> tuple[bool, str]:
    try:
        sfn.redrive_execution(executionArn=execution)
    except ClientError as error:
        # Whatever the refusal (not redrivable, not supported here, a server error), the new
        # execution is safe: the lease admits it only if the stopped one is still stopped.
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = _plain(str(error.response.get("Error", {}).get("Message", "")))
        return False, f"RedriveExecution refused ({code}: {message}); continuing with a new execution"
    return True, "redriven: Step Functions continues it from the state where it stopped"


def _plain(message: str) -> str:
    # An endpoint without the action may answer with an HTML error page.
    text = " ".join(re.sub(r"<[^>]+>", " ", message).split())
    return text if len(text) <= 120 else text[:117] + "..."
