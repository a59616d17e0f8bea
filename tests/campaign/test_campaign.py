"""The fault campaign in CI: a fixed set of seeded plans (scenarios, API errors, Lambda
crashes, capacity, AZs down, duplicate and concurrent triggers, stop and resume, broken
replacements), each judged from the emulator's backends. Any broken guarantee fails the suite
with the command that replays its seed exactly (swr/emulator/campaign.py, bench/campaign.py)."""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from swr.emulator.campaign import Plan, SeedResult, replay_command, run_seed

SEEDS = range(1, 1 + int(os.environ.get("SWR_CAMPAIGN_SEEDS", "200")))


def _run(seed: int) -> SeedResult:
    logging.disable(logging.CRITICAL)
    return run_seed(seed, histories=False)


def test_the_ci_seeds_cover_the_scenarios_and_the_fault_bands() -> None:
    plans = [Plan.from_seed(seed) for seed in SEEDS]
    assert len({p.scenario for p in plans}) >= 6
    assert {p.fault_rate for p in plans} >= {0.0, 0.1, 0.3}
    assert any(p.lambda_crashes for p in plans) and any(p.stop_and_resume for p in plans)


def test_no_seed_breaks_a_guarantee() -> None:
    # Fresh interpreters (spawn): each builds its world once and restores it per seed.
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_run, SEEDS))

    broken = [r for r in results if r.violations]
    report = [
        f"seed {r.seed} ({r.plan}): " + "; ".join(r.violations) + f"\n  replay: {replay_command(r.seed)}"
        for r in broken
    ]
    assert not broken, "\n".join(report)
    assert all(r.outcomes for r in results), "a seed admitted no failover at all"


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
