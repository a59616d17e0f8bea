"""Maintenance mode: suspend automatic failover of an application while people work on it.

While it is on, every trigger (alarm, RMS fault, EC2 state change) is still admitted by the
workflow and ignored with the maintenance reason, so nothing is lost from the execution
list; a drill with ``--force`` and a resume still act. Like onboarding, this takes a
``client(service)`` callable and the stack's outputs, and knows nothing of the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from handlers.core.errors import RecordConflict
from handlers.core.record import AppRecord, AppState, Maintenance
from handlers.core.record_store import RecordStore
from swr.ops.common import Client, FailoverInProgress, OnboardingError, require_record
from swr.stack import StackOutputs

CONFLICT_RETRIES = 5


@dataclass
class MaintenanceResult:
    record: AppRecord
    changed: bool
    message: str
    warnings: list[str] = field(default_factory=list)


def set_maintenance(
    client: Client, stack: StackOutputs, app: str, *, on: bool, by: str, reason: str = ""
) -> MaintenanceResult:
    store = RecordStore(stack.RecordTableName, client("dynamodb"))
    for _ in range(CONFLICT_RETRIES):
        record = require_record(store, app)
        if on:
            _refuse_while_switching(client, record)
        wanted = Maintenance(since=datetime.now(UTC), by=by, reason=reason or "maintenance") if on else None
        current = record.maintenance
        if current is None and wanted is None:
            return MaintenanceResult(record, False, _unchanged(record), _warnings(client, record, on))
        if current is not None and wanted is not None:
            if current.reason == wanted.reason:
                return MaintenanceResult(record, False, _unchanged(record), _warnings(client, record, on))
            wanted.since, wanted.by = current.since, current.by  # a new reason, not a new window
        changed = record.model_copy(deep=True)
        changed.maintenance = wanted
        try:
            stored = store.save(changed)
        except RecordConflict:
            continue
        return MaintenanceResult(stored, True, _done(stored), _warnings(client, stored, on))
    raise OnboardingError(f"the record of {app} kept changing: run the command again")


def _refuse_while_switching(client: Client, record: AppRecord) -> None:
    # Maintenance cannot pause a failover that is running: its steps do not read the flag.
    if record.state is not AppState.SWITCHING or record.lease is None:
        return
    holder = record.lease.holder
    status = client("stepfunctions").describe_execution(executionArn=holder)["status"]
    if status == "RUNNING":
        raise FailoverInProgress(
            f"a failover of {record.app} is running ({holder}): maintenance cannot pause it;"
            " wait until it ends (swr status), then turn maintenance on"
        )


def _done(record: AppRecord) -> str:
    m = record.maintenance
    if m is None:
        return f"{record.app}: maintenance OFF: automatic failover resumed"
    since = m.since.isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        f"{record.app}: maintenance ON since {since} by {m.by}: {m.reason}."
        " Triggers are admitted and ignored with this reason;"
        f" `swr drill {record.app} --force` still fails over"
    )


def _unchanged(record: AppRecord) -> str:
    return f"{_done(record)} (already so: nothing changed)"


def _warnings(client: Client, record: AppRecord, on: bool) -> list[str]:
    """What an operator ending maintenance must know: an alarm that is already in ALARM
    starts no failover (EventBridge sees only state changes), and a FAILED record stays so."""
    if on:
        return []
    warnings: list[str] = []
    if record.alarm_names:
        alarms = client("cloudwatch").describe_alarms(AlarmNames=record.alarm_names).get("MetricAlarms", [])
        for alarm in alarms:
            if alarm.get("StateValue") == "ALARM":
                warnings.append(
                    f"alarm {alarm['AlarmName']} is in ALARM: it starts no failover until it changes state;"
                    f" if {record.app} is down, run `swr drill {record.app}`"
                )
    if record.state is AppState.FAILED:
        warnings.append(
            f"{record.app} is FAILED ({record.failure_cause}): run `swr resume {record.app}` once the cause is fixed"
        )
    return warnings
