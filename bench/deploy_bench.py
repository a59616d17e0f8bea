"""What deploying infra/template.yaml costs on the embedded emulator, phase by phase: the
seeded account, packaging (code zip and definition to S3), the local SAM transform, the
change set (create, execute, follow), the resource check, and `swr register`.

    python bench/deploy_bench.py [--runs N]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from swr.emulator import moto_bridge, world
from swr.emulator.deploy import deploy, parameters_for
from swr.ops import onboarding

PHASES = ("seed", "package", "transform", "change set", "check", "register")


def one_deploy() -> dict[str, float]:
    hooks = moto_bridge.BridgeHooks(warp=lambda: 100.0)
    moto_bridge.start(hooks, region=world.REGION)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = boto3.client(service, region_name=world.REGION)  # type: ignore[call-overload]
        return clients[service]

    figures: dict[str, float] = {}

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        figures[name] = time.perf_counter() - started

    try:
        with phase("seed"):
            seeded = world.seed(client)
        deployment = deploy(client, parameters_for(seeded), lambda line: None, phase)
        instance = world.launch_primary(client, seeded)
        with phase("register"):
            onboarding.register(client, deployment.outputs, world.registration(seeded, instance))
        figures["resources"] = float(len(deployment.check.declared))
        figures["template_kb"] = deployment.template_bytes / 1024
    finally:
        moto_bridge.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    runs = [one_deploy() for _ in range(args.runs)]
    print(
        f"{args.runs} deploy(s) of infra/template.yaml on the emulator: {runs[0]['resources']:.0f} resources, "
        f"transformed template {runs[0]['template_kb']:.0f} KiB (median, min-max seconds; run 1 includes imports)"
    )
    for phase in PHASES:
        values = [r[phase] for r in runs]
        print(f"  {phase:<11} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")
    totals = [sum(r[p] for p in PHASES) for r in runs]
    print(f"  {'total':<11} {statistics.median(totals):6.2f} ({min(totals):.2f}-{max(totals):.2f})")


if __name__ == "__main__":
    main()
