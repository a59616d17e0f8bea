"""Releasing fences without the lease, while a failover may be writing the same record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.core.fence import instances, network_acls, release
from handlers.core.record import AclEntry, AppRecord, Fence, Lease
from handlers.core.record_store import RecordStore
from handlers.core.steps import ReleaseInput
from tests.helpers.records import make_record

NOW = datetime(2026, 11, 30, tzinfo=UTC)
ENTRY = AclEntry(network_acl_id="acl-1", rule_number=1, egress=False, cidr="10.0.0.9/32")


def fence(instance_id: str, **changes: Any) -> Fence:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "execution": "arn:aws:states:r:1:execution:swr-failover:one",
        "az": "ap-northeast-1a",
        "subnet_id": "subnet-a",
        "addresses": ["10.0.0.9"],
        "started_at": NOW,
        "security_group_id": "sg-blackhole",
        "acl_entries": [ENTRY],
    }
    return Fence(**(values | changes))


def states(monkeypatch: pytest.MonkeyPatch, by_instance: dict[str, str]) -> list[AclEntry]:
    removed: list[AclEntry] = []
    monkeypatch.setattr(
        instances, "describe", lambda i: {"InstanceId": i, "State": {"Name": by_instance[i]}, "NetworkInterfaces": []}
    )
    monkeypatch.setattr(network_acls, "remove", removed.append)
    return removed


def test_the_deny_entries_of_a_terminated_instance_go_and_its_fence_with_them(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed = states(monkeypatch, {"i-gone": "terminated", "i-stopped": "stopped"})
    store.create(make_record(fences=[fence("i-gone"), fence("i-stopped")]))

    report = release.release(ReleaseInput(app="demo", execution="x"), store)

    assert removed == [ENTRY]
    (left,) = store.require("demo").fences
    # A stopped instance keeps its address: its entries stay.
    assert left.instance_id == "i-stopped" and left.acl_entries == [ENTRY]
    assert any("until it is terminated" in line for line in report.held)


def test_a_release_never_undoes_what_a_failover_wrote_meanwhile(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    states(monkeypatch, {"i-old": "stopped"})
    execution = "arn:aws:states:r:1:execution:swr-failover:one"
    store.create(make_record(fences=[fence("i-old")]))
    real_update = store.update

    def confirmed_meanwhile(app: str, change: Any, attempts: int = 5) -> AppRecord:
        # The failover's ConfirmFence writes its proof between the release's read and its write.
        record = store.require(app)
        record.fences[0].confirmed_at, record.fences[0].confirmed_in = NOW, execution
        record.lease = Lease(holder=execution, acquired_at=NOW, expires_at=NOW)
        store.save(record)
        return real_update(app, change, attempts)

    monkeypatch.setattr(store, "update", confirmed_meanwhile)

    release.release(ReleaseInput(app="demo", execution="release"), store)

    (kept,) = store.require("demo").fences
    assert kept.confirmed_in == execution and kept.acl_entries == [ENTRY]


def test_a_fence_that_holds_nothing_stays_while_its_failover_runs(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    states(monkeypatch, {"i-old": "terminated"})
    execution = "arn:aws:states:r:1:execution:swr-failover:one"
    lease = Lease(holder=execution, acquired_at=NOW, expires_at=NOW)
    store.create(make_record(fences=[fence("i-old", confirmed_in=execution)], lease=lease))

    release.release(ReleaseInput(app="demo", execution="release"), store)

    (kept,) = store.require("demo").fences
    assert kept.acl_entries == [] and kept.confirmed_in == execution  # the permit still needs it
