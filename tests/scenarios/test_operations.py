"""Day-two operations on the emulator, through the command line an operator uses against
AWS: status, maintenance mode, and resuming a failover that stopped part-way."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from handlers.core.record import AppState
from swr import cli
from swr.emulator import Emulator
from tests.helpers.scenarios import assert_safe, finished, output, replacements, start


class Operator:
    """Runs swr commands against the emulator's endpoint, as a shell would, with the keys of an
    on-call user who has the stack's operator policy and nothing else: the emulator authorizes
    each call against it (bridge patch 42), and any refusal fails the test."""

    def __init__(self, emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.emu = emu
        self.capsys = capsys
        self.where = ["--endpoint", emu.start_server(0), "--region", emu.region]
        iam = emu.boto3_client("iam")
        iam.create_user(UserName="oncall")
        assert emu.stack is not None and emu.stack.OperatorPolicyArn
        iam.attach_user_policy(UserName="oncall", PolicyArn=emu.stack.OperatorPolicyArn)
        key = iam.create_access_key(UserName="oncall")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = cli.main([*argv, *self.where])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def status(self) -> dict[str, Any]:
        code, out, err = self.run("status", "--json")
        assert code == cli.EXIT_OK, err
        (only,) = json.loads(out)
        return dict(only)


@pytest.fixture
def emulator(served_emulator: Emulator) -> Emulator:
    """The operator's commands reach the emulator over HTTP and wait in real time."""
    return served_emulator


