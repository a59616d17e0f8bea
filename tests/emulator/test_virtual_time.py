"""Virtual time: simulated seconds pass only when every actor waits, and then jump to the next
deadline, so what happens depends on the seed alone, never on how busy the machine is.

The scheduler's own rules first, then canaries for the bridge's time patches (moto's interpreter
and its clocks run on the scheduler), then the promise itself: the same scenario twice, at once,
next to a CPU hog, gives the same histories."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from swr.emulator import Emulator, moto_bridge
from swr.emulator.clock import VIRTUAL_EPOCH
from swr.emulator.moto_bridge import ApiFault, BridgeHooks
from swr.emulator.scheduler import Scheduler, SchedulerClosed, VirtualEvent

REGION = "ap-northeast-1"


# --- the scheduler -----------------------------------------------------------------------------
@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    scheduler = Scheduler(start=1000.0)
    scheduler.adopt("driver")
    try:
        yield scheduler
    finally:
        scheduler.close()
        scheduler.leave()


def test_sleepers_wake_in_deadline_order_and_time_jumps_to_each_deadline(scheduler: Scheduler) -> None:
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, seconds: float) -> None:
        scheduler.sleep(seconds)
        woke.append((name, scheduler.now()))

    for name, seconds in (("slow", 300.0), ("fast", 5.0), ("middle", 60.0)):
        scheduler.thread(sleeper, name, (name, seconds)).start()
    scheduler.sleep(1000.0)  # the driver waits too: only then does time move

    assert woke == [("fast", 1005.0), ("middle", 1060.0), ("slow", 1300.0)]
    assert scheduler.now() == 2000.0


def test_a_set_event_wakes_its_waiter_without_time_passing(scheduler: Scheduler) -> None:
    event, seen = VirtualEvent(scheduler), []

    def waiter() -> None:
        seen.append((event.wait(timeout=600.0), scheduler.now()))

    thread = scheduler.thread(waiter, "waiter")
    thread.start()
    scheduler.sleep(10.0)
    event.set()
    thread.join()

    assert seen == [(True, 1010.0)]


def test_a_wait_that_times_out_ends_exactly_at_its_deadline(scheduler: Scheduler) -> None:
    assert scheduler.wait_for(lambda: False, timeout=90.0, poll=7.0) is False
    assert scheduler.now() == 1090.0


def test_waiters_are_released_with_scheduler_closed_when_the_emulator_stops(scheduler: Scheduler) -> None:
    outcome: list[str] = []

    def forever() -> None:
        try:
            VirtualEvent(scheduler).wait()
        except SchedulerClosed:
            outcome.append("released")
            raise

    thread = scheduler.thread(forever, "forever")
    thread.start()
    scheduler.sleep(1.0)
    scheduler.close()
    thread.join(timeout=5.0)

    assert outcome == ["released"] and not thread.is_alive()


# --- the bridge's time patches (canaries: they reach into moto's interpreter) -------------------
_throttled: list[str] = []  # actions the fault hook answers with throttling, once each


def _throttle_once(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
    if action in _throttled:
        _throttled.remove(action)
        return ApiFault("RequestLimitExceeded", "Request limit exceeded.", 400)
    return None


@pytest.fixture
def virtual_moto() -> Iterator[Scheduler]:
    scheduler = Scheduler(start=VIRTUAL_EPOCH)
    scheduler.adopt("driver")
    _throttled.clear()
    hooks = BridgeHooks(warp=lambda: 0.0, scheduler=scheduler, fault_for=_throttle_once)
    moto_bridge.start(hooks, region=REGION, seed=3)
    try:
        yield scheduler
    finally:
        scheduler.close()
        scheduler.leave()
        moto_bridge.stop()


def _run(scheduler: Scheduler, definition: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="virtual", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="run-1", input="{}")["executionArn"]
    finished = scheduler.wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 86400.0)
    assert finished, scheduler.describe()
    return sfn.describe_execution(executionArn=arn), sfn.get_execution_history(executionArn=arn)["events"]


def test_a_wait_state_takes_exactly_its_declared_seconds_of_virtual_time(virtual_moto: Scheduler) -> None:
    described, events = _run(
        virtual_moto, {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    )

    assert described["status"] == "SUCCEEDED"
    assert described["startDate"] == datetime.fromtimestamp(VIRTUAL_EPOCH, tz=UTC)  # moto's clock is virtual
    entered = next(e["timestamp"] for e in events if e["type"] == "WaitStateEntered")
    exited = next(e["timestamp"] for e in events if e["type"] == "WaitStateExited")
    assert (exited - entered).total_seconds() == 3600.0


def test_retries_are_spaced_by_their_declared_interval_and_backoff(virtual_moto: Scheduler) -> None:
    retry = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "BackoffRate": 2.0, "MaxAttempts": 2}
    described, events = _run(
        virtual_moto,
        {
            "StartAt": "Flaky",
            "States": {
                "Flaky": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:ec2:describeInstances",
                    "Parameters": {"InstanceIds": ["i-00000000000000000"]},  # InvalidInstanceID.NotFound
                    "Retry": [retry],
                    "End": True,
                }
            },
        },
    )

    assert described["status"] == "FAILED"
    failed = [e["timestamp"] for e in events if e["type"] == "TaskFailed"]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(failed)] == [30.0, 60.0]


def test_moto_stamps_resources_with_the_virtual_clock(virtual_moto: Scheduler) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    virtual_moto.sleep(42.0)
    image = "ami-12c6146b"  # moto validates AMIs only when asked to

    launched = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]

    assert launched["LaunchTime"] == datetime.fromtimestamp(VIRTUAL_EPOCH + 42.0, tz=UTC)


def test_the_sdks_own_retry_backs_off_in_virtual_time(virtual_moto: Scheduler) -> None:
    # The handlers' clients retry in botocore's standard mode, as on Lambda; the backoff between
    # attempts is simulated time (and seeded jitter), never a real sleep.
    ec2 = boto3.client("ec2", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
    _throttled.append("DescribeVpcs")
    before = virtual_moto.now()

    ec2.describe_vpcs()  # throttled once, then answered

    assert _throttled == [] and 0.0 < virtual_moto.now() - before <= 20.0


# --- the promise: a seed gives the same histories on any machine at any load --------------------
_ONE_FAILOVER = textwrap.dedent(
    """
    import json, logging
    from swr.emulator import Emulator
    from swr.timeline import fetch_history
    logging.disable(logging.CRITICAL)
    with Emulator.for_scenario("rms-fault", seed=11) as emu:
        emu.inject("rms-fault")
        emu.wait_for_failover()
        emu.wait_until_settled()
        sfn = emu.boto3_client("stepfunctions")
        histories = {
            e["name"]: [
                {k: v for k, v in event.items() if k not in ("ResponseMetadata",)}
                for event in fetch_history(sfn, e["executionArn"])
            ]
            for e in emu.executions()
        }
        print(json.dumps({"histories": histories, "world": emu.sim.events}, default=str, sort_keys=True))
    """
)
# Niced: it takes whatever CPU the runs leave, so they are always competing for it, without
# taking a core from the rest of the suite.
_HOG = "import os, time\nos.nice(19)\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass"


def test_the_same_seed_gives_the_same_histories_twice_at_once_next_to_a_cpu_hog() -> None:
    hog = subprocess.Popen([sys.executable, "-c", _HOG])
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", _ONE_FAILOVER],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": str(n)},  # sets and dicts iterate differently
            )
            for n in (1, 2)
        ]
        outputs = [run.communicate(timeout=600) for run in runs]
    finally:
        hog.kill()
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-2000:]
    first, second = (json.loads(out) for out, _ in outputs)

    assert first["histories"] and first["world"]
    assert first == second


def test_a_replacement_boots_its_os_after_it_is_running_and_only_then_starts_the_workload() -> None:
    # EC2: an instance is "running" when its OS starts booting; systemd runs the boot gate only
    # after the boot (latency profile os_boot), then the gate mounts EFS and RMS starts the
    # application. In virtual time the figures come out exactly.
    with Emulator.for_scenario("rms-fault") as emu:
        latency = emu.latency
        emu.inject("rms-fault")
        emu.wait_for_failover()
        replacement = emu.store.require(emu.app).current_instance_id

        def at(suffix: str) -> float:
            return next(t for t, what in emu.sim.events if what.startswith(replacement) and what.endswith(suffix))

        running = at("pending -> running")
        started = next(t for t, what in emu.sim.events if what == f"boot gate on {replacement}: STARTED")

    assert running - at("launched in ap-northeast-1c (generation 1)") == latency.pending_to_running
    assert started - running == latency.os_boot + latency.efs_mount + latency.workload_start


def test_a_run_starts_with_step_clients_whose_retry_quota_is_full_whatever_the_last_run_spent() -> None:
    # The steps' clients are kept from run to run (fast worlds); a standard-mode client's retry
    # quota carries over from call to call, so a kept one must start as a new one would.
    from botocore.retries.quota import RetryQuota

    from handlers.core import aws

    def quota(service: str) -> RetryQuota:
        made = aws.client(service)
        handlers = made.meta.events._emitter._handlers.prefix_search(f"after-call.{service}")
        return next(h.__self__._quota for h in handlers if hasattr(h.__self__, "_quota"))

    with Emulator.for_scenario("rms-fault"):
        spent = quota("dynamodb")
        assert spent.acquire(RetryQuota.INITIAL_CAPACITY - 5)
        kept = aws.client("dynamodb")
    with Emulator.for_scenario("rms-fault"):
        assert aws.client("dynamodb") is kept
        assert quota("dynamodb").available_capacity == RetryQuota.INITIAL_CAPACITY
