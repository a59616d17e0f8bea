"""The fence's hard cases: the old instance still runs when swr fails the application over.

Each scenario keeps the old instance's connections as AWS documents them (a security group
change does not cut what is established; swr/emulator/network.py), and the watcher judges
safety from those connections: never two instances with the workload started that can both
reach the shared data or clients, and no replacement mounting the data while the old instance
can still reach it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from swr.emulator import Emulator
from tests.scenarios.conftest import assert_safe

SG_ONLY = pytest.mark.xfail(
    strict=True,
    reason="the security-group fence permits the replacement while the old instance's NFS session is established",
)


@pytest.fixture
def failover(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, dict[str, Any]]]:
    name = request.param
    with Emulator.for_scenario(name, warp=100.0) as emu:
        emu.inject(name)
        report = emu.report(emu.wait_for_failover(timeout=120))
        if report["outcome"] != "recovered":
            print(f"not recovered: {report['error']}: {report['cause']}")
        yield emu, report


def old_connections(report: dict[str, Any]) -> dict[str, str]:
    """Path -> how it ended, of the old instance's connections to the data and clients."""
    return {line.split(" via ", 1)[0]: line for line in report["old"]["connections"]}


@SG_ONLY
@pytest.mark.parametrize("failover", ["hung-instance"], indirect=True)
def test_a_hung_instance_that_stays_on_the_network_is_cut_off_before_the_replacement_starts(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    assert report["invariant_violations"] == []
    assert report["outcome"] == "recovered", report
    assert_safe(emu)


@SG_ONLY
@pytest.mark.parametrize("failover", ["slow-shutdown"], indirect=True)
def test_an_instance_stuck_shutting_down_is_cut_off_and_the_failover_does_not_wait_for_it(
    failover: tuple[Emulator, dict[str, Any]],
) -> None:
    emu, report = failover
    assert report["invariant_violations"] == []
    assert report["outcome"] == "recovered", report
    assert report["old"]["state"] == "shutting-down"
    assert_safe(emu)


@SG_ONLY
@pytest.mark.parametrize("failover", ["terminate-refused"], indirect=True)
def test_an_instance_whose_termination_is_refused_is_cut_off(failover: tuple[Emulator, dict[str, Any]]) -> None:
    emu, report = failover
    assert report["invariant_violations"] == []
    assert report["outcome"] == "recovered", report
    assert_safe(emu)


@SG_ONLY
@pytest.mark.parametrize("failover", ["shared-subnet"], indirect=True)
def test_an_nfs_session_inside_the_instances_subnet_is_cut_off(failover: tuple[Emulator, dict[str, Any]]) -> None:
    emu, report = failover
    assert report["invariant_violations"] == []
    assert report["outcome"] == "recovered", report
    assert_safe(emu)
