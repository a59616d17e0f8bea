"""swr resume on AWS, where RedriveExecution exists: the emulator has none, so these
scenarios give the Step Functions side a small recording stand-in and keep the record on
moto's DynamoDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from handlers.core.record import AppState, Lease
from handlers.core.record_store import RecordStore
from swr.ops.resume import NothingToResume, resume
from swr.stack import StackOutputs
from tests.helpers.records import TABLE, make_record

MACHINE = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:swr-failover"
STOPPED = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:drill-demo-1"


class StepFunctions:
    """Answers as Step Functions does for a stopped execution; records what it was asked."""

    def __init__(self, redrive_error: str | None = None) -> None:
        self.redrive_error = redrive_error
        self.redriven: list[str] = []
        self.started: list[dict[str, Any]] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"executionArn": executionArn, "status": "ABORTED"}

    def redrive_execution(self, executionArn: str) -> dict[str, Any]:
        if self.redrive_error:
            raise ClientError({"Error": {"Code": self.redrive_error, "Message": "refused"}}, "RedriveExecution")
        self.redriven.append(executionArn)
        return {"redriveDate": datetime.now(UTC)}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        self.started.append({"stateMachineArn": stateMachineArn, "name": name, "input": json.loads(input)})
        return {"executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"}


def stack() -> StackOutputs:
    values = {key: "x" for key in StackOutputs.model_fields}
    return StackOutputs.model_validate(
        {**values, "AppName": "demo", "RecordTableName": TABLE, "StateMachineArn": MACHINE}
    )


@pytest.fixture
def stopped_failover(store: RecordStore) -> None:
    now = datetime.now(UTC)
    lease = Lease(holder=STOPPED, acquired_at=now, expires_at=now + timedelta(hours=1))
    store.create(make_record(state=AppState.SWITCHING, lease=lease, generation=1))


def test_a_stopped_failover_is_redriven_where_the_endpoint_can(stopped_failover: None):
    sfn = StepFunctions()
    result = resume(lambda service: sfn if service == "stepfunctions" else boto3.client(service), stack(), "demo", "op")
    assert (result.how, result.execution_arn, result.interrupted_status) == ("redrive", STOPPED, "ABORTED")
    assert sfn.redriven == [STOPPED] and sfn.started == []


@pytest.mark.parametrize("refusal", ["ExecutionNotRedrivable", "UnknownOperationException", "InternalFailure"])
def test_a_refused_redrive_continues_with_a_resume_execution(stopped_failover: None, refusal: str):
    sfn = StepFunctions(redrive_error=refusal)
    result = resume(lambda service: sfn if service == "stepfunctions" else boto3.client(service), stack(), "demo", "op")
    assert result.how == "new execution" and refusal in result.note
    (started,) = sfn.started
    assert started["stateMachineArn"] == MACHINE and started["name"].startswith("resume-demo-")
    assert started["input"] == {"kind": "resume", "app": "demo", "interrupted": STOPPED, "requested_by": "op"}


class FinishingFailover(StepFunctions):
    """The failover finishes between resume's read of the record and its question about the
    execution: by the time Step Functions says SUCCEEDED, Finalise has released the lease."""

    def __init__(self, store: RecordStore) -> None:
        super().__init__()
        self.store = store

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        def finalise(record: Any) -> None:
            record.state, record.lease, record.current_instance_id = AppState.NORMAL, None, "i-new"

        self.store.update("demo", finalise)
        return {"executionArn": executionArn, "status": "SUCCEEDED"}


def test_a_failover_that_finishes_while_resume_reads_is_not_taken_for_stopped(
    stopped_failover: None, store: RecordStore
):
    sfn = FinishingFailover(store)
    with pytest.raises(NothingToResume, match="demo is NORMAL on i-new"):
        resume(lambda service: sfn if service == "stepfunctions" else boto3.client(service), stack(), "demo", "op")
    assert sfn.started == [] and sfn.redriven == []
