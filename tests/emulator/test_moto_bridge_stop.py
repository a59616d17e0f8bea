"""Canary for bridge patch 25: StopExecution aborts an execution whose task waits for its
token at once, as on AWS (moto left it RUNNING until the task's timeout, then FAILED)."""

from __future__ import annotations

import time

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
