"""swr boot gate: a freshly launched replacement starts the workload only with a start permit.

Runs once per boot as a systemd oneshot unit ordered before RMS. It reads who this instance
is (IMDSv2: id, AZ, region, tags ``swr:app`` and ``swr:generation``), then polls the
application record (DynamoDB, consistent reads) until the failover workflow has written a
start permit naming this instance and its generation. The workflow writes that permit only
after the old instance is confirmed isolated, and waits on its task token for this gate. The
token is not in the record but in the item the permit names (``<app>#permit#<aws:userid>``),
which IAM lets only this instance's credentials read.

With the permit it heartbeats the token, mounts EFS, re-reads the record (the permit must
still be ours and the generation unchanged), starts the workload and answers the token with
SendTaskSuccess. Anything else fails closed: without a valid permit for the current
generation EFS is never mounted and the workload never started; an instance whose
generation was superseded, whose permit was withdrawn, or whose workflow stopped waiting
(TaskTimedOut / InvalidToken / TaskDoesNotExist), or that got no permit within its wait, fences
itself (``systemctl poweroff``).

Usage: ``swr-boot-gate [--config PATH] [--once]``
  --config PATH  JSON configuration (default /etc/swr/hooks.json; when the default file is
                 absent the environment alone is used, an explicit PATH must exist)
  --once         read the record once instead of polling: exit 5 at once without a permit

Exit codes (the unit fails on anything but 0, so RMS, which requires it, does not start):
  0  STARTED           permit held, EFS mounted, workload started, success reported
  1  unexpected error  a bug; nothing is started after it (see the traceback in the log)
  2  BAD_CONFIG        missing/invalid configuration or arguments; nothing done
  3  STALE_GENERATION  the record moved past this instance's generation, or the permit was
                       withdrawn before start: self-fenced, workload not started
  3  ABANDONED         the workflow no longer waits for this instance (or could not be told
                       it started): self-fenced
  4  MOUNT_FAILED      EFS mount failed; SendTaskFailure(BootGateFailed) sent (and, should
                       the workflow no longer wait, self-fenced)
  5  NO_PERMIT         no permit for this instance before permit_timeout_seconds: EFS not
                       mounted, workload not started; self-fenced
  6  START_FAILED      the workload did not start (or the permit could not be re-confirmed);
                       SendTaskFailure(BootGateFailed) sent
  7  REFUSED           identity unreadable, tags missing, or ``swr:app`` differs from the
                       configured app; nothing done

Configuration (JSON object; environment variables override the file):
  app                     SWR_APP                      required
  table_name              SWR_TABLE_NAME               required
  region                  AWS_REGION                   default: file, AWS_DEFAULT_REGION, IMDS
  poll_seconds            SWR_POLL_SECONDS             default 5
  permit_timeout_seconds  SWR_PERMIT_TIMEOUT_SECONDS   default 900
  heartbeat_seconds       SWR_HEARTBEAT_SECONDS        default 60 (minimum spacing of heartbeats)
  workload_command        SWR_WORKLOAD_COMMAND         default none (e.g. "hvcm -a"); list or string
  self_fence_command      SWR_SELF_FENCE_COMMAND       default "systemctl poweroff"; empty disables
                                                       fencing (tests only, never in production)
  log_level               SWR_LOG_LEVEL                default INFO
Keys the gate does not use are ignored (the file is shared with the other hooks).

Deployment notes: the image must not mount the file system itself (no /etc/fstab entry
without ``noauto``), or the gate is bypassed. ``swr-install-hooks`` installs the unit
(``rms_hooks/systemd/swr-boot-gate.service``): a oneshot ordered ``Before=`` the RMS unit
and ``RequiredBy=`` it, so RMS does not start unless the gate exits 0, with a
``TimeoutStartSec`` of ``permit_timeout_seconds`` plus 300 s for mounting and starting.
Every decision is one log line ``swr-boot-gate: <decision> app=... instance=...
generation=... reason="..."`` on stdout (the journal).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from rms_hooks.config import APP_NAME, DEFAULT_CONFIG_PATH, ConfigError, command, configure_logging, read_config
from rms_hooks.host import APP_TAG, Host, Identity, IdentityError, LinuxHost
from rms_hooks.imds import ImdsError

__all__ = [
    "BOOT_GATE_FAILED",
    "DEFAULT_CONFIG_PATH",
    "BootGate",
    "ConfigError",
    "Decision",
    "GateConfig",
    "GateOutcome",
    "Host",
    "Identity",
    "IdentityError",
    "LinuxHost",
    "PermitView",
    "RecordError",
    "RecordView",
    "Verdict",
    "decide",
    "load_config",
    "main",
]

log = logging.getLogger("swr-boot-gate")

BOOT_GATE_FAILED = "BootGateFailed"  # the SendTaskFailure error the workflow catches
# Step Functions' answers when the task behind a token is over: the workflow gave up on us.
WORKFLOW_GAVE_UP = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
REPORT_ATTEMPTS = 3
REREAD_ATTEMPTS = 3
MAX_CAUSE_CHARS = 32768  # SendTaskFailure's limit


# --- outcome ---------------------------------------------------------------------------
class GateOutcome(StrEnum):
    STARTED = "STARTED"
    BAD_CONFIG = "BAD_CONFIG"
    STALE_GENERATION = "STALE_GENERATION"
    ABANDONED = "ABANDONED"
    MOUNT_FAILED = "MOUNT_FAILED"
    NO_PERMIT = "NO_PERMIT"
    START_FAILED = "START_FAILED"
    REFUSED = "REFUSED"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES: dict[GateOutcome, int] = {
    GateOutcome.STARTED: 0,
    GateOutcome.BAD_CONFIG: 2,
    GateOutcome.STALE_GENERATION: 3,
    GateOutcome.ABANDONED: 3,
    GateOutcome.MOUNT_FAILED: 4,
    GateOutcome.NO_PERMIT: 5,
    GateOutcome.START_FAILED: 6,
    GateOutcome.REFUSED: 7,
}
EXIT_UNEXPECTED = 1


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class GateConfig:
    app: str
    table_name: str
    region: str = ""  # empty: the instance's own region, from IMDS
    poll_seconds: float = 5.0
    permit_timeout_seconds: float = 900.0
    heartbeat_seconds: float = 60.0
    workload_command: tuple[str, ...] = ()  # empty: RMS is started by its own unit
    self_fence_command: tuple[str, ...] = ("systemctl", "poweroff")
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not isinstance(self.app, str) or not APP_NAME.match(self.app):
            raise ConfigError(f"app must be an application name like 'demo-app', not {self.app!r}")
        if not isinstance(self.table_name, str) or not self.table_name:
            raise ConfigError("table_name must name the swr DynamoDB table")
        if not isinstance(self.region, str):
            raise ConfigError(f"region must be a string, not {self.region!r}")
        for name, minimum in (("poll_seconds", 0.1), ("permit_timeout_seconds", 0.0), ("heartbeat_seconds", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
                raise ConfigError(f"{name} must be a number of seconds >= {minimum}, not {value!r}")
        # Accept lists and shell-like strings, store tuples (the dataclass is frozen).
        object.__setattr__(self, "workload_command", command(self.workload_command, "workload_command"))
        object.__setattr__(self, "self_fence_command", command(self.self_fence_command, "self_fence_command"))
        if logging.getLevelName(str(self.log_level).upper()) not in range(0, 60):
            raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")


_FIELDS = {f.name for f in dataclasses.fields(GateConfig)}
_ENV = {
    "SWR_APP": "app",
    "SWR_TABLE_NAME": "table_name",
    "AWS_REGION": "region",
    "SWR_POLL_SECONDS": "poll_seconds",
    "SWR_PERMIT_TIMEOUT_SECONDS": "permit_timeout_seconds",
    "SWR_HEARTBEAT_SECONDS": "heartbeat_seconds",
    "SWR_WORKLOAD_COMMAND": "workload_command",
    "SWR_SELF_FENCE_COMMAND": "self_fence_command",
    "SWR_LOG_LEVEL": "log_level",
}
_NUMBERS = {"poll_seconds", "permit_timeout_seconds", "heartbeat_seconds"}


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> GateConfig:
    """The file (``path``, or the default when it exists) overlaid with the environment.

    Raises ConfigError with a message an operator can act on."""
    values, source = read_config(
        path,
        environ,
        fields=_FIELDS,
        variables=_ENV,
        numbers=_NUMBERS,
        required={"app": "SWR_APP", "table_name": "SWR_TABLE_NAME"},
        user="the boot gate",
    )
    try:
        return GateConfig(**values)
    except TypeError as error:  # a value of the wrong JSON type reaching a comparison
        raise ConfigError(f"invalid configuration in {source}: {error}") from error


# --- the record, as the gate reads it ----------------------------------------------------
class RecordError(ValueError):
    """The stored record lacks what the gate needs; the gate keeps waiting (fails closed)."""


@dataclass(frozen=True)
class PermitView:
    generation: int
    instance_id: str
    token_key: str  # the item holding the task token, readable only by the permitted instance
    issued_at: str
    task_token: str = ""  # read from token_key by the instance the permit names


# The attributes of the application record RecordView reads (``state`` is a DynamoDB reserved word).
RECORD_PROJECTION_NAMES = {
    "#app": "app",
    "#state": "state",
    "#generation": "generation",
    "#efs": "efs",
    "#permit": "permit",
    "#current": "current_instance_id",
}
RECORD_PROJECTION = ", ".join(RECORD_PROJECTION_NAMES)


@dataclass(frozen=True)
class RecordView:
    """The few attributes of the application record the gate depends on."""

    app: str
    state: str
    generation: int
    file_system_id: str
    mount_point: str
    permit: PermitView | None
    current_instance_id: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RecordView:
        """From a low-level GetItem ``Item`` (attribute values as ``{"S": ...}``)."""
        deserializer = TypeDeserializer()
        try:
            plain = {key: deserializer.deserialize(value) for key, value in item.items()}
        except (TypeError, ValueError, KeyError) as error:
            raise RecordError(f"cannot decode the item: {error}") from error
        efs = plain.get("efs")
        if not isinstance(efs, dict):
            raise RecordError("efs is missing")
        permit_value = plain.get("permit")
        permit: PermitView | None = None
        if permit_value is not None:
            if not isinstance(permit_value, dict):
                raise RecordError("permit is not a map")
            permit = PermitView(
                generation=_integer(permit_value, "generation", "permit.generation"),
                instance_id=_text(permit_value, "instance_id", "permit.instance_id"),
                token_key=str(permit_value.get("token_key") or ""),
                issued_at=str(permit_value.get("issued_at", "")),
            )
        return cls(
            app=_text(plain, "app", "app"),
            state=str(plain.get("state", "")),
            generation=_integer(plain, "generation", "generation"),
            file_system_id=_text(efs, "file_system_id", "efs.file_system_id"),
            mount_point=_text(efs, "mount_point", "efs.mount_point"),
            permit=permit,
            current_instance_id=str(plain.get("current_instance_id") or ""),
        )


def _integer(values: Mapping[str, Any], key: str, label: str) -> int:
    value = values.get(key)
    # DynamoDB numbers arrive as Decimal; anything not integral is not a generation.
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RecordError(f"{label} is not an integer: {value!r}")


def _text(values: Mapping[str, Any], key: str, label: str) -> str:
    value = values.get(key)
    if isinstance(value, str) and value:
        return value
    raise RecordError(f"{label} is missing or empty")


# --- the decision ----------------------------------------------------------------------
class Verdict(StrEnum):
    WAIT = "wait"
    STALE = "stale"
    PROCEED = "proceed"
    RESUME = "resume"  # a reboot of the instance the record names as current: no failover to answer


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


def decide(record: RecordView | None, me: Identity) -> Decision:
    """What this instance may do, given the record as read now. Pure, so the rules read as
    one list: a superseded generation fences; only a permit naming this instance, for its
    generation, at the record's current generation, lets it proceed; anything else waits."""
    if record is None:
        return Decision(Verdict.WAIT, "no record for the application")
    if record.generation > me.generation:
        return Decision(
            Verdict.STALE,
            f"the application is at generation {record.generation}; this instance was launched for {me.generation}",
        )
    permit = record.permit
    where = f"record state {record.state or '?'} generation {record.generation}"
    if (
        record.state == "NORMAL"  # maintenance is a separate flag: the state stays NORMAL
        and record.current_instance_id == me.instance_id
        and record.generation == me.generation
    ):
        # No failover is in progress and this instance is the one the record names: a reboot.
        return Decision(Verdict.RESUME, f"this instance is the application's current instance ({where})")
    if permit is None:
        return Decision(Verdict.WAIT, f"no start permit yet ({where})")
    if permit.instance_id != me.instance_id:
        return Decision(
            Verdict.WAIT, f"the permit is for {permit.instance_id} generation {permit.generation} ({where})"
        )
    if not permit.generation == me.generation == record.generation:
        return Decision(
            Verdict.WAIT,
            f"the permit names this instance for generation {permit.generation},"
            f" launched for {me.generation} ({where})",
        )
    return Decision(
        Verdict.PROCEED,
        f"permit issued at {permit.issued_at or '?'} for this instance and generation {me.generation}",
    )


