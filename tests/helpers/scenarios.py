"""Driving the emulator's state machine as a trigger or an operator does, and the invariants
every scenario must leave standing."""

from __future__ import annotations

import json
from typing import Any

from handlers.core.record import AppState
from swr.emulator import Emulator
from swr.emulator.faults import SERVER_ERROR


def start(emu: Emulator, payload: dict[str, Any], name: str) -> str:
    """Start an execution the way an EventBridge rule target (or an operator) does."""
    sfn = emu.boto3_client("stepfunctions")
    return str(
        sfn.start_execution(stateMachineArn=emu.state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    )


def finished(emu: Emulator, arn: str, timeout: float = 3600.0) -> dict[str, Any]:
    """The execution once it has ended (``timeout`` in simulated seconds)."""
    sfn = emu.boto3_client("stepfunctions")
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(sfn.describe_execution(executionArn=arn))
        return bool(seen["status"] != "RUNNING")

    if not emu.wait_until(ended, timeout):
        raise TimeoutError(arn)
    return seen


def output(described: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(described.get("output") or "{}"))


def replacements(emu: Emulator) -> list[str]:
    """Every instance swr ever launched for the application, whatever its state now."""
    return sorted(i.instance_id for i in emu.simulation.instances.values() if i.role == "replacement")  # type: ignore[union-attr]


def assert_safe(emu: Emulator) -> None:
    """The invariants every scenario must leave standing."""
    emu.wait_until_settled()
    sim = emu.simulation
    assert sim is not None
    assert sim.violations == [], f"two instances served the workload at once: {sim.violations}"
    record = emu.store.require(emu.app)
    assert record.lease is None, f"lease left held by {record.lease}"
    assert record.state in (AppState.NORMAL, AppState.FAILED)
    serving = emu.serving_instances()
    if record.state is AppState.NORMAL:
        current = emu.instance(record.current_instance_id)
        assert current.state == "running", f"record names {current.instance_id}, which is {current.state}"
        assert current.az == record.current_az
        if not (current.hung or current.az in emu.faults.down_azs) and current.workload_up:
            assert serving == [record.current_instance_id]
    else:
        # A replacement swr gave up on may still be shutting down (EC2 takes its time): once it
        # is gone, nothing serves.
        assert len(serving) <= 1
        assert emu.wait_until(lambda: len(emu.serving_instances()) <= 1, timeout=600)


def fence_cannot_be_proven(emu: Emulator, fence_timeout_seconds: int = 60) -> None:
    """No deny entry can be made and EC2 will not power the old instance off: the fence fails
    closed once the record's fence timeout (shortened here) has passed."""
    old = emu.store.require(emu.app).current_instance_id
    emu.faults.add("ec2", "CreateNetworkAclEntry", SERVER_ERROR)
    for action in ("TerminateInstances", "StopInstances"):
        emu.faults.add("ec2", action, SERVER_ERROR, where=lambda params: old in (params.get("InstanceIds") or []))
    record = emu.store.require(emu.app)
    emu.store.save(record.model_copy(update={"fence_timeout_seconds": fence_timeout_seconds}))


def rule_watches(emu: Emulator, rule: str) -> list[str]:
    """The instances an EC2 state-change rule matches now (none when it is off)."""
    from handlers.core import watch

    described = emu.boto3_client("events").describe_rule(Name=rule)
    return watch.watched(described.get("EventPattern"), described.get("State"))
