"""The heartbeat as systemd runs it on the instance: data points while RMS says Online, none
otherwise, exactly where the stack's heartbeat-missing alarm looks for them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rms_hooks import heartbeat
from rms_hooks.config import HEARTBEAT_ALARM_PERIOD_SECONDS, MAX_METRIC_INTERVAL_SECONDS
from swr.ops import onboarding
from tests.helpers.hooks import Served, run_hook, write_config


class Rms:
    """A stand-in for ``hvassert -s app_demo Online``: exit 0 while the state file says Online;
    every check is counted, so tests wait for checks, not for seconds."""

    def __init__(self, directory: Path) -> None:
        self.state = directory / "rms-state"
        self.checks = directory / "rms-checks"
        self.state.write_text("Online")
        self.command = [
            "sh",
            "-c",
            f'echo "$1" >> {self.checks}; test "$(cat {self.state})" = Online',
            "hvassert",
            "{user_application}",
        ]

    def count(self) -> int:
        return len(self.checks.read_text().splitlines()) if self.checks.exists() else 0

    def wait_for_checks(self, more: int, process: subprocess.Popen[str] | None = None) -> None:
        target = self.count() + more
        deadline = time.monotonic() + 60
        while self.count() < target:
            assert process is None or process.poll() is None, "the heartbeat died"
            assert time.monotonic() < deadline, f"the status command ran {self.count()} times, not {target}"
            time.sleep(0.05)


def configure(served: Served, rms: Rms, interval: float = 1) -> None:
    write_config(
        served.config,
        app=served.emu.app,
        table_name=served.emu.table_name,
        region=served.emu.region,
        user_application="app_demo",
        metric_namespace=served.emu.stack.MetricNamespace if served.emu.stack else "swr",
        metric_interval_seconds=interval,
        status_command=rms.command,
    )


def heartbeats(served: Served) -> int:
    """Samples of the metric the heartbeat-missing alarm watches (its namespace, metric, dimension)."""
    cloudwatch = served.emu.boto3_client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[served.emu.alarm(onboarding.HEARTBEAT_ALARM_SUFFIX)])[
        "MetricAlarms"
    ]
    now = datetime.now(tz=UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm["Dimensions"],
        StartTime=now - timedelta(days=1),
        EndTime=now + timedelta(days=1),
        Period=86400,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return int(sum(point["SampleCount"] for point in points))


def start_loop(served: Served, *, api_down: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rms_hooks.heartbeat", "--config", str(served.config)],
        env=served.env(api_down=api_down),
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)  # what systemctl stop sends
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def test_the_heartbeat_publishes_only_while_rms_reports_online(shared: Served, tmp_path: Path) -> None:
    rms = Rms(tmp_path)
    configure(shared, rms)
    before = heartbeats(shared)

    online = run_hook("heartbeat", "--once", "--config", str(shared.config), env=shared.env())
    assert online.returncode == heartbeat.Beat.PUBLISHED == 0, online.stderr
    assert heartbeats(shared) == before + 1
    assert "swr-heartbeat: publishing app=demo user_application=app_demo" in online.stderr
    assert rms.checks.read_text().split() == ["app_demo"], "the status command names the userApplication"

    rms.state.write_text("Faulted")
    faulted = run_hook("heartbeat", "--once", "--config", str(shared.config), env=shared.env())
    assert faulted.returncode == heartbeat.Beat.NOT_ONLINE == 4
    assert "swr-heartbeat: silent" in faulted.stderr and "exited 1" in faulted.stderr
    assert heartbeats(shared) == before + 1


def test_the_running_heartbeat_stops_and_resumes_with_rms_and_says_why(shared: Served, tmp_path: Path) -> None:
    rms = Rms(tmp_path)
    configure(shared, rms)
    process = start_loop(shared)
    try:
        rms.wait_for_checks(3, process)
        while_online = heartbeats(shared)
        assert while_online >= 2

        rms.state.write_text("Offline")
        rms.wait_for_checks(2, process)  # one may have been publishing as the state changed
        silent_from = heartbeats(shared)
        rms.wait_for_checks(3, process)
        assert heartbeats(shared) == silent_from, "no heartbeat while RMS is not Online"

        rms.state.write_text("Online")
        rms.wait_for_checks(3, process)
        assert heartbeats(shared) > silent_from
    finally:
        log = stop(process)
    decisions = [line.split()[2] for line in log.splitlines() if line.split()[1:2] == ["swr-heartbeat:"]]
    assert decisions == ["started", "publishing", "silent", "publishing", "stopped"], log


def test_the_heartbeat_survives_an_unreachable_api(shared: Served, tmp_path: Path) -> None:
    rms = Rms(tmp_path)
    configure(shared, rms)
    before = heartbeats(shared)
    process = start_loop(shared, api_down=True)
    try:
        rms.wait_for_checks(4, process)
        assert process.poll() is None, "the heartbeat must keep looping through API errors"
    finally:
        log = stop(process)
    assert log.count("CloudWatch refused the heartbeat") == 1, "one line when it goes silent, not one per beat"
    assert heartbeats(shared) == before


def test_the_heartbeat_matches_the_alarm_that_watches_it(shared: Served) -> None:
    cloudwatch = shared.emu.boto3_client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[shared.emu.alarm(onboarding.HEARTBEAT_ALARM_SUFFIX)])[
        "MetricAlarms"
    ]
    assert alarm["MetricName"] == heartbeat.HEARTBEAT_METRIC == onboarding.HEARTBEAT_METRIC
    assert alarm["Dimensions"] == [{"Name": heartbeat.APP_DIMENSION, "Value": shared.emu.app}]
    assert alarm["Namespace"] == (shared.emu.stack.MetricNamespace if shared.emu.stack else "swr")
    assert alarm["Period"] == HEARTBEAT_ALARM_PERIOD_SECONDS and alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "breaching"
    # Two beats at least in every period the alarm evaluates: one lost call is not a failover.
    assert alarm["Period"] >= MAX_METRIC_INTERVAL_SECONDS * 2


def test_an_interval_the_alarm_would_miss_is_refused(shared: Served, tmp_path: Path) -> None:
    rms = Rms(tmp_path)
    configure(shared, rms, interval=45)

    done = run_hook("heartbeat", "--once", "--config", str(shared.config), env=shared.env())

    assert done.returncode == heartbeat.Beat.BAD_CONFIG == 3
    assert "metric_interval_seconds must be a number of seconds from 1 to 30" in done.stderr
    assert rms.count() == 0
