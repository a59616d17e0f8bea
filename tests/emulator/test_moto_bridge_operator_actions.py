"""Canaries for the operator's Step Functions actions: bridge patch 25 (StopExecution aborts an
execution whose task waits for its token at once, as on AWS; moto left it RUNNING until the
task's timeout, then FAILED) and 26 (RedriveExecution, which moto lacks, answers with an error
a client can read instead of a 500 page)."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from swr.emulator.moto_bridge import BridgeHooks
from tests.emulator import sample_handlers
from tests.emulator.test_moto_bridge import client, hooks, make_function, make_state_machine, task, wait_done

__all__ = ["hooks"]  # the fixture, shared with the main canary file


def test_stopping_an_execution_that_waits_for_its_token_aborts_it_at_once(hooks: BridgeHooks) -> None:
    make_function("record", "record")
    sm = make_state_machine(
        {
            "StartAt": "Hold",
            "States": {
                "Hold": task(
                    "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    Parameters={"FunctionName": "record", "Payload": {"token.$": "$$.Task.Token"}},
                    TimeoutSeconds=3600,  # 36 s of wall time at the canary's warp: far past the wait below
                    Next="After",
                ),
                "After": {"Type": "Pass", "End": True},
            },
        }
    )
    sfn = client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"]
    assert sample_handlers.RECEIVED_EVENT.wait(5), "the task never started"

    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by a canary")

    described = wait_done(arn, timeout=2.0)
    assert described["status"] == "ABORTED"
    time.sleep(0.2)  # the interrupted task winds down; it must not change the outcome or go on
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    types = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    assert types[-1] == "ExecutionAborted" and "PassStateEntered" not in types


def test_redrive_is_refused_as_an_unknown_operation(hooks: BridgeHooks) -> None:
    sm = make_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    execution = sm.replace(":stateMachine:", ":execution:") + ":gone"
    with pytest.raises(ClientError) as refused:
        client("stepfunctions").redrive_execution(executionArn=execution)
    error = refused.value.response["Error"]
    assert error["Code"] == "UnknownOperationException" and "not supported" in error["Message"]
