"""The fault campaign in CI: a fixed set of seeded plans (scenarios, API errors, Lambda
crashes, capacity, AZs down, duplicate and concurrent triggers, stop and resume, broken
replacements), each judged from the emulator's backends. Any broken guarantee fails the suite
with the command that replays its seed exactly (swr/emulator/campaign.py, bench/campaign.py).
The seeds run in two halves, this file's and test_campaign_second_half.py's, so that the two
test workers share them."""

from __future__ import annotations

import pytest

from swr.emulator.campaign import Plan, replay_command, run_seed
from tests.helpers.campaign import FIRST_HALF, SEEDS, assert_no_seed_breaks_a_guarantee


def test_the_ci_seeds_cover_the_scenarios_and_the_fault_bands() -> None:
    plans = [Plan.from_seed(seed) for seed in SEEDS]
    assert len({p.scenario for p in plans}) >= 6
    assert {p.fault_rate for p in plans} >= {0.0, 0.1, 0.3}
    assert any(p.lambda_crashes for p in plans) and any(p.stop_and_resume for p in plans)


def test_no_seed_of_the_first_half_breaks_a_guarantee() -> None:
    assert_no_seed_breaks_a_guarantee(FIRST_HALF)


def test_a_seed_replays_to_the_same_histories() -> None:
    # Seed 31: API errors, a broken AZ for replacements, the failover stopped and resumed.
    first, second = run_seed(31), run_seed(31)

    assert first.plan == second.plan and first.outcomes == second.outcomes
    assert first.histories and first.histories == second.histories


def test_a_run_that_breaks_is_reported_with_its_seed_and_the_campaign_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from swr.emulator import campaign

    def broken(*args: object) -> None:
        raise RuntimeError("the harness tripped")

    monkeypatch.setattr(campaign, "_run", broken)
    result = run_seed(7, histories=False)
    assert result.violations == ["the run raised RuntimeError: the harness tripped"]
    assert result.outcome == "VIOLATION" and replay_command(7).endswith("--seed 7 --verbose")