@pytest.fixture
def operator(emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Operator:
    return Operator(emulator, capsys, monkeypatch)


def entered(emu: Emulator, arn: str, state: str, timeout: float = 30.0) -> None:
    sfn = emu.boto3_client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any((e.get("stateEnteredEventDetails") or {}).get("name") == state for e in events):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{arn} never entered {state}")


def stop(emu: Emulator, arn: str) -> None:
    emu.boto3_client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped for a test")
    assert finished(emu, arn)["status"] == "ABORTED"


# --- status ---------------------------------------------------------------------------------------
def test_status_lists_the_protected_application_before_and_after_a_drill(operator: Operator, emulator: Emulator):
    before = operator.status()
    assert before["app"] == "demo" and before["stack"] == "swr" and before["registered"]
    assert before["state"] == "NORMAL" and before["instance_state"] == "running"
    assert before["instance_id"] == emulator.primary_instance_id and before["last_failover"] is None
    assert set(before["alarms"].values()) == {"OK"}

    code, _, err = operator.run("drill", "demo", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err

    after = operator.status()
    record = emulator.store.require("demo")
    assert after["instance_id"] == record.current_instance_id != emulator.primary_instance_id
    assert after["generation"] == record.generation == before["generation"] + 1
    assert after["last_failover"]["outcome"] == "recovered" and after["failovers"] == 1
    assert after["last_failover_seconds"] == pytest.approx(record.history[-1].duration_seconds)
    assert after["lease"] is None

    code, out, _ = operator.run("status")
    assert code == cli.EXIT_OK
    header, row = out.splitlines()[:2]
    assert header.split() == ["APP", "STATE", "INSTANCE", "AZ", "GEN", "LEASE", "LAST", "FAILOVER"]
    assert row.split()[:6] == ["demo", "NORMAL", record.current_instance_id, "running", record.current_az, "1"]
    assert f"-> {record.current_instance_id} ({record.current_az})" in row


def test_status_of_an_application_no_stack_protects_is_refused(operator: Operator):
    code, out, err = operator.run("status", "payroll")
    assert code == cli.EXIT_USAGE and out == ""
    assert "no swr stack protects payroll" in err and "protected: demo" in err


# --- maintenance ----------------------------------------------------------------------------------
def test_maintenance_suspends_automatic_failover_and_a_forced_drill_still_runs(operator: Operator, emulator: Emulator):
    code, out, err = operator.run("maintenance", "demo", "on", "--reason", "kernel patching")
    assert code == cli.EXIT_OK, err
    assert out.startswith("demo: maintenance ON since") and "kernel patching" in out
    assert emulator.store.require("demo").maintenance is not None

    # RMS reports a fault during the maintenance window: admitted, ignored with the reason.
    emulator.inject("rms-fault")
    _wait_for(lambda: emulator.executions())
    emulator.wait_until_settled()
    for execution in emulator.executions():
        admitted = output(finished(emulator, execution["executionArn"]))
        assert admitted["decision"] == "ignore" and "kernel patching" in admitted["reason"]
    assert replacements(emulator) == []
    status = operator.status()
    assert status["maintenance"]["reason"] == "kernel patching" and status["state"] == "NORMAL"
    code, out, _ = operator.run("status")
    assert "NORMAL (maintenance)" in out and "maintenance since" in out

    # Turning it on again changes nothing; the operator's forced drill fails over anyway.
    code, out, _ = operator.run("maintenance", "demo", "on", "--reason", "kernel patching")
    assert code == cli.EXIT_OK and "nothing changed" in out
    code, _, err = operator.run("drill", "demo", "--force", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err
    assert len(replacements(emulator)) == 1

    code, out, err = operator.run("maintenance", "demo", "off")
    assert code == cli.EXIT_OK, err
    assert "maintenance OFF: automatic failover resumed" in out
    assert emulator.store.require("demo").maintenance is None
    assert_safe(emulator)


def test_ending_maintenance_warns_about_an_alarm_already_in_alarm(operator: Operator, emulator: Emulator):
    assert operator.run("maintenance", "demo", "on")[0] == cli.EXIT_OK
    alarm = emulator.store.require("demo").alarm_names[0]
    emulator.boto3_client("cloudwatch").set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="heartbeat stopped while RMS was down for patching"
    )
    code, out, _ = operator.run("maintenance", "demo", "off")
    assert code == cli.EXIT_OK
    assert f"warning: alarm {alarm} is in ALARM: it starts no failover until it changes state" in out


def test_maintenance_of_an_unregistered_application_is_refused(operator: Operator):
    code, out, err = operator.run("maintenance", "payroll", "on")
    assert code == cli.EXIT_USAGE and out == "" and "'payroll' is not registered" in err


# --- resume ---------------------------------------------------------------------------------------
def test_a_failover_stopped_while_its_replacement_waited_for_the_permit_is_resumed(
    operator: Operator, emulator: Emulator
):
    sim = emulator.simulation
    assert sim is not None
    sim.silent_gate_azs.update(emulator.world.subnets)  # replacements boot, their gates say nothing yet
    arn = start(emulator, {"kind": "drill", "app": "demo"}, "drill-to-be-stopped")
    entered(emulator, arn, "IssuePermit")
    _wait_for(lambda: emulator.store.require("demo").permit is not None)
    stop(emulator, arn)
    stuck = emulator.store.require("demo").permit.instance_id  # type: ignore[union-attr]
    emulator.instance(stuck).gate_started = True  # its boot gate hangs: it never reports
    sim.silent_gate_azs.clear()
    status = operator.status()
    assert status["state"] == "SWITCHING" and status["lease"]["holder_status"] == "ABORTED"

    code, out, err = operator.run("resume", "demo", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err + out
    assert "RedriveExecution refused" in out  # moto has no redrive: a new execution continues
    resumed = _resumed_execution(emulator)
    admission = _admit_output(emulator, resumed)
    assert admission["route"] == "RollbackReplacement" and "fencing it and launching again" in admission["reason"]
    outcome = output(finished(emulator, resumed))
    assert outcome["outcome"] == "recovered" and outcome["new_instance_id"] != stuck
    assert emulator.instance(stuck).state in ("shutting-down", "terminated")
    record = emulator.store.require("demo")
    assert record.state is AppState.NORMAL and record.current_instance_id == outcome["new_instance_id"]
    assert_safe(emulator)


def test_while_a_failover_runs_neither_maintenance_nor_resume_touch_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    # A slow clock keeps the failover waiting for its permit while the operator types.
    with Emulator(virtual=False, warp=10.0) as emulator:
        operator = Operator(emulator, capsys, monkeypatch)
        assert emulator.simulation is not None
        emulator.simulation.silent_gate_azs.update(emulator.world.subnets)
        arn = start(emulator, {"kind": "drill", "app": "demo"}, "drill-running")
        entered(emulator, arn, "IssuePermit")
        before = emulator.store.require("demo")

        code, _, err = operator.run("maintenance", "demo", "on")
        assert code == cli.EXIT_FAILED and "maintenance cannot pause it" in err
        code, _, err = operator.run("resume", "demo")
        assert code == cli.EXIT_FAILED and "is running" in err

        assert emulator.boto3_client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"
        after = emulator.store.require("demo")
        assert after.maintenance is None and after.lease == before.lease
        assert not [e for e in emulator.executions() if e["name"].startswith("resume-")]
        stop(emulator, arn)


def test_a_failover_stopped_after_the_workload_started_adopts_that_replacement(operator: Operator, emulator: Emulator):
    sim = emulator.simulation
    assert sim is not None
    sim.unhealthy_azs.update(emulator.world.subnets)  # the target never turns healthy: it sits in the health loop
    arn = start(emulator, {"kind": "drill", "app": "demo"}, "drill-stopped-in-health")
    entered(emulator, arn, "CheckTargetHealth")
    stop(emulator, arn)
    (started,) = replacements(emulator)
    sim.unhealthy_azs.clear()

    code, out, err = operator.run("resume", "demo", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err + out
    resumed = _resumed_execution(emulator)
    admission = _admit_output(emulator, resumed)
    assert admission["route"] == "RegisterTargets" and "adopting it" in admission["reason"]
    outcome = output(finished(emulator, resumed))
    assert outcome["new_instance_id"] == started and replacements(emulator) == [started]
    history = emulator.boto3_client("stepfunctions").get_execution_history(executionArn=resumed, maxResults=1000)
    states = [(e.get("stateEnteredEventDetails") or {}).get("name") for e in history["events"]]
    assert "FenceAndLaunch" not in states and "IssuePermit" not in states
    assert_safe(emulator)


def test_a_failed_failover_is_resumed_once_its_cause_is_fixed(operator: Operator, emulator: Emulator):
    sim = emulator.simulation
    assert sim is not None
    sim.efs_unreachable_azs.update(emulator.world.subnets)  # no replacement can mount the shared data
    arn = start(emulator, {"kind": "drill", "app": "demo"}, "drill-that-fails")
    assert finished(emulator, arn)["status"] == "FAILED"
    status = operator.status()
    assert status["state"] == "FAILED" and status["last_failover"]["outcome"] == "failed"
    code, out, _ = operator.run("status")
    assert "`swr resume demo`" in out

    sim.efs_unreachable_azs.clear()  # the operator fixed the mount targets
    code, out, err = operator.run("resume", "demo", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err + out
    assert "ended FAILED through FailFailover" in out
    outcome = output(finished(emulator, _resumed_execution(emulator)))
    assert outcome["outcome"] == "recovered"
    assert operator.status()["state"] == "NORMAL"
    assert_safe(emulator)


def test_resume_with_nothing_stopped_says_so_and_changes_nothing(operator: Operator, emulator: Emulator):
    before = emulator.store.require("demo")
    code, out, _ = operator.run("resume", "demo")
    assert code == cli.EXIT_OK and out.startswith("nothing to resume: demo is NORMAL")
    assert emulator.store.require("demo") == before and emulator.executions() == []


def test_a_resume_naming_another_execution_is_ignored(emulator: Emulator):
    other = emulator.state_machine_arn.replace(":stateMachine:", ":execution:") + ":not-the-stopped-one"
    described = finished(emulator, start(emulator, {"kind": "resume", "app": "demo", "interrupted": other}, "r1"))
    assert output(described)["decision"] == "ignore" and "nothing to resume" in output(described)["reason"]
    assert replacements(emulator) == []


# --- helpers ----------------------------------------------------------------------------------------
def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.05)


def _resumed_execution(emu: Emulator) -> str:
    return next(str(e["executionArn"]) for e in emu.executions() if e["name"].startswith("resume-demo-"))


def _admit_output(emu: Emulator, arn: str) -> dict[str, Any]:
    events = emu.boto3_client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    for event in events:
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") == "Admit":
            return dict(json.loads(exited["output"]))
    raise AssertionError(f"{arn} has no Admit result")


def test_an_oncall_operator_with_only_the_operator_policy_runs_every_day_two_command(operator: Operator, tmp_path: Any):
    # Each call is authorized against the stack's OperatorPolicy (any refusal fails the test).
    assert operator.run("drill", "demo", "--dry-run")[0] == cli.EXIT_OK
    code, out, err = operator.run("drill", "demo", "--reason", "on-call drill", "--wait", "--warp", "100")
    assert code == cli.EXIT_OK, err
    code, out, _ = operator.run("executions", "demo", "--json")
    (latest, *_) = json.loads(out)
    assert code == cli.EXIT_OK and latest["status"] == "SUCCEEDED"
    assert operator.run("show", latest["name"])[0] == cli.EXIT_OK
    assert operator.run("report", latest["name"], "--html", str(tmp_path / "drill.html"))[0] == cli.EXIT_OK
    assert operator.status()["state"] == "NORMAL"
