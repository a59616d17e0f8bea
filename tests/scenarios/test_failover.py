"""Failover scenarios an operator would recognise, each run by the real ASL on the emulator
with the real handlers, each ending with the safety invariants checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from handlers.core.record import AppState, Maintenance
from swr.emulator import Emulator
from swr.emulator.faults import NO_CAPACITY, THROTTLING
from tests.helpers.scenarios import assert_safe, fence_cannot_be_proven, finished, output, replacements, start

SECOND_AZ, THIRD_AZ = "ap-northeast-1c", "ap-northeast-1d"


def history(emu: Emulator, arn: str) -> list[dict]:
    sfn = emu.boto3_client("stepfunctions")
    events: list[dict] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def task_errors(emu: Emulator, arn: str) -> list[str]:
    """The error of every failed task attempt, in order (retried or caught)."""
    return [
        (e.get("lambdaFunctionFailedEventDetails") or e.get("taskFailedEventDetails"))["error"]
        for e in history(emu, arn)
        if e["type"] in ("LambdaFunctionFailed", "TaskFailed")
    ]


def entered(emu: Emulator, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history(emu, arn) if "stateEnteredEventDetails" in e]


def recover(emu: Emulator, scenario: str) -> dict:
    emu.inject(scenario)
    report = emu.report(emu.wait_for_failover())
    assert_safe(emu)
    if report["outcome"] != "recovered":  # say why first: the whole report is cut short
        print(f"not recovered: {report['error']}: {report['cause']}\n{emu.simulation.events[-40:]}")  # type: ignore[union-attr]
    return report


def test_rms_fault_recovers_in_another_az_with_the_shared_data(emulator: Emulator):
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] != report["old"]["az"]
    assert report["new_target_health"] == "healthy"
    assert report["efs_data_preserved"]
    old = emulator.instance(report["old"]["instance_id"])
    assert old.isolated and old.state in ("shutting-down", "terminated")
    record = emulator.store.require("demo")
    assert record.state is AppState.NORMAL and record.generation == 1
    assert record.history[-1].outcome == "recovered"
    assert record.history[-1].new_instance_id == report["new"]["instance_id"]


def test_instance_failure_is_detected_by_alarms_and_recovered_once(emulator: Emulator):
    report = recover(emulator, "instance-failure")
    assert report["outcome"] == "recovered", report
    # Two alarms fired (status check and heartbeat): one failover, one replacement.
    assert len(replacements(emulator)) == 1
    alarms = emulator.boto3_client("cloudwatch").describe_alarms(AlarmNamePrefix="swr-demo-StatusCheck")["MetricAlarms"]
    for alarm in alarms:
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["InstanceId"] == report["new"]["instance_id"], "alarm still watches the old instance"


def test_az_outage_moves_the_workload_out_of_the_failed_az(emulator: Emulator):
    report = recover(emulator, "az-outage")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] == SECOND_AZ
    assert emulator.instance(report["old"]["instance_id"]).isolated


def test_no_capacity_in_the_first_choice_az_moves_on_to_the_next(emulator: Emulator):
    second_subnet = emulator.world.subnets[SECOND_AZ]  # type: ignore[union-attr]
    emulator.faults.add("ec2", "RunInstances", NO_CAPACITY, where=lambda p: p.get("SubnetId") == second_subnet)
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] == THIRD_AZ
    launched = [
        json.loads(details["output"])
        for e in history(emulator, report["execution_arn"])
        if (details := e.get("lambdaFunctionSucceededEventDetails") or e.get("taskSucceededEventDetails"))
        and '"skipped"' in details.get("output", "")
    ]
    replacement = launched[0]
    assert replacement["skipped"] == [f"{SECOND_AZ}/m6i.large: InsufficientInstanceCapacity"]


def test_throttling_is_retried_with_backoff(emulator: Emulator):
    rule = emulator.faults.add("ec2", "RunInstances", THROTTLING, count=4)
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert rule.hits == 4
    # The SDK retries once (standard mode, 2 attempts, as on Lambda); what it cannot absorb the
    # ASL's Retry does, and the history shows it.
    assert task_errors(emulator, report["execution_arn"]) == ["AwsThrottled", "AwsThrottled"]
    assert len(replacements(emulator)) == 1


def test_a_replacement_that_never_becomes_healthy_is_rolled_back_and_the_next_az_tried(emulator: Emulator):
    emulator.simulation.unhealthy_azs.add(SECOND_AZ)  # type: ignore[union-attr]
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] == THIRD_AZ
    assert len(replacements(emulator)) == 2
    rolled_back = next(emulator.instance(i) for i in replacements(emulator) if i != report["new"]["instance_id"])
    assert rolled_back.az == SECOND_AZ and rolled_back.isolated
    assert rolled_back.state in ("shutting-down", "terminated")
    assert "RollbackReplacement" in entered(emulator, report["execution_arn"])
    assert emulator.store.require("demo").generation == 2


def test_a_replacement_whose_boot_gate_cannot_mount_efs_is_rolled_back(emulator: Emulator):
    emulator.simulation.efs_unreachable_azs.add(SECOND_AZ)  # type: ignore[union-attr]
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] == THIRD_AZ
    failed = next(emulator.instance(i) for i in replacements(emulator) if i != report["new"]["instance_id"])
    assert failed.az == SECOND_AZ and failed.gate_outcome == "MOUNT_FAILED"
    assert not failed.workload_up and failed.state in ("shutting-down", "terminated")
    assert task_errors(emulator, report["execution_arn"]) == ["BootGateFailed"]


def test_a_replacement_that_never_reports_from_its_boot_gate_times_out_and_is_rolled_back(emulator: Emulator):
    emulator.simulation.silent_gate_azs.add(SECOND_AZ)  # type: ignore[union-attr]
    report = recover(emulator, "rms-fault")
    assert report["outcome"] == "recovered", report
    assert report["new"]["az"] == THIRD_AZ
    silent = next(emulator.instance(i) for i in replacements(emulator) if i != report["new"]["instance_id"])
    assert silent.az == SECOND_AZ and not silent.workload_up and silent.isolated
    timeline = history(emulator, report["execution_arn"])
    assert any(e["type"] == "TaskTimedOut" for e in timeline), "the permit wait did not time out"


def test_when_no_az_is_left_the_failover_ends_failed_and_a_drill_recovers_after_the_fix(emulator: Emulator):
    emulator.simulation.unhealthy_azs.update({SECOND_AZ, THIRD_AZ})  # type: ignore[union-attr]
    emulator.inject("rms-fault")
    arn = emulator.wait_for_failover()
    described = finished(emulator, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "AlternateZonesExhausted"
    assert "ReplacementUnhealthy" in described["cause"] and "no AZ is left" in described["cause"]
    record = emulator.store.require("demo")
    assert record.state is AppState.FAILED and "AlternateZonesExhausted" in (record.failure_cause or "")
    # The replacement it gave up on is terminated: nothing serves once EC2 has shut it down.
    assert emulator.wait_until(lambda: emulator.serving_instances() == [], timeout=300)
    assert_safe(emulator)

    # Automatic triggers leave a FAILED application alone; once the cause is fixed, a drill
    # brings it back.
    rms_fault = {
        "id": "late-rms-fault",
        "source": "swr.rms.demo",
        "detail-type": "RMS Fault",
        "detail": {"app": "demo", "instance_id": record.current_instance_id, "user_application": "app_demo"},
    }
    ignored = output(finished(emulator, start(emulator, rms_fault, "late-rms-fault")))
    assert ignored["decision"] == "ignore" and "operator action required" in ignored["reason"]
    emulator.simulation.unhealthy_azs.clear()  # type: ignore[union-attr]
    drill = {"kind": "drill", "app": "demo", "reason": "cause fixed"}
    recovered = finished(emulator, start(emulator, drill, "after-fix"))
    assert output(recovered)["outcome"] == "recovered", recovered
    assert emulator.store.require("demo").state is AppState.NORMAL
    assert_safe(emulator)


def test_when_the_fence_cannot_be_proven_the_replacement_never_gets_a_permit(emulator: Emulator):
    fence_cannot_be_proven(emulator)
    emulator.inject("rms-fault")
    arn = emulator.wait_for_failover()
    described = finished(emulator, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "FenceNotConfirmed"
    old = emulator.primary_instance_id
    assert f"{old} (running) is not cut off after 60 s" in described["cause"]
    assert "network ACL" in described["cause"] and "lets 10.20.0." in described["cause"]
    assert "terminated unpermitted replacement" in described["cause"]
    assert f"{old} (running, not proven cut off) keeps its fence" in described["cause"]
    assert "IssuePermit" not in entered(emulator, arn)
    record = emulator.store.require("demo")
    assert record.permit is None and record.state is AppState.FAILED
    for instance_id in replacements(emulator):
        replacement = emulator.instance(instance_id)
        assert not replacement.workload_up and not replacement.mounted
    assert_safe(emulator)


def test_the_same_trigger_delivered_three_times_gives_one_replacement(emulator: Emulator):
    event = {
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "source": "swr.rms.demo",
        "detail-type": "RMS Fault",
        "detail": {"app": "demo", "instance_id": emulator.primary_instance_id, "user_application": "app_demo"},
    }
    emulator.simulation.instances[emulator.primary_instance_id].workload_up = False  # type: ignore[union-attr]
    arns = [start(emulator, event, f"delivery-{n}") for n in range(3)]
    outcomes = [finished(emulator, arn) for arn in arns]
    assert sorted(d["status"] for d in outcomes) == ["SUCCEEDED"] * 3
    decisions = sorted(output(d).get("decision", "recovered") for d in outcomes)
    assert decisions.count("recovered") == 1, decisions
    assert len(replacements(emulator)) == 1
    # A late fourth delivery, after the failover, is recognised as a duplicate.
    late = finished(emulator, start(emulator, event, "delivery-late"))
    assert output(late)["decision"] == "ignore" and "duplicate" in output(late)["reason"]
    assert_safe(emulator)


def test_two_different_triggers_at_once_give_one_failover(emulator: Emulator):
    emulator.inject("rms-fault")
    emulator.simulation.set_alarm("swr-demo-heartbeat-missing", "ALARM", "no heartbeat")  # type: ignore[union-attr]
    emulator.wait_for_failover()
    assert_safe(emulator)
    assert len(replacements(emulator)) == 1
    decisions = [
        output(finished(emulator, e["executionArn"])).get("decision", "failover") for e in emulator.executions()
    ]
    assert decisions.count("failover") == 1, decisions


def test_maintenance_mode_suspends_automatic_failover(emulator: Emulator):
    record = emulator.store.require("demo")
    record.maintenance = Maintenance(since=datetime.now(UTC), by="ops@example", reason="kernel patching")
    emulator.store.save(record)
    described = finished(emulator, start(emulator, {"kind": "drill", "app": "demo"}, "drill-in-maintenance"))
    assert described["status"] == "SUCCEEDED"
    assert output(described)["decision"] == "ignore"
    assert "maintenance mode" in output(described)["reason"]
    assert "by ops@example: kernel patching" in output(described)["reason"]
    assert replacements(emulator) == []
    assert_safe(emulator)


def test_an_alarm_back_to_ok_is_ignored_with_the_reason(emulator: Emulator):
    event = {
        "id": "alarm-ok-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": "swr-demo-heartbeat-missing",
            "state": {"value": "OK", "reason": "heartbeat back"},
            "configuration": {"metrics": [{"metricStat": {"metric": {"dimensions": {"App": "demo"}}}}]},
        },
    }
    described = finished(emulator, start(emulator, event, "alarm-ok"))
    assert output(described)["decision"] == "ignore" and "not a fault" in output(described)["reason"]
    assert replacements(emulator) == []
    assert_safe(emulator)


def test_an_unknown_application_is_ignored_with_the_reason(emulator: Emulator):
    described = finished(emulator, start(emulator, {"kind": "drill", "app": "payroll"}, "drill-unknown"))
    assert output(described)["decision"] == "ignore"
    assert "'payroll' is not registered" in output(described)["reason"]
    assert_safe(emulator)


def test_a_malformed_event_fails_admit_with_a_clear_cause_and_changes_nothing(emulator: Emulator):
    before = emulator.store.require("demo")
    described = finished(emulator, start(emulator, {"source": "aws.cloudwatch", "detail": "?"}, "malformed"))
    assert described["status"] == "FAILED"
    assert described["error"] == "MalformedTrigger"
    assert "neither an EventBridge event" in described["cause"]
    assert emulator.store.require("demo") == before
    assert replacements(emulator) == []
    assert_safe(emulator)


def test_a_failover_that_fails_after_the_permit_names_the_replacement_and_a_resume_registers_it(emulator: Emulator):
    from swr.ops import resume

    # swr's role lost elasticloadbalancing:RegisterTargets: the step after the permit fails.
    denied = ("AccessDenied", "User is not authorized to perform: elasticloadbalancing:RegisterTargets", 403)
    rule = emulator.faults.add("elbv2", "RegisterTargets", denied)
    emulator.inject("rms-fault")

    failed = emulator.boto3_client("stepfunctions").describe_execution(executionArn=emulator.wait_for_failover())
    assert failed["status"] == "FAILED" and "RegisterTargets" in failed["cause"]
    (replacement,) = replacements(emulator)
    # It holds the permit and runs the workload on the shared data: named, not hidden, not killed.
    record = emulator.store.require("demo")
    assert record.state is AppState.FAILED and record.lease is None
    assert (record.current_instance_id, record.current_az) == (replacement, emulator.instance(replacement).az)
    assert f"{replacement} holds the start permit" in failed["cause"]
    assert emulator.serving_instances() == [replacement] and emulator.sim.violations == []

    rule.remaining = 0  # the operator gave the role its permission back
    resumed = resume.resume(emulator.boto3_client, emulator.stack, "demo", "operator")  # type: ignore[arg-type]

    outcome = output(finished(emulator, resumed.execution_arn))
    assert outcome["outcome"] == "recovered" and outcome["new_instance_id"] == replacement
    assert replacements(emulator) == [replacement]
    assert_safe(emulator)


def test_a_replacement_whose_failover_stopped_and_was_never_resumed_powers_itself_off(emulator: Emulator):
    arn = start(emulator, {"kind": "drill", "app": "demo", "reason": "stopped before the permit"}, "stopped")
    assert emulator.wait_until(lambda: "WaitForReplacementBoot" in entered(emulator, arn), timeout=600)
    emulator.boto3_client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped")
    (replacement,) = replacements(emulator)
    booted = emulator.clock.now()

    # Nobody resumes it: after the boot gate's permit wait (900 s) it powers itself off,
    # having mounted nothing and started nothing.
    assert emulator.wait_until(lambda: emulator.instance(replacement).state == "stopped", timeout=1800)
    assert emulator.clock.now() - booted >= 900
    outcome = next(w for t, w in emulator.sim.events if w.startswith(f"boot gate on {replacement}: "))
    assert outcome == f"boot gate on {replacement}: NO_PERMIT"
    assert not emulator.instance(replacement).workload_up and emulator.sim.violations == []


def test_when_the_clean_up_itself_fails_on_call_is_told_and_the_next_trigger_continues_the_failover(
    emulator: Emulator,
):
    from tests.scenarios.test_notifications_and_metrics import messages, subscribe_a_queue

    mailbox = subscribe_a_queue(emulator)
    emulator.simulation.unhealthy_azs.update({SECOND_AZ, THIRD_AZ})  # type: ignore[union-attr]
    crash = ("ServiceException", "The Lambda service encountered an internal error.", 500)
    broken = emulator.faults.add(
        "lambda", "Invoke", crash, where=lambda params: str(params["FunctionName"]).endswith("-fail-failover")
    )
    emulator.inject("rms-fault")

    failed = finished(emulator, emulator.wait_for_failover())
    assert (failed["status"], failed["error"]) == ("FAILED", "AlternateZonesExhausted")
    assert "FailoverFailedUncleanly" in entered(emulator, failed["executionArn"])
    # Without Lambda, the workflow said so; the record still names the ended execution's lease.
    told = [m for m in messages(emulator, mailbox, 2) if " FAILED" in m.splitlines()[0]]
    assert len(told) == 1 and "the clean-up failed" in told[0] and "Lambda.ServiceException" in told[0]
    record = emulator.store.require("demo")
    assert record.state is AppState.SWITCHING and record.lease_held_by(failed["executionArn"])

    broken.remaining = 0  # Lambda is back, and the AZs are fixed
    emulator.simulation.unhealthy_azs.clear()  # type: ignore[union-attr]
    continued = finished(emulator, start(emulator, {"kind": "drill", "app": "demo", "reason": "after"}, "after"))

    assert output(continued)["outcome"] == "recovered", continued
    assert_safe(emulator)
