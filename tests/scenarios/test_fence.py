"""The fence's hard cases: the old instance still runs when swr fails the application over.

Each scenario keeps the old instance's connections as AWS documents them (a security group
change does not cut what is established; swr/emulator/network.py), and the watcher judges
safety from those connections: never two instances with the workload started that can both
reach the shared data or clients, and no replacement mounting the data while the old instance
can still reach it. With the security-group fence swr had before, every one of these broke that
(see the history of this file); now each recovers, or fails closed with a cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handlers.core.record import AppState
from swr.emulator import Emulator
from swr.emulator.faults import THROTTLING
from swr.ops import status
from swr.ops.resume import resume
from tests.helpers.scenarios import assert_safe, finished, output, rule_watches


@pytest.fixture
def failover(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, dict[str, Any]]]:
    name = request.param
    with Emulator.for_scenario(name) as emu:
        emu.inject(name)
        report = emu.report(emu.wait_for_failover())
        if report["outcome"] != "recovered":
            print(f"not recovered: {report['error']}: {report['cause']}")
        yield emu, report


def connection(report: dict[str, Any], path: str) -> str:
    """How the old instance's connection on ``path`` (efs, clients, api) ended, or that it did not."""
    return next(line for line in report["old"]["connections"] if line.startswith(f"{path} via "))


def eventually(emu: Emulator, condition: Callable[[], bool], simulated_seconds: float) -> None:
    assert emu.wait_until(condition, simulated_seconds, poll=5.0), "condition not met in simulated time"


def deny_entries(emu: Emulator, address: str) -> list[tuple[int, bool]]:
    acls = emu.boto3_client("ec2").describe_network_acls()["NetworkAcls"]
    return [(e["RuleNumber"], e["Egress"]) for a in acls for e in a["Entries"] if e.get("CidrBlock") == f"{address}/32"]


def fence_waits(emu: Emulator, execution_arn: str) -> list[int]:
    """The seconds each WaitForFence of the execution waited."""
    sfn = emu.boto3_client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [
        int(json.loads(e["stateEnteredEventDetails"]["input"])["fence"]["next_round_in"])
        for e in events
        if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == "WaitForFence"
    ]


def fence_steps(emu: Emulator, execution_arn: str) -> list[str]:
    """The fence loop's Lambda steps of the execution, in order."""
    sfn = emu.boto3_client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "TaskStateEntered"]
    return [name for name in entered if name in ("CutOffInstances", "ConfirmFence")]


def recovered_safely(emu: Emulator, report: dict[str, Any]) -> None:
    assert report["invariant_violations"] == []
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] != report["old"]["az"]
    assert_safe(emu)


