"""The RMS fault notifier: what RMS runs when a userApplication goes Faulted (its
FaultScript), and what any other HA manager can call. It publishes the ``swr.rms.<app>`` /
``RMS Fault`` event the stack's rule turns into a failover.

No fault is lost: publishing is retried with exponential backoff and jitter for at most
``publish_timeout_seconds``; a fault that still cannot be published is written to the local
spool (``spool_path``), and every later run, and the ``swr-fault-spool-flush`` timer, first
publishes the spool in order, removing only what EventBridge accepted. A new fault is never
published ahead of older spooled ones. The spooled event keeps its original ``occurred_at``.

Re-delivery is harmless: EventBridge gives a re-published fault a new event id, so the
workflow cannot recognise it by id, but it ignores a fault of an instance that is no longer
the application's current instance (the usual case for a fault spooled before a failover) and
defers one that arrives while a failover is in progress. Each fault carries a ``fault_id``
(the same on every attempt) so the two deliveries can be matched in the logs.

Usage:
  swr-notify-fault [--config PATH] [--app APP] [--user-application NAME] [--reason TEXT]
                   [--instance-id ID] [--occurred-at ISO-8601]
  swr-notify-fault --flush [--config PATH]

Under RMS, ``--user-application`` defaults to ``$HV_APPLICATION`` and ``--reason`` is built
from RMS's script environment; elsewhere both are required.

Exit codes:
  0  published (and the spool, if any, delivered before it); --flush: the spool is empty
  1  unexpected error (a bug; see the traceback)
  2  bad usage: missing or invalid arguments; nothing published or spooled
  3  configuration missing or invalid, or this instance's identity unreadable; nothing done
  4  spooled: not delivered yet, kept in the spool for the next run or the timer;
     --flush: faults remain in the spool
  5  LOST: neither published nor spooled (the spool could not be written); act on the log
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from rms_hooks.config import ConfigError, HooksConfig, configure_logging, load_hooks_config
from rms_hooks.spool import Spool, SpoolError

# One source per application: the instance role may publish only its own (an ``events:source``
# condition), and only that application's rule matches it, so one application's instances
# cannot fail another over.
SOURCE_PREFIX = "swr.rms."


def source_of(app: str) -> str:
    return SOURCE_PREFIX + app


DETAIL_TYPE = "RMS Fault"

log = logging.getLogger("swr-hooks.notify-fault")

# EventBridge's answers that a later attempt cannot change (an operator has to): do not
# spend the retry budget on them, spool at once.
PERMANENT_ERRORS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ValidationException",
        "InvalidArgument",
        "MalformedDetail",
        "ResourceNotFoundException",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)


class Outcome(IntEnum):
    PUBLISHED = 0
    UNEXPECTED = 1
    BAD_USAGE = 2
    BAD_CONFIG = 3
    SPOOLED = 4
    LOST = 5


# --- the event ---------------------------------------------------------------------------
def fault_entry(
    app: str,
    instance_id: str,
    user_application: str,
    reason: str,
    occurred_at: datetime | None = None,
    event_bus_name: str = "default",
    fault_id: str | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    """A PutEvents entry for one fault; ``generation`` is the swr:generation the instance runs
    (Admit refuses a fault of an earlier generation), None when it could not be read."""
    detail: dict[str, Any] = {
        "app": app,
        "instance_id": instance_id,
        "user_application": user_application,
        "reason": reason,
        "occurred_at": (occurred_at or datetime.now(tz=UTC)).isoformat(),
        "fault_id": fault_id or str(uuid.uuid4()),
    }
    if generation is not None:
        detail["generation"] = generation
    return {
        "Source": source_of(app),
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [instance_id],
        "EventBusName": event_bus_name,
    }


class PublishError(RuntimeError):
    """EventBridge did not accept the event; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def publish(events_client: Any, entry: dict[str, Any]) -> str:
    """Publish one entry; returns the event id. Raises PublishError when EventBridge refused it."""
    response = events_client.put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in result:
        code = str(result.get("ErrorCode") or "")
        raise PublishError(
            f"EventBridge refused the RMS fault event: {code} {result.get('ErrorMessage')}",
            permanent=code in PERMANENT_ERRORS,
        )
    return str(result["EventId"])


