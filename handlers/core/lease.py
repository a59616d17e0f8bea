"""The application's lease: one failover per application at a time.

Taking it is one conditional write (state SWITCHING, holder, expiry, generation + 1); every
later step re-reads the record and acts only while its execution still holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from handlers.core import clock
from handlers.core.errors import LeaseLost, RecordConflict
from handlers.core.record import AppRecord, AppState, Lease
from handlers.core.record_store import RecordStore

CONFLICT_RETRIES = 5


def take(record: AppRecord, execution: str) -> AppRecord:
    """The record as it is once ``execution`` holds the lease for a new generation."""
    return _held_by(record, execution, generation=record.generation + 1)


def take_over(record: AppRecord, execution: str) -> AppRecord:
    """The record once ``execution`` continues a stopped execution's failover: same
    generation and permit (they describe work that still stands), new holder."""
    return _held_by(record, execution)


def _held_by(record: AppRecord, execution: str, **changes: object) -> AppRecord:
    now = clock.now()
    lease = Lease(holder=execution, acquired_at=now, expires_at=now + timedelta(seconds=record.lease_seconds))
    return record.model_copy(update={"state": AppState.SWITCHING, "lease": lease, "failure_cause": None, **changes})


def is_live(record: AppRecord) -> bool:
    return record.lease is not None and record.lease.expires_at > clock.now()


def require(record: AppRecord | None, execution: str) -> AppRecord:
    if record is None or not record.lease_held_by(execution):
        holder = record.lease.holder if record and record.lease else "nobody"
        raise LeaseLost(f"execution {execution} no longer holds the lease (holder: {holder}); it must not act")
    return record


def update(store: RecordStore, app: str, execution: str, change: Callable[[AppRecord], None]) -> AppRecord:
    """Read-modify-write the record while holding the lease, retrying lost races."""
    for _ in range(CONFLICT_RETRIES):
        record = require(store.get(app), execution).model_copy(deep=True)
        change(record)
        try:
            return store.save(record)
        except RecordConflict:
            continue
    raise RecordConflict(f"record of {app!r} kept changing under execution {execution}")