@pytest.mark.parametrize("failover", ["hung-instance"], indirect=True)
def test_a_hung_instance_that_stays_on_the_network_is_cut_off_before_the_replacement_starts(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    recovered_safely(emu, report)
    # Its NFS session was cut by the network ACL, long before EC2 finished terminating it.
    assert "network ACL" in connection(report, "efs") and "denies inbound from" in connection(report, "efs")
    outcome = output(finished(emu, report["execution_arn"]))
    (fenced,) = outcome["fenced"]
    assert fenced.startswith(report["old"]["instance_id"]) and "denies it (rule" in fenced


@pytest.mark.parametrize("failover", ["slow-shutdown"], indirect=True)
def test_an_instance_stuck_shutting_down_is_cut_off_and_released_once_it_is_terminated(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    recovered_safely(emu, report)
    old = emu.instance(report["old"]["instance_id"])
    assert old.state == "shutting-down"  # the failover did not wait for EC2
    assert "network ACL" in connection(report, "efs")
    # Its deny entries stay while it may still run, and go once it is terminated: its address
    # returns to the subnet.
    (fence,) = emu.store.require(emu.app).fences
    assert fence.instance_id == old.instance_id and len(fence.acl_entries) == 2
    assert sorted(deny_entries(emu, old.address)) == [(1, False), (2, True)]
    # The release rule waits for the old instance; the watch follows the replacement.
    assert rule_watches(emu, "swr-fence-release") == [old.instance_id]
    assert rule_watches(emu, "swr-instance-watch") == [report["new"]["instance_id"]]

    eventually(emu, lambda: old.state == "terminated", emu.latency.stuck_termination)
    eventually(emu, lambda: not emu.store.require(emu.app).fences, 60)
    assert deny_entries(emu, old.address) == []
    assert rule_watches(emu, "swr-fence-release") == []
    # swr's own terminate started no execution: the release ran without one.
    assert [e["executionArn"] for e in emu.executions()] == [report["execution_arn"]]
    assert_safe(emu)


@pytest.mark.parametrize("failover", ["terminate-refused"], indirect=True)
def test_an_instance_whose_termination_is_refused_is_stopped_and_left_fenced(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    recovered_safely(emu, report)
    assert report["old"]["state"] == "stopped"
    (fence,) = emu.store.require(emu.app).fences
    assert fence.power == "stop" and fence.instance_state == "stopped"
    # A stopped instance keeps its address: the entries stay until someone terminates it.
    assert len(fence.acl_entries) == 2
    (fenced,) = output(finished(emu, report["execution_arn"]))["fenced"]
    assert "(stopped): powered off (stopped)" in fenced
    # swr status says what the fence still holds, and until when.
    assert emu.stack is not None
    (held,) = status.status_of(emu.boto3_client, "swr", emu.stack).fences
    assert held == (
        f"{fence.instance_id} (stopped) is fenced, cut off: powered off (stopped);"
        " holds 2 network ACL deny entries (until it is terminated)"
    )


def test_an_old_instance_ec2_never_powers_off_is_cut_off_and_reported_as_a_leftover() -> None:
    # A policy denies both terminate and stop of the old instance: the fence still cuts every
    # path (deny entries, deregistration), the failover recovers, and what is left running is
    # named with what to do, not taken for gone.
    denied = ("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
    with Emulator.for_scenario("hung-instance") as emu:
        old = emu.primary_instance_id
        for action in ("TerminateInstances", "StopInstances"):
            emu.faults.add("ec2", action, denied, where=lambda params: old in (params.get("InstanceIds") or []))
        emu.inject("hung-instance")
        report = emu.report(emu.wait_for_failover())

        recovered_safely(emu, report)
        assert emu.instance(old).state == "running"
        (leftover,) = output(finished(emu, report["execution_arn"]))["leftovers"]
        assert leftover.startswith(f"{old} is running: EC2 never accepted the stop (")
        assert "UnauthorizedOperation" in leftover and f"terminate-instances --instance-ids {old}" in leftover
        assert emu.store.require(emu.app).history[-1].leftovers == [leftover]
        assert emu.stack is not None
        assert status.status_of(emu.boto3_client, "swr", emu.stack).leftovers == [leftover]


@pytest.mark.parametrize("failover", ["shared-subnet"], indirect=True)
def test_an_nfs_session_inside_the_instances_subnet_is_cut_by_deleting_the_mount_target(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    recovered_safely(emu, report)
    old = emu.instance(report["old"]["instance_id"])
    assert "deleted: its mounts are broken" in connection(report, "efs")
    # The AZ gets its mount target back, in the same subnet, once the instance can open no
    # new session; the fence is dropped once EC2 has terminated the instance.
    eventually(emu, lambda: old.state == "terminated", 600)
    emu.wait_until_settled()
    targets = emu.boto3_client("efs").describe_mount_targets(FileSystemId=emu.world.file_system_id)["MountTargets"]  # type: ignore[union-attr]
    again = [t for t in targets if t["AvailabilityZoneName"] == old.az]
    assert [(t["SubnetId"], t["LifeCycleState"]) for t in again] == [(old.subnet_id, "available")]
    assert emu.store.require(emu.app).fences == []


@pytest.mark.parametrize("failover", ["az-api-down"], indirect=True)
def test_when_the_instances_az_does_not_answer_the_failover_fails_closed_until_an_operator_confirms(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    old = emu.instance(report["old"]["instance_id"])
    # Neither the power-off nor a deny entry that would reach the AZ can be confirmed: no
    # replacement is permitted, and the cause says what was not cut and what to do.
    assert report["invariant_violations"] == []
    assert report["outcome"] == "failed-closed", report
    assert report["error"] == "FenceNotConfirmed"
    assert "does not answer" in report["cause"] and f"{old.instance_id} (running) is not cut off" in report["cause"]
    assert "swr resume demo --confirm-fenced" in report["cause"]
    assert old.state == "running" and old.reaches_data  # it would still write
    record = emu.store.require(emu.app)
    assert record.state is AppState.FAILED and record.permit is None and record.lease is None
    assert emu.serving_instances() == [old.instance_id]
    # While the AZ does not answer, the rounds back off to one every 30 s rather than hammering
    # its API every 5 s for the whole fence timeout (600 s).
    waits = fence_waits(emu, report["execution_arn"])
    assert waits[:4] == [5, 10, 20, 30] and set(waits[4:]) == {30}
    assert len(waits) < 30

    # An operator finds the instance's host powered off (the AZ's hosts lost power) and says so.
    emu.sim.panic(old)
    assert emu.stack is not None
    resumed = resume(emu.boto3_client, emu.stack, emu.app, "ops@example", confirm_fenced="host powered off, AWS Health")
    assert resumed.how == "new execution"
    described = finished(emu, resumed.execution_arn)
    assert output(described).get("outcome") == "recovered", described
    (fenced,) = output(described)["fenced"]
    assert "ops@example confirmed it down" in fenced and "host powered off, AWS Health" in fenced
    assert emu.sim.violations == []
    assert_safe(emu)


def test_while_aws_only_completes_the_cut_the_rounds_confirm_without_cutting_again() -> None:
    # The old instance dies: one CutOffInstances round does everything (terminate accepted,
    # deregistered, deny entries made); while it shuts down and its clients drain, each round
    # is ConfirmFence alone, until the drain is over.
    with Emulator.for_scenario("instance-failure") as emu:
        emu.inject("instance-failure")
        report = emu.report(emu.wait_for_failover())
        recovered_safely(emu, report)
        steps = fence_steps(emu, report["execution_arn"])
        assert steps[:2] == ["CutOffInstances", "ConfirmFence"]
        assert steps.count("CutOffInstances") == 1 and steps.count("ConfirmFence") >= 3


def test_a_round_in_which_a_cut_failed_is_followed_by_another_cut() -> None:
    # Deregistering the old instance is throttled in two rounds (both of the SDK's attempts each
    # time): a round in which it failed is followed by another cut; once every part has worked,
    # the rounds only confirm.
    with Emulator.for_scenario("instance-failure") as emu:
        emu.faults.add("elbv2", "DeregisterTargets", THROTTLING, count=4)
        emu.inject("instance-failure")
        report = emu.report(emu.wait_for_failover())
        recovered_safely(emu, report)
        steps = fence_steps(emu, report["execution_arn"])
        assert steps[:6] == ["CutOffInstances", "ConfirmFence"] * 3
        assert steps[6:] and set(steps[6:]) == {"ConfirmFence"}
