"""The record is the single truth about an application; the lease makes one failover at a time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from handlers.core import admission, clock, lease
from handlers.core.admission import admit
from handlers.core.errors import LeaseLost, RecordConflict
from handlers.core.record import APP_NAME_PATTERN, AppRecord, AppState, FailoverSummary, Maintenance
from handlers.core.record_store import RecordStore
from handlers.core.steps import AdmitInput, Decision
from rms_hooks import config as hooks_config
from tests.helpers.records import make_record

EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:one"
OTHER = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:two"


def drill(execution: str = EXECUTION) -> AdmitInput:
    return AdmitInput(
        trigger={"kind": "drill", "app": "demo"}, execution=execution, execution_name=execution.rsplit(":", 1)[-1]
    )


def a_record_with_a_recovered_failover(phase_seconds: dict[str, float]) -> AppRecord:
    record = make_record()
    record.add_history(
        FailoverSummary(
            execution=EXECUTION,
            trigger="drill",
            outcome="recovered",
            old_instance_id="i-old",
            old_az="ap-northeast-1a",
            started_at=clock.now(),
            finished_at=clock.now() + timedelta(seconds=95.5),
            phase_seconds=phase_seconds,
        )
    )
    return record


def test_a_record_survives_the_round_trip_through_dynamodb(store: RecordStore):
    stored = store.create(a_record_with_a_recovered_failover({"total": 95.5}))
    assert store.require("demo") == stored
    assert store.require("demo").history[0].duration_seconds == pytest.approx(95.5, abs=0.01)


def test_a_history_written_when_phases_were_called_step_seconds_still_reads():
    record = a_record_with_a_recovered_failover({"fence": 12.0, "total": 95.5})
    stored = json.loads(record.model_dump_json())
    stored["history"][0]["step_seconds"] = stored["history"][0].pop("phase_seconds")
    read = AppRecord.model_validate_json(json.dumps(stored))
    assert read.history[0].phase_seconds == {"fence": 12.0, "total": 95.5}
    assert "step_seconds" not in json.loads(read.model_dump_json())["history"][0]


def test_registering_an_application_twice_is_refused(store: RecordStore):
    store.create(make_record())
    with pytest.raises(RecordConflict, match="already registered"):
        store.create(make_record())


def test_a_write_based_on_a_stale_read_is_refused(store: RecordStore):
    store.create(make_record())
    first, second = store.require("demo"), store.require("demo")
    store.save(first)
    with pytest.raises(RecordConflict):
        store.save(second)


def test_admit_takes_the_lease_for_a_new_generation(store: RecordStore):
    store.create(make_record())
    admission = admit(drill(), store)
    assert admission.decision is Decision.PROCEED
    record = store.require("demo")
    assert record.state is AppState.SWITCHING and record.lease_held_by(EXECUTION)
    assert record.generation == 1 and admission.plan is not None and admission.plan.generation == 1


def test_a_retried_admit_of_the_same_execution_does_not_bump_the_generation_again(store: RecordStore):
    store.create(make_record())
    admit(drill(), store)
    again = admit(drill(), store)
    assert again.decision is Decision.PROCEED and store.require("demo").generation == 1


def test_a_second_execution_finds_the_failover_in_progress_and_touches_nothing(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(admission, "_still_running", lambda execution: execution == EXECUTION)
    store.create(make_record())
    admit(drill(), store)
    before = store.require("demo")
    second = admit(drill(OTHER), store)
    assert second.decision is Decision.IN_PROGRESS and EXECUTION in second.reason
    assert store.require("demo") == before


def test_an_expired_lease_whose_holder_is_gone_is_taken_over(store: RecordStore):
    store.create(make_record())
    admit(drill(), store)
    now = clock.now()
    clock.set_source(lambda: (now + timedelta(hours=2)).timestamp())
    # The holder execution does not exist in this account: it is gone.
    takeover = admit(drill(OTHER), store)
    assert takeover.decision is Decision.PROCEED
    assert store.require("demo").lease_held_by(OTHER) and store.require("demo").generation == 2


def test_a_lease_whose_holder_ended_is_continued_at_once_not_waited_out(store: RecordStore):
    # The holder ended without finishing (its clean-up failed) long before the lease expires.
    store.create(make_record())
    admit(drill(), store)
    assert store.require("demo").lease is not None and lease.is_live(store.require("demo"))

    continued = admit(drill(OTHER), store)

    assert continued.decision is Decision.PROCEED
    assert store.require("demo").lease_held_by(OTHER)


def test_steps_of_an_execution_that_lost_the_lease_must_not_act(store: RecordStore):
    store.create(make_record())
    admit(drill(), store)
    with pytest.raises(LeaseLost, match="no longer holds the lease"):
        lease.update(store, "demo", OTHER, lambda r: None)


# --- replayed RMS faults ---------------------------------------------------------------------------
def rms_fault(event_id: str, fault_id: str, occurred_at: str, execution: str = EXECUTION) -> AdmitInput:
    detail = {"app": "demo", "instance_id": "i-old", "user_application": "app_demo", "reason": "Cmdline0 failed"}
    return AdmitInput(
        trigger={
            "id": event_id,
            "source": "swr.rms.demo",
            "detail-type": "RMS Fault",
            "detail": {**detail, "occurred_at": occurred_at, "fault_id": fault_id},
        },
        execution=execution,
        execution_name=execution.rsplit(":", 1)[-1],
    )


def test_a_fault_turned_away_during_maintenance_and_published_again_later_changes_nothing(store: RecordStore):
    now = clock.now().isoformat()
    store.create(make_record(maintenance=Maintenance(since=clock.now(), by="ops", reason="patching")))
    assert admit(rms_fault("event-1", "fault-1", now), store).decision is Decision.IGNORE
    record = store.require("demo")
    store.save(record.model_copy(update={"maintenance": None}))  # maintenance ends; the app is healthy

    # Someone publishes the very same fault again (a new EventBridge event id, the same fault id).
    replayed = admit(rms_fault("event-2", "fault-1", now, OTHER), store)

    assert replayed.decision is Decision.IGNORE and "fault-1 was already decided on" in replayed.reason
    assert store.require("demo").lease is None and store.require("demo").generation == 0


def test_a_fault_raised_before_the_current_instance_became_current_is_stale(store: RecordStore):
    became_current = clock.now()
    store.create(make_record(current_since=became_current))
    earlier = (became_current - timedelta(hours=1)).isoformat()

    stale = admit(rms_fault("event-1", "fault-old", earlier), store)

    assert stale.decision is Decision.IGNORE and "belongs to an earlier run" in stale.reason
    assert store.require("demo").lease is None


def test_a_fresh_fault_is_admitted_and_its_fault_id_remembered(store: RecordStore):
    store.create(make_record(current_since=clock.now() - timedelta(hours=1)))

    admitted = admit(rms_fault("event-1", "fault-new", clock.now().isoformat()), store)

    assert admitted.decision is Decision.PROCEED
    assert "fault:fault-new" in store.require("demo").recent_triggers


def test_the_hooks_copy_of_the_application_name_pattern_is_the_records():
    # rms_hooks imports nothing of the control plane, so it keeps a copy: the two must agree.
    assert hooks_config.APP_NAME.pattern == APP_NAME_PATTERN.pattern
