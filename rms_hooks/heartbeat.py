"""The RMS heartbeat: while RMS reports the userApplication Online, publish ``Heartbeat`` = 1
every ``metric_interval_seconds``; publish nothing otherwise.

The stack's heartbeat-missing alarm (``swr.ops.onboarding.create_alarms``: namespace
``metric_namespace``, metric ``Heartbeat``, dimension ``App``, SampleCount < 1 over one 60 s
period, missing data breaching) goes to ALARM after a period without a sample, so a hung OS,
a dead RMS, a stopped heartbeat and an application that is no longer Online all look alike:
no heartbeat. The interval is at most 30 s, so one lost call never empties a period.

"Online" is the exit status of ``status_command``: 0 is Online, anything else (or a timeout)
is not. The default, ``hvassert -s {user_application} Online``, asks PRIMECLUSTER RMS whether
the userApplication is in state Online.

The loop never dies of an API error: it logs and keeps going (systemd restarts it anyway,
``Restart=always``). It logs one line when it starts and when it stops publishing, with why.

Usage: ``swr-heartbeat [--config PATH] [--once]``
Exit codes: 0 stopped by a signal, or ``--once`` published; 2 bad usage; 3 bad configuration;
``--once`` only: 4 not Online (nothing published), 5 Online but the publish failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import Any

from rms_hooks.config import ConfigError, HooksConfig, configure_logging, load_hooks_config

HEARTBEAT_METRIC = "Heartbeat"  # swr.ops.onboarding.HEARTBEAT_METRIC, the alarm's metric
APP_DIMENSION = "App"

log = logging.getLogger("swr-hooks.heartbeat")

# argv, timeout seconds -> exit status (None: it did not finish in time) and its last output.
StatusRunner = Callable[[Sequence[str], float], tuple[int | None, str]]


class Beat(IntEnum):
    PUBLISHED = 0
    BAD_USAGE = 2
    BAD_CONFIG = 3
    NOT_ONLINE = 4
    PUBLISH_FAILED = 5


def run_status(argv: Sequence[str], timeout: float) -> tuple[int | None, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout:g}s"
    except OSError as error:  # not installed, not executable
        return 127, str(error)
    output = (done.stdout + done.stderr).strip()
    return done.returncode, output[-300:]


@dataclass(frozen=True)
class Status:
    online: bool
    why: str


class Heartbeat:
    def __init__(
        self,
        config: HooksConfig,
        cloudwatch_client: Any,
        *,
        run: StatusRunner = run_status,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.cloudwatch = cloudwatch_client
        self.argv = config.status_argv()
        self.run_status, self.sleep, self.clock = run, sleep, clock
        self.publishing: bool | None = None  # unknown until the first beat
        self.stopped = False

    def status(self) -> Status:
        # Bounded by the interval: a status command that hangs is no Online answer.
        code, output = self.run_status(self.argv, max(1.0, self.config.metric_interval_seconds * 0.75))
        command = " ".join(self.argv)
        if code == 0:
            return Status(True, f"{command} exited 0")
        result = "did not finish" if code is None else f"exited {code}"
        return Status(False, f"{command} {result}: {output or 'no output'}")

    def beat(self) -> Beat:
        """One check, and one data point when Online."""
        status = self.status()
        if not status.online:
            self._transition(False, f"not Online: {status.why}")
            return Beat.NOT_ONLINE
        try:
            self.cloudwatch.put_metric_data(
                Namespace=self.config.metric_namespace,
                MetricData=[
                    {
                        "MetricName": HEARTBEAT_METRIC,
                        "Dimensions": [{"Name": APP_DIMENSION, "Value": self.config.app}],
                        "Value": 1.0,
                        "Unit": "Count",
                    }
                ],
            )
        except Exception as error:  # throttling, network, permissions: the next beat tries again
            self._transition(False, f"Online, but CloudWatch refused the heartbeat: {type(error).__name__}: {error}")
            return Beat.PUBLISH_FAILED
        self._transition(True, f"Online: {status.why}")
        return Beat.PUBLISHED

    def run_forever(self) -> None:
        interval = self.config.metric_interval_seconds
        self._log(
            logging.INFO,
            "started",
            f"every {interval:g}s to {self.config.metric_namespace}/{HEARTBEAT_METRIC} while {' '.join(self.argv)}"
            " exits 0",
        )
        next_at = self.clock()
        while not self.stopped:
            try:
                self.beat()
            except Exception as error:  # never die of one bad beat; the alarm watches the gaps
                self._transition(False, f"the heartbeat failed: {type(error).__name__}: {error}")
            next_at += interval
            now = self.clock()
            if next_at < now:  # a slow status command: keep the rhythm, do not burst
                next_at = now
            self.sleep(next_at - now)

    def _transition(self, publishing: bool, why: str) -> None:
        # One line per change, not one per beat (the journal would drown in them).
        if publishing != self.publishing:
            self._log(logging.INFO if publishing else logging.WARNING, "publishing" if publishing else "silent", why)
        self.publishing = publishing

    def _log(self, level: int, decision: str, reason: str) -> None:
        log.log(
            level,
            "swr-heartbeat: %s app=%s user_application=%s reason=%s",
            decision,
            self.config.app,
            self.config.user_application or "-",
            json.dumps(reason, ensure_ascii=False),
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr-heartbeat",
        description="Publish the swr Heartbeat metric while RMS reports the application Online.",
        epilog="--once exit codes: 0 published, 4 not Online, 5 publish failed; 2 bad usage, 3 bad configuration",
    )
    parser.add_argument("--config", type=Path, default=None, help="JSON configuration (default /etc/swr/hooks.json)")
    parser.add_argument("--once", action="store_true", help="one check (and one data point when Online), then exit")
    return parser


def _cloudwatch_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=5)
    return boto3.client("cloudwatch", region_name=region, config=config)


def _region(config: HooksConfig) -> str:
    if config.region:
        return config.region
    from rms_hooks.imds import ImdsClient, ImdsError

    try:
        return ImdsClient().get("meta-data/placement/region")
    except ImdsError as error:
        raise ConfigError(f"no region configured and IMDSv2 cannot tell it: {error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else Beat.BAD_USAGE
    configure_logging()
    try:
        config = load_hooks_config(args.config)
        configure_logging(config.log_level)
        heartbeat = Heartbeat(config, _cloudwatch_client(_region(config)))
    except ConfigError as error:
        log.error("swr-heartbeat: bad-config reason=%s", json.dumps(str(error)))
        return Beat.BAD_CONFIG
    if args.once:
        return heartbeat.beat()

    def stop(signum: int, frame: FrameType | None) -> None:
        heartbeat.stopped = True
        raise KeyboardInterrupt  # wake the sleep; systemd's stop is not a failure

    signal.signal(signal.SIGTERM, stop)
    try:
        heartbeat.run_forever()
    except KeyboardInterrupt:
        log.info("swr-heartbeat: stopped app=%s", config.app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