# --- the gate --------------------------------------------------------------------------
class _Report(StrEnum):
    OK = "ok"
    GONE = "gone"  # the workflow no longer waits on this token
    ERROR = "error"


class BootGate:
    """One boot's decision. ``dynamodb_client`` and ``stepfunctions_client`` are low-level
    boto3 clients (or anything with the same methods); ``sleep`` and ``clock`` (epoch
    seconds) are injectable so simulated time and tests drive the polling."""

    def __init__(
        self,
        config: GateConfig,
        host: Host,
        dynamodb_client: Any,
        stepfunctions_client: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.host = host
        self.dynamodb = dynamodb_client
        self.stepfunctions = stepfunctions_client
        self.sleep = sleep
        self.clock = clock
        self._me: Identity | None = None
        self._last_heartbeat: float | None = None

    def run(self) -> GateOutcome:
        try:
            me = self.host.identity()
        except Exception as error:  # IMDS down, tags missing: whatever it is, do nothing
            self._log("refused", f"cannot establish this instance's identity: {error}", logging.ERROR)
            return GateOutcome.REFUSED
        self._me = me
        if me.app_tag != self.config.app:
            self._log(
                "refused",
                f"this instance is tagged {APP_TAG}={me.app_tag!r}, the gate is configured for {self.config.app!r}",
                logging.ERROR,
            )
            return GateOutcome.REFUSED
        waited = self._wait_for_permit(me)
        if isinstance(waited, GateOutcome):
            return waited
        if decide(waited, me).verdict is Verdict.RESUME:
            return self._resume(me, waited)
        return self._proceed(me, waited)

    # --- waiting -------------------------------------------------------------------------
    def _wait_for_permit(self, me: Identity) -> RecordView | GateOutcome:
        timeout = self.config.permit_timeout_seconds
        deadline = self.clock() + timeout
        self._log(
            "waiting-for-permit",
            f"polling {self.config.table_name} every {self.config.poll_seconds:g}s for up to {timeout:g}s"
            f" (instance in {me.az})",
        )
        last_reason: str | None = None
        while True:
            record, problem = self._read()
            decision = decide(record, me) if problem is None else Decision(Verdict.WAIT, problem)
            if decision.verdict is Verdict.STALE:
                self._log("stale-generation", decision.reason, logging.WARNING)
                self._self_fence(decision.reason)
                return GateOutcome.STALE_GENERATION
            if decision.verdict in (Verdict.PROCEED, Verdict.RESUME):
                assert record is not None
                self._log("permit-granted" if decision.verdict is Verdict.PROCEED else "resume", decision.reason)
                return record
            if decision.reason != last_reason:  # once per change, not once per poll
                self._log("waiting", decision.reason)
                last_reason = decision.reason
            now = self.clock()
            if now >= deadline:
                reason = (
                    f"no start permit for this instance within {timeout:g}s (last: {decision.reason});"
                    " EFS not mounted, workload not started"
                )
                self._log("no-permit", reason, logging.ERROR)
                # Nobody will permit it now (its workflow stopped or moved on): a replacement
                # left running would hold an address and could be given a permit by mistake
                # later. It powers itself off; a resumed failover launches what it needs.
                self._self_fence(reason)
                return GateOutcome.NO_PERMIT
            self.sleep(min(self.config.poll_seconds, deadline - now))

    def _read(self) -> tuple[RecordView | None, str | None]:
        """(record or None when absent, problem when it could not be read or understood)."""
        try:
            response = self.dynamodb.get_item(
                TableName=self.config.table_name,
                Key={"app": {"S": self.config.app}},
                ConsistentRead=True,  # a stale read could show a permit already withdrawn
                # Only what RecordView reads: the gate polls every few seconds, and the record
                # also holds the fences and the failover history, which grow. Less to send and
                # parse, the same read capacity ("Projection expression has no effect on
                # provisioned throughput consumption", DynamoDB Developer Guide, "Using
                # projection expressions"); reserved words such as state need #names there.
                ProjectionExpression=RECORD_PROJECTION,
                ExpressionAttributeNames=RECORD_PROJECTION_NAMES,
            )
        except Exception as error:  # throttling, network, permissions: keep failing closed
            return None, f"cannot read the record from {self.config.table_name}: {error}"
        item = response.get("Item")
        if not item:
            return None, None
        try:
            record = RecordView.from_item(item)
        except RecordError as error:
            return None, f"the record is malformed: {error}"
        me = self._me
        if record.permit is None or me is None or record.permit.instance_id != me.instance_id:
            return record, None
        return self._with_token(record, record.permit)

    def _with_token(self, record: RecordView, permit: PermitView) -> tuple[RecordView | None, str | None]:
        """The record with the permit's task token, read from the item only this instance's
        credentials may read."""
        if not permit.token_key:
            return None, "the permit names this instance but no token item"
        try:
            response = self.dynamodb.get_item(
                TableName=self.config.table_name, Key={"app": {"S": permit.token_key}}, ConsistentRead=True
            )
        except Exception as error:  # including AccessDenied: these credentials are not the permitted instance's
            return None, f"cannot read the permit's token {permit.token_key}: {error}"
        token_item = response.get("Item") or {}
        token = str((token_item.get("task_token") or {}).get("S") or "")
        named = str((token_item.get("instance_id") or {}).get("S") or "")
        if not token or named != permit.instance_id:
            return None, f"the permit's token {permit.token_key} is missing or not this instance's"
        return dataclasses.replace(record, permit=dataclasses.replace(permit, task_token=token)), None

    # --- holding the permit --------------------------------------------------------------
    def _proceed(self, me: Identity, record: RecordView) -> GateOutcome:
        assert record.permit is not None
        token = record.permit.task_token
        if self._heartbeat(token) is _Report.GONE:
            return self._abandon("the workflow no longer waits on this permit's task token (before mounting)")

        fs, mount_point = record.file_system_id, record.mount_point
        try:
            self.host.mount_efs(fs, mount_point, me.region)
        except Exception as error:
            reason = f"mounting {fs} at {mount_point} failed: {error}"
            self._log("mount-failed", reason, logging.ERROR)
            self._report_failure(token, reason)
            return GateOutcome.MOUNT_FAILED
        mounted_at = self._iso_now()
        self._log("mounted", f"{fs} at {mount_point}")

        if self._heartbeat_due() and self._heartbeat(token) is _Report.GONE:
            return self._abandon("the workflow no longer waits on this permit's task token (after mounting)")

        # The permit may have been withdrawn (rollback, a newer generation) while we mounted.
        current, problem = self._reread()
        if problem is not None:
            reason = f"the permit could not be re-confirmed before starting the workload: {problem}"
            self._log("start-failed", reason, logging.ERROR)
            self._report_failure(token, reason)
            return GateOutcome.START_FAILED
        decision = decide(current, me)
        if decision.verdict is not Verdict.PROCEED or current is None or current.permit is None:
            reason = f"the permit is no longer this instance's: {decision.reason}"
            self._log("permit-withdrawn", reason, logging.WARNING)
            self._self_fence(reason)
            self._send("failure", token, cause=reason)  # best effort: the task is most likely over
            return GateOutcome.STALE_GENERATION
        if current.permit.task_token != token:
            self._log("permit-reissued", "the permit carries a new task token; answering that one")
            token = current.permit.task_token

        try:
            self.host.start_workload()
        except Exception as error:
            reason = f"starting the workload failed: {error}"
            self._log("start-failed", reason, logging.ERROR)
            self._report_failure(token, reason)
            return GateOutcome.START_FAILED
        started_at = self._iso_now()
        self._log("started", f"workload started with EFS {fs} at {mount_point}")

        output = {
            "instance_id": me.instance_id,
            "az": me.az,
            "generation": me.generation,
            "file_system_id": fs,
            "mount_point": mount_point,
            "mounted_at": mounted_at,
            "started_at": started_at,
        }
        result, detail = self._send("success", token, output=json.dumps(output))
        if result is _Report.OK:
            self._log("reported", "SendTaskSuccess accepted; the workflow registers this instance next")
            return GateOutcome.STARTED
        if result is _Report.GONE:
            return self._abandon(f"the workflow no longer waits for this instance ({detail}); it will be replaced")
        # The workflow will time out and replace this instance anyway; stop now rather than
        # run a workload it considers failed.
        return self._abandon(f"SendTaskSuccess failed ({detail}); the workflow will time out and replace this instance")

    def _resume(self, me: Identity, record: RecordView) -> GateOutcome:
        """Reboot of the current instance: mount and start; there is no task token to answer."""
        fs, mount_point = record.file_system_id, record.mount_point
        try:
            self.host.mount_efs(fs, mount_point, me.region)
        except Exception as error:
            self._log("mount-failed", f"mounting {fs} at {mount_point} failed: {error}", logging.ERROR)
            return GateOutcome.MOUNT_FAILED
        try:
            self.host.start_workload()
        except Exception as error:
            self._log("start-failed", f"starting the workload failed: {error}", logging.ERROR)
            return GateOutcome.START_FAILED
        self._log("started", f"workload resumed after a reboot with EFS {fs} at {mount_point}")
        return GateOutcome.STARTED

    def _reread(self) -> tuple[RecordView | None, str | None]:
        problem: str | None = None
        for attempt in range(1, REREAD_ATTEMPTS + 1):
            record, problem = self._read()
            if problem is None:
                return record, None
            if attempt < REREAD_ATTEMPTS:
                self.sleep(self.config.poll_seconds)
        return None, problem

    def _abandon(self, reason: str) -> GateOutcome:
        self._log("abandoned", reason, logging.ERROR)
        self._self_fence(reason)
        return GateOutcome.ABANDONED

    # --- talking to the workflow ---------------------------------------------------------
    def _heartbeat_due(self) -> bool:
        return self._last_heartbeat is None or self.clock() - self._last_heartbeat >= self.config.heartbeat_seconds

    def _heartbeat(self, token: str) -> _Report:
        result, detail = self._send("heartbeat", token)
        if result is _Report.OK:
            self._last_heartbeat = self.clock()
        elif result is _Report.ERROR:
            # A missed heartbeat is not fatal; the workflow allows minutes between them.
            self._log("heartbeat-failed", detail, logging.WARNING)
        return result

    def _report_failure(self, token: str, cause: str) -> None:
        result, detail = self._send("failure", token, cause=cause)
        if result is _Report.GONE:
            self._self_fence(f"the workflow no longer waits for this instance ({detail}) after: {cause}")
        elif result is _Report.ERROR:
            self._log("report-failed", f"SendTaskFailure failed: {detail}", logging.ERROR)

    def _send(self, kind: str, token: str, *, output: str = "", cause: str = "") -> tuple[_Report, str]:
        last = ""
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                if kind == "heartbeat":
                    self.stepfunctions.send_task_heartbeat(taskToken=token)
                elif kind == "success":
                    self.stepfunctions.send_task_success(taskToken=token, output=output)
                else:
                    self.stepfunctions.send_task_failure(
                        taskToken=token, error=BOOT_GATE_FAILED, cause=cause[:MAX_CAUSE_CHARS]
                    )
                return _Report.OK, ""
            except Exception as error:  # the SDK's own retries are already spent
                code = _error_code(error)
                if code in WORKFLOW_GAVE_UP:
                    return _Report.GONE, f"{code}: {error}"
                last = f"{code or type(error).__name__}: {error}"
            if attempt < REPORT_ATTEMPTS:
                self.sleep(float(2 ** (attempt - 1)))
        return _Report.ERROR, last

    # --- fencing and logging -------------------------------------------------------------
    def _self_fence(self, reason: str) -> None:
        self._log("self-fence", reason, logging.CRITICAL)
        try:
            self.host.self_fence(reason)
        except Exception as error:
            # Nothing was started; the non-zero exit keeps RMS (which requires this unit) down.
            self._log("self-fence-failed", f"{error}; this instance is NOT fenced", logging.CRITICAL)

    def _iso_now(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=UTC).isoformat()

    def _log(self, decision: str, reason: str, level: int = logging.INFO) -> None:
        me = self._me
        log.log(
            level,
            "swr-boot-gate: %s app=%s instance=%s generation=%s reason=%s",
            decision,
            self.config.app,
            me.instance_id if me else "-",
            me.generation if me else "-",
            json.dumps(reason, ensure_ascii=False),
        )


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


# --- command line ----------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr-boot-gate",
        description="Start the workload on this instance only with a start permit for its generation.",
        epilog="exit codes: 0 started, 2 bad config, 3 self-fenced, 4 mount failed, 5 no permit,"
        " 6 start failed, 7 refused (identity)",
    )
    parser.add_argument("--config", type=Path, default=None, help=f"JSON configuration (default {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--once", action="store_true", help="read the record once instead of polling")
    return parser