# --- retries -----------------------------------------------------------------------------
class Publisher:
    """``publish`` with retries: exponential backoff with full jitter, all attempts of one run
    within ``timeout_seconds`` (RMS waits for its FaultScript; the spool does the rest)."""

    def __init__(
        self,
        events_client: Any,
        timeout_seconds: float,
        *,
        base_seconds: float = 0.25,
        cap_seconds: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.events = events_client
        self.deadline = clock() + timeout_seconds
        self.base, self.cap = base_seconds, cap_seconds
        self.sleep, self.clock, self.jitter = sleep, clock, jitter
        self.attempts = 0

    def publish(self, entry: dict[str, Any]) -> str:
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                return publish(self.events, entry)
            except PublishError as error:
                problem: PublishError = error
            except Exception as error:  # network, throttling, 5xx: botocore's many classes
                problem = PublishError(f"{type(error).__name__}: {error}", permanent=_is_permanent(error))
            if problem.permanent:
                raise problem
            delay = self.jitter() * min(self.cap, self.base * 2 ** (attempt - 1))
            if self.clock() + delay >= self.deadline:
                raise PublishError(f"{problem} (gave up after {attempt} attempt(s))")
            log.debug("swr-notify-fault: retry in %.2fs after attempt %d: %s", delay, attempt, problem)
            self.sleep(delay)


def _is_permanent(error: Exception) -> bool:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) in PERMANENT_ERRORS
    return type(error).__name__ in ("ParamValidationError", "NoCredentialsError")


# --- publish or spool --------------------------------------------------------------------
@dataclass(frozen=True)
class FlushResult:
    delivered: int
    remaining: int


class FaultNotifier:
    def __init__(self, spool: Spool, publisher: Publisher) -> None:
        self.spool = spool
        self.publisher = publisher

    def flush(self) -> FlushResult:
        """Publish the spooled faults oldest first; stop at the first that is not accepted."""
        with self.spool.locked():
            return self._flush()

    def notify(self, entry: dict[str, Any]) -> Outcome:
        """Flush older faults, then publish this one; spool it when that is not possible."""
        with self.spool.locked():
            try:
                flushed = self._flush()
            except SpoolError as error:
                _log(logging.ERROR, "spool-unreadable", entry, str(error))
                flushed = FlushResult(0, 1)  # cannot tell what is there: do not overtake it
            if flushed.remaining:
                return self._keep(entry, f"{flushed.remaining} older fault(s) still spooled; keeping the order")
            try:
                event_id = self.publisher.publish(entry)
            except PublishError as error:
                return self._keep(entry, str(error))
            _log(logging.INFO, "published", entry, f"event {event_id}")
            return Outcome.PUBLISHED

    def _flush(self) -> FlushResult:
        pending = self.spool.read()
        delivered = 0
        while pending:
            fault = pending[0]
            try:
                event_id = self.publisher.publish(fault.entry)
            except PublishError as error:
                _log(logging.WARNING, "flush-stopped", fault.entry, f"{error}; {len(pending)} fault(s) stay spooled")
                break
            pending = pending[1:]
            self.spool.write(pending)  # only what was accepted leaves the spool
            delivered += 1
            _log(logging.INFO, "delivered-from-spool", fault.entry, f"event {event_id}, spooled at {fault.spooled_at}")
        return FlushResult(delivered, len(pending))

    def _keep(self, entry: dict[str, Any], why: str) -> Outcome:
        try:
            self.spool.append(entry)
        except SpoolError as error:
            _log(logging.CRITICAL, "LOST", entry, f"not published ({why}) and not spooled ({error})")
            return Outcome.LOST
        _log(logging.WARNING, "spooled", entry, f"{why}; in {self.spool.path}, delivered by the next run or timer")
        return Outcome.SPOOLED


def _log(level: int, decision: str, entry: Mapping[str, Any], reason: str) -> None:
    try:
        detail = json.loads(entry.get("Detail", "{}"))
    except ValueError:
        detail = {}
    log.log(
        level,
        "swr-notify-fault: %s app=%s instance=%s fault_id=%s occurred_at=%s reason=%s",
        decision,
        detail.get("app", "-"),
        detail.get("instance_id", "-"),
        detail.get("fault_id", "-"),
        detail.get("occurred_at", "-"),
        json.dumps(reason, ensure_ascii=False),
    )


