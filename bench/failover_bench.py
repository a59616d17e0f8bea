"""Failover figures on the embedded emulator: simulated RTO per scenario, what the fence costs
(how long after the failover started it proved the old instance cut off, when the replacement
was running, and how long the permit waited for the fence beyond that), how a burst of
duplicate triggers is settled into one failover, and what it all cost in wall time here.

    python bench/failover_bench.py [--runs N] [--seed S] [--burst K] [--fence-cases] [--scenario NAME ...]
        [--aws-default-target-group]

The emulator runs in virtual time: run n uses seed S+n, and the simulated figures follow from
the seeds alone, the same on an idle and a busy machine. Wall times are this machine's and vary.

--fence-cases also runs the scenarios where the old instance still runs (hung-instance, ...).
--aws-default-target-group gives the demo's target group AWS's defaults (300 s deregistration
delay, no connection termination) instead of 30 s with termination: the fence can then cut the
clients off only by powering the old instance off.

Prints figures; asserts nothing about speed (that is what this file is for, not the tests).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import statistics
import time
from typing import Any

from swr.emulator import Emulator
from swr.emulator.scenarios import FAILURES, FENCE_CASES
from swr.timeline import fetch_history


def one_failover(scenario: str, seed: int, target_group: tuple[int, bool] | None) -> dict[str, float | str]:
    started = time.perf_counter()
    with Emulator.for_scenario(scenario, seed=seed, target_group=target_group) as emu:
        ready = time.perf_counter()
        emu.inject(scenario)
        arn = emu.wait_for_failover()
        report = emu.report(arn)
        done = time.perf_counter()
        executions = len(emu.executions())
        fence = fence_figures(emu, arn)
    return {
        "outcome": report["outcome"],
        "startup_s": ready - started,
        "failover_wall_s": done - ready,
        "simulated_rto_s": float(report["simulated_rto_seconds"] or 0),
        "executions": executions,
        **fence,
    }


def fence_figures(emu: Any, arn: str) -> dict[str, float]:
    """Simulated seconds from the lease: the fence proven, the replacement running (as EC2 has it,
    not as the workflow polls it), and how long the permit waited for the fence beyond that."""
    history = fetch_history(emu.boto3_client("stepfunctions"), arn)

    def exits(name: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (emu.clock.to_simulated(e["timestamp"]), json.loads(e["stateExitedEventDetails"].get("output") or "{}"))
            for e in history
            if (e.get("stateExitedEventDetails") or {}).get("name") == name
        ]

    leased = exits("Admit")[0][0]
    # Only a round that proved the fence counts: a failover that fails closed has none.
    fenced = min(
        (at for at, out in exits("ConfirmFence") if (out.get("fence") or {}).get("confirmed")),
        default=float("nan"),
    )
    replacement = emu.store.require(emu.app).current_instance_id
    running = next(
        (at for at, what in emu.sim.events if what.startswith(f"{replacement} (") and what.endswith("-> running")),
        float("nan"),
    )
    return {
        "fence_s": fenced - leased,
        "running_s": running - leased,
        "permit_waited_s": max(0.0, fenced - running),
    }


def burst(count: int, seed: int) -> dict[str, float | int]:
    """``count`` deliveries of one RMS fault event at once: one failover, the rest settled."""
    with Emulator(seed=seed) as emu:
        event = {
            "id": "burst-1",
            "source": f"swr.rms.{emu.app}",
            "detail-type": "RMS Fault",
            "detail": {"app": emu.app, "instance_id": emu.primary_instance_id, "user_application": "app_demo"},
        }
        emu.instance(emu.primary_instance_id).workload_up = False
        sfn = emu.boto3_client("stepfunctions")
        started, simulated = time.perf_counter(), emu.clock.now()
        for n in range(count):
            sfn.start_execution(stateMachineArn=emu.state_machine_arn, name=f"burst-{n}", input=json.dumps(event))
        submitted = time.perf_counter()
        emu.wait_until_settled()
        settled, simulated_settled = time.perf_counter(), emu.clock.now()
        outputs = [
            json.loads(sfn.describe_execution(executionArn=e["executionArn"]).get("output") or "{}")
            for e in emu.executions()
            if e["name"].startswith("burst-")
        ]
        replacements = [i for i in emu.simulation.instances.values() if i.role == "replacement"]  # type: ignore[union-attr]
    return {
        "deliveries": count,
        "submit_s": submitted - started,
        "settled_s": settled - started,
        "simulated_settled_s": simulated_settled - simulated,
        "recovered": sum(1 for o in outputs if o.get("outcome") == "recovered"),
        "in_progress_or_duplicate": sum(1 for o in outputs if o.get("decision") in ("in_progress", "ignore")),
        "replacements_launched": len(replacements),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="the first run's seed (7, the demo's)")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--fence-cases", action="store_true", help="also the scenarios where the old instance runs")
    parser.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    parser.add_argument(
        "--aws-default-target-group", action="store_true", help="300 s delay, no connection termination"
    )
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    target_group = (300, False) if args.aws_default_target_group else None
    layout = (
        "AWS's default target group (300 s, no connection termination)" if target_group else "the demo's target group"
    )
    print(
        f"virtual time, {args.runs} run(s) per scenario (seeds {args.seed}-{args.seed + args.runs - 1};"
        f" median, min-max), {layout}"
    )
    scenarios = tuple(args.scenario) or FAILURES + (FENCE_CASES if args.fence_cases else ())
    wall: list[str] = []
    for scenario in scenarios:
        runs = [one_failover(scenario, args.seed + n, target_group) for n in range(args.runs)]

        def fig(key: str, runs: list[dict[str, float | str]] = runs) -> str:
            values = [float(r[key]) for r in runs]
            if any(math.isnan(v) for v in values):
                return "      -"
            return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"

        counts = collections.Counter(str(r["outcome"]) for r in runs)
        outcomes = ", ".join(f"{outcome} {count}/{len(runs)}" for outcome, count in sorted(counts.items()))
        print(f"{scenario:17s} {outcomes:17s}  simulated RTO {fig('simulated_rto_s')} s")
        print(
            f"{'':17s} fence proven {fig('fence_s')} s after the lease, replacement running {fig('running_s')} s,"
            f" permit waited {fig('permit_waited_s')} s for the fence"
        )
        wall.append(f"{scenario:17s} startup {fig('startup_s')} s  failover {fig('failover_wall_s')} s")
    if args.burst:
        figures = burst(args.burst, args.seed)
        print(
            f"burst of {figures['deliveries']} duplicate deliveries: settled in {figures['simulated_settled_s']:.0f} s"
            f" simulated; {figures['recovered']} failover, {figures['in_progress_or_duplicate']} refused,"
            f" {figures['replacements_launched']} replacement launched"
        )
        submitted, settled = figures["submit_s"], figures["settled_s"]
        wall.append(f"burst             submitted in {submitted:.2f} s, settled in {settled:.2f} s")
    print("wall time on this machine (varies with its load; not a figure to quote):")
    for line in wall:
        print(f"  {line}")


if __name__ == "__main__":
    main()
