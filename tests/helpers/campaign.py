"""The CI seeds and how they are judged: each half runs in its test worker's own process, which
builds the world once and restores it for every seed."""

from __future__ import annotations

import logging
import os

from swr.emulator.campaign import replay_command, run_seed

SEEDS = range(1, 1 + int(os.environ.get("SWR_CAMPAIGN_SEEDS", "200")))
FIRST_HALF = SEEDS[: len(SEEDS) // 2]
SECOND_HALF = SEEDS[len(SEEDS) // 2 :]
# Seeds of the 1000-seed campaign that once broke a guarantee, kept in CI since their fix:
# 215, 367 (Admit crashing past its retries: judged as the not-admitted end it is), 391, 401, 415
# (a replacement launched by an execution stopped inside the fence branch: the resume fences
# it), 633 (an admission whose Admit retried many times: judged admitted).
FOUND_BEFORE = (215, 367, 391, 401, 415, 633)


def assert_no_seed_breaks_a_guarantee(seeds: range | tuple[int, ...]) -> None:
    # The log of a few hundred failovers is noise to the test's report (and costs its formatting).
    logging.disable(logging.CRITICAL)
    try:
        results = [run_seed(seed, histories=False) for seed in seeds]
    finally:
        logging.disable(logging.NOTSET)
    broken = [r for r in results if r.violations]
    report = [
        f"seed {r.seed} ({r.plan}): " + "; ".join(r.violations) + f"\n  replay: {replay_command(r.seed)}"
        for r in broken
    ]
    assert not broken, "\n".join(report)
    assert all(r.outcomes for r in results), "a seed admitted no failover at all"
