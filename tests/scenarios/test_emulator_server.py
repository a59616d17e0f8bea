"""`swr emulator` serves the seeded world over loopback HTTP: an operator drives a drill
and inspects it with the same commands they would use against AWS."""

from __future__ import annotations

import json

import pytest

from swr import cli
from swr.emulator import Emulator
from tests.helpers.scenarios import assert_safe


def test_an_operator_drills_and_inspects_through_the_emulator_endpoint(
    served_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = served_emulator
    endpoint = emulator.start_server(0)
    # No --warp: the read commands learn the emulator's time scale from its stack's tag.
    where = ["--endpoint", endpoint, "--region", emulator.region]

    assert cli.main(["drill", "demo", "--reason", "quarterly drill", "--wait", *where]) == 0
    drilled = capsys.readouterr().out
    assert "FinaliseFailover" in drilled and "SUCCEEDED" in drilled
    assert "(simulated seconds from its start)" in drilled

    assert cli.main(["executions", "demo", "--json", *where]) == 0
    executions = json.loads(capsys.readouterr().out)
    drill = next(e for e in executions if e["name"].startswith("drill-demo-"))
    assert drill["status"] == "SUCCEEDED"
    assert cli.main(["executions", "demo", "--json", "--warp", "1", *where]) == 0  # as wall seconds
    wall = next(e for e in json.loads(capsys.readouterr().out) if e["name"] == drill["name"])
    # Each figure is rounded to a tenth: the wall one by up to 0.05 s, which the warp scales.
    warp = emulator.clock.warp
    assert drill["duration_seconds"] == pytest.approx(wall["duration_seconds"] * warp, abs=0.05 * warp + 0.05)

    assert cli.main(["show", drill["execution_arn"], *where]) == 0
    shown = capsys.readouterr().out
    assert "CutOffInstances" in shown and "ConfirmFence" in shown and "IssuePermit" in shown

    record = emulator.store.require("demo")
    assert record.history[-1].trigger.startswith("drill by") and record.history[-1].outcome == "recovered"
    assert_safe(emulator)


def test_a_drill_of_an_unknown_application_is_refused_with_a_clear_message(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = emulator.start_server(0)
    code = cli.main(["drill", "payroll", "--endpoint", endpoint, "--region", emulator.region])
    assert code == 2
    assert "payroll" in capsys.readouterr().err
