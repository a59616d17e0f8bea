"""`swr demo --json` on the real emulator: each scenario recovers, and the one JSON object on
stdout says so (the issue's "done when")."""

from __future__ import annotations

import json

import pytest

from swr import cli


@pytest.mark.parametrize("scenario", ["rms-fault", "instance-failure", "az-outage"])
def test_demo_recovers_and_reports_it_as_json(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--json", "--scenario", scenario])
    out = capsys.readouterr().out

    report = json.loads(out)  # nothing but the JSON object on stdout
    assert code == 0, {k: v for k, v in report.items() if k != "steps"}
    assert report["outcome"] == "recovered" and report["scenario"] == scenario
    assert report["execution_arn"].startswith("arn:aws:states:")
    assert report["new"]["instance_id"] != report["old"]["instance_id"]
    assert report["new"]["az"] != report["old"]["az"]
    assert report["new_target_health"] == "healthy"
    assert report["efs_data_preserved"] is True
    assert report["simulated_rto_seconds"] > 0
    assert report["invariant_violations"] == []
    names = [step["name"] for step in report["steps"]]
    assert names.index("ConfirmFence") < names.index("IssuePermit") < names.index("FinaliseFailover")


def test_demo_recovers_while_the_apis_throttle_and_fail_at_random(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--json", "--scenario", "rms-fault", "--api-fault-rate", "0.1"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, {k: v for k, v in report.items() if k != "steps"}
    assert report["api_fault_rate"] == 0.1
    assert report["invariant_violations"] == []
