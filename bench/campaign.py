"""The fault campaign: seeded plans run on the emulator in virtual time, judged from its
backends (swr/emulator/campaign.py). Prints the outcomes by fault band and scenario, and each
violation with the command that replays its seed.

    python bench/campaign.py [--seeds N] [--first S] [--jobs J]
    python bench/campaign.py --seed S [--verbose]      # one seed: its plan, outcome, histories

Exit 1 when any seed broke a check.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from swr.emulator.campaign import SeedResult, replay_command, run_seed


def _quiet_run(seed: int, histories: bool = False) -> SeedResult:
    logging.disable(logging.CRITICAL)
    return run_seed(seed, histories)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="processes (each builds its world once)")
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--verbose", action="store_true", help="with --seed: the execution histories")
    args = parser.parse_args()
    if args.seed is not None:
        result = _quiet_run(args.seed, histories=args.verbose)
        print(f"seed {result.seed}: {result.plan}")
        print(f"  outcome {result.outcome} ({', '.join(result.outcomes) or 'no failover admitted'})")
        for error in result.errors:
            print(f"  failed closed: {error}")
        for violation in result.violations:
            print(f"  VIOLATION {violation}")
        if args.verbose:
            for name, events in result.histories.items():
                print(f"  execution {name}")
                for line in events:
                    print(f"    {line[:400]}")
        return 1 if result.violations else 0
    started = time.perf_counter()
    seeds = range(args.first, args.first + args.seeds)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_quiet_run, seeds, chunksize=max(1, args.seeds // (args.jobs * 8))))
    print_table(results)
    print(f"({time.perf_counter() - started:.0f} s wall on this machine; varies with its load)")
    return 1 if any(r.violations for r in results) else 0


def print_table(results: list[SeedResult]) -> None:
    by_band: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    by_scenario: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for result in results:
        by_band[result.band][result.outcome] += 1
        by_scenario[result.scenario][result.outcome] += 1
    outcomes = ("recovered", "failed-closed", "not admitted", "stopped", "no failover", "VIOLATION")
    header = f"{'':22s}" + "".join(f"{o:>15s}" for o in outcomes) + f"{'recovered %':>13s}"
    print(f"{len(results)} seeds ({results[0].seed}-{results[-1].seed})" if results else "no seeds")
    for title, table in (("fault band", by_band), ("scenario", by_scenario)):
        print(header.replace(" " * 22, f"{title:22s}", 1))
        for key in sorted(table):
            counts = table[key]
            total = sum(counts.values())
            share = 100.0 * counts["recovered"] / total if total else 0.0
            print(f"  {key:20s}" + "".join(f"{counts[o]:15d}" for o in outcomes) + f"{share:12.1f}%")
    print("recovered where recovery was possible (an AZ left, the old instance's AZ answering), no Lambda faults:")
    for band in sorted({r.band for r in results if "+lambda" not in r.band}, key=lambda b: float(b.rstrip("%"))):
        plans = [r for r in results if r.band == band and r.recoverable]
        recovered = [r for r in plans if r.outcome == "recovered"]
        share = 100.0 * len(recovered) / len(plans) if plans else 100.0
        missed = ", ".join(str(r.seed) for r in plans if r.outcome != "recovered")
        print(
            f"  api errors {band:>4s}: {len(recovered)}/{len(plans)} ({share:.1f}%)"
            + (f"; not: {missed}" if missed else "")
        )
    broken = [r for r in results if r.violations]
    print(f"violations: {sum(len(r.violations) for r in broken)} in {len(broken)} seed(s)")
    for result in broken:
        print(f"  seed {result.seed} ({result.plan})")
        for violation in result.violations:
            print(f"    {violation}")
        print(f"    replay: {replay_command(result.seed)}")


if __name__ == "__main__":
    sys.exit(main())