def _clients(region: str) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=15)
    return (
        boto3.client("dynamodb", region_name=region, config=config),
        boto3.client("stepfunctions", region_name=region, config=config),
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else GateOutcome.BAD_CONFIG.exit_code
    configure_logging(logger=log.name, stream=sys.stdout)  # stdout: systemd sends it to the journal
    try:
        config = load_config(args.config)
    except ConfigError as error:
        log.error(
            "swr-boot-gate: bad-config app=- instance=- generation=- reason=%s",
            json.dumps(str(error), ensure_ascii=False),
        )
        return GateOutcome.BAD_CONFIG.exit_code
    configure_logging(config.log_level, logger=log.name, stream=sys.stdout)
    if args.once:
        config = dataclasses.replace(config, permit_timeout_seconds=0.0)
    host = LinuxHost(workload_command=config.workload_command, self_fence_command=config.self_fence_command)
    region = config.region
    if not region:
        try:
            region = host.identity().region
        except (IdentityError, ImdsError) as error:
            log.error(
                "swr-boot-gate: refused app=%s instance=- generation=- reason=%s",
                config.app,
                json.dumps(str(error), ensure_ascii=False),
            )
            return GateOutcome.REFUSED.exit_code
    try:
        dynamodb, stepfunctions = _clients(region)
        outcome = BootGate(config, host, dynamodb, stepfunctions).run()
    except Exception:
        log.exception("swr-boot-gate: unexpected-error app=%s (nothing is started after this)", config.app)
        return EXIT_UNEXPECTED
    log.info("swr-boot-gate: exit outcome=%s code=%d", outcome, outcome.exit_code)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