# --- command line ------------------------------------------------------------------------
class UsageError(ValueError):
    """The arguments do not describe a fault."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr-notify-fault",
        description="Report an RMS fault to swr (EventBridge), spooling it locally when the API is unreachable.",
        epilog="exit codes: 0 published, 2 bad usage, 3 bad configuration, 4 spooled (delivered later),"
        " 5 lost (neither published nor spooled)",
    )
    parser.add_argument("--config", type=Path, default=None, help="JSON configuration (default /etc/swr/hooks.json)")
    parser.add_argument("--flush", action="store_true", help="only deliver the spooled faults, in order")
    parser.add_argument("--app", help="the swr application (default: 'app' in the configuration)")
    parser.add_argument("--user-application", help="the RMS userApplication that faulted (default $HV_APPLICATION)")
    parser.add_argument("--reason", help="what failed (default, under RMS: from its script environment)")
    parser.add_argument("--instance-id", help="this instance (default: from IMDSv2)")
    parser.add_argument("--occurred-at", help="when the fault happened, ISO 8601 with a zone (default: now)")
    return parser


def _fault_fields(args: argparse.Namespace, config: HooksConfig, environ: Mapping[str, str]) -> tuple[str, str]:
    """(userApplication, reason) from the arguments, RMS's script environment or the file."""
    user_application = args.user_application or environ.get("HV_APPLICATION") or config.user_application
    reason = args.reason
    if not reason and environ.get("HV_APPLICATION"):
        reason = (
            f"RMS {environ.get('HV_SCRIPT_TYPE') or 'FaultScript'}: userApplication {environ['HV_APPLICATION']}"
            f" Faulted (object {environ.get('HV_NODENAME') or '?'},"
            f" last detector report {environ.get('HV_LAST_DET_REPORT') or '?'})"
        )
    missing = [name for name, value in (("--user-application", user_application), ("--reason", reason)) if not value]
    if missing:
        raise UsageError(f"missing {' and '.join(missing)} (required outside RMS's FaultScript environment)")
    return str(user_application), str(reason)


def _occurred_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"--occurred-at {text!r} is not an ISO 8601 time") from error
    if value.tzinfo is None:
        raise UsageError(f"--occurred-at {text!r} has no time zone (e.g. 2027-01-15T03:00:00+00:00)")
    return value


def _events_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # One SDK attempt: our own retries (with the spool behind them) have the time budget.
    config = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=3, read_timeout=5)
    return boto3.client("events", region_name=region, config=config)


def _identity(config: HooksConfig, need_instance: bool) -> tuple[str, str]:
    """(region, instance id) from the configuration, else IMDSv2."""
    region, instance_id = config.region, config.instance_id
    if region and (instance_id or not need_instance):
        return region, instance_id
    from rms_hooks.imds import ImdsClient, ImdsError

    imds = ImdsClient()
    try:
        region = region or imds.get("meta-data/placement/region")
        instance_id = instance_id or (imds.get("meta-data/instance-id") if need_instance else "")
    except ImdsError as error:
        raise ConfigError(
            f"cannot tell this instance's identity from IMDSv2 ({error}); set region/instance_id"
            " in the configuration or pass --instance-id with AWS_REGION"
        ) from error
    return region, instance_id


def _generation(config: HooksConfig) -> int | None:
    """The swr:generation tag of this instance (instance metadata tags), or None: a fault goes out
    without it rather than not at all. Not asked when the configuration names the instance
    (not on EC2)."""
    if config.instance_id:
        return None
    from rms_hooks.host import GENERATION_TAG
    from rms_hooks.imds import ImdsClient, ImdsError

    try:
        return int(ImdsClient().get(f"meta-data/tags/instance/{GENERATION_TAG}"))
    except (ImdsError, ValueError) as error:
        log.warning("swr-notify-fault: no-generation reason=%s", json.dumps(str(error)))
        return None


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse printed the usage: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else Outcome.BAD_USAGE
    configure_logging()
    try:
        config = load_hooks_config(args.config, env, app=args.app, instance_id=args.instance_id)
        configure_logging(config.log_level)
        fields = None if args.flush else (*_fault_fields(args, config, env), _occurred_at(args.occurred_at))
        region, instance_id = _identity(config, need_instance=not args.flush)
    except UsageError as error:
        log.error("swr-notify-fault: bad-usage reason=%s", json.dumps(str(error)))
        return Outcome.BAD_USAGE
    except ConfigError as error:
        log.error("swr-notify-fault: bad-config reason=%s", json.dumps(str(error)))
        return Outcome.BAD_CONFIG
    try:
        notifier = FaultNotifier(
            Spool(config.spool_path), Publisher(_events_client(region), config.publish_timeout_seconds)
        )
        if fields is None:
            flushed = notifier.flush()
            log.info("swr-notify-fault: flush delivered=%d remaining=%d", flushed.delivered, flushed.remaining)
            return Outcome.SPOOLED if flushed.remaining else Outcome.PUBLISHED
        user_application, reason, occurred_at = fields
        entry = fault_entry(
            config.app,
            instance_id,
            user_application,
            reason,
            occurred_at,
            event_bus_name=config.event_bus_name,
            generation=_generation(config),
        )
        return notifier.notify(entry)
    except SpoolError as error:
        log.critical("swr-notify-fault: spool-unusable reason=%s", json.dumps(str(error)))
        return Outcome.LOST if fields is not None else Outcome.SPOOLED
    except Exception:
        log.exception("swr-notify-fault: unexpected-error app=%s", config.app)
        return Outcome.UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
