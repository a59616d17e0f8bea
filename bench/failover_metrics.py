"""The failover's own CloudWatch metrics after one recovered failover, as the README shows them.

    python bench/failover_metrics.py [--scenario NAME] [--seed S]

Runs the scenario (rms-fault, seed 7: the demo's) on the emulator in virtual time, then reads
back what the Finalise step wrote (EMF, bridge patch 24): Failovers, FailoverDuration and
PhaseDuration per phase. Virtual time: the figures follow from the seed alone.
"""

from __future__ import annotations

import argparse
import logging

from handlers.core import failover_metrics
from swr.emulator import Emulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="rms-fault")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    with Emulator.for_scenario(args.scenario, seed=args.seed) as emu:
        emu.inject(args.scenario)
        emu.wait_for_failover()
        app = emu.app
        rows = [
            ("Failovers", {"App": app, "Outcome": "recovered"}, "Sum"),
            ("FailoverDuration", {"App": app, "Outcome": "recovered"}, "Maximum"),
            *(
                (failover_metrics.PHASE_DURATION, {"App": app, "Phase": phase}, "Maximum")
                for phase in failover_metrics.PHASES
            ),
        ]
        for name, dimensions, statistic in rows:
            where = " ".join(f"{k}={v}" for k, v in dimensions.items())
            print(f"{name:<17} {where:<32} {statistic:<8} {emu.metric_datapoints(name, dimensions, statistic)}")


if __name__ == "__main__":
    main()
