"""Failover figures on the embedded emulator: wall time and simulated RTO per scenario,
and how quickly a burst of duplicate triggers is settled into one failover.

    python bench/failover_bench.py [--runs N] [--warp W] [--burst K]

Prints figures; asserts nothing about speed (that is what this file is for, not the tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

from swr.emulator import Emulator
from swr.emulator.scenarios import FAILURES


def one_failover(scenario: str, warp: float) -> dict[str, float | str]:
    started = time.perf_counter()
    with Emulator(warp=warp) as emu:
        ready = time.perf_counter()
        emu.inject(scenario)
        report = emu.report(emu.wait_for_failover(timeout=120))
        done = time.perf_counter()
        executions = len(emu.executions())
    return {
        "outcome": report["outcome"],
        "startup_s": ready - started,
        "failover_wall_s": done - ready,
        "simulated_rto_s": float(report["simulated_rto_seconds"] or 0),
        "executions": executions,
    }


def burst(count: int, warp: float) -> dict[str, float | int]:
    """``count`` deliveries of one RMS fault event at once: one failover, the rest settled."""
    with Emulator(warp=warp) as emu:
        event = {
            "id": "burst-1",
            "source": "swr.rms",
            "detail-type": "RMS Fault",
            "detail": {"app": emu.app, "instance_id": emu.primary_instance_id, "user_application": "app_demo"},
        }
        emu.instance(emu.primary_instance_id).workload_up = False
        sfn = emu.boto3_client("stepfunctions")
        started = time.perf_counter()
        for n in range(count):
            sfn.start_execution(stateMachineArn=emu.state_machine_arn, name=f"burst-{n}", input=json.dumps(event))
        submitted = time.perf_counter()
        emu.wait_until_settled(timeout=180)
        settled = time.perf_counter()
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
        "recovered": sum(1 for o in outputs if o.get("outcome") == "recovered"),
        "in_progress_or_duplicate": sum(1 for o in outputs if o.get("decision") in ("in_progress", "ignore")),
        "replacements_launched": len(replacements),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warp", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    print(f"warp {args.warp:g}x, {args.runs} run(s) per scenario (median, min-max)")
    for scenario in FAILURES:
        runs = [one_failover(scenario, args.warp) for _ in range(args.runs)]
        recovered = sum(1 for r in runs if r["outcome"] == "recovered")

        def fig(key: str, runs: list[dict[str, float | str]] = runs) -> str:
            values = [float(r[key]) for r in runs]
            return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"

        print(
            f"{scenario:17s} recovered {recovered}/{len(runs)}  startup {fig('startup_s')} s  "
            f"failover wall {fig('failover_wall_s')} s  simulated RTO {fig('simulated_rto_s')} s"
        )
    figures = burst(args.burst, args.warp)
    print(
        f"burst of {figures['deliveries']} duplicate deliveries: submitted in {figures['submit_s']:.2f} s, "
        f"settled in {figures['settled_s']:.2f} s; {figures['recovered']} failover, "
        f"{figures['in_progress_or_duplicate']} refused, {figures['replacements_launched']} replacement launched"
    )


if __name__ == "__main__":
    main()
