"""What deploying infra/template.yaml costs on the embedded emulator, phase by phase: the
seeded account, packaging (code zip and definition to S3), the local SAM transform, the
change set (create, execute, follow), the resource check, and `swr register`.

    python bench/deploy_bench.py [--runs N]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3

from swr import deployer, onboarding
from swr.emulator import moto_bridge, world
from swr.emulator.deploy import ARTIFACT_PREFIX, STACK_NAME, TEMPLATE, parameters_for
from swr.emulator.stack_check import check_stack
from swr.stack import read_outputs

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

    def timed(phase: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        figures[phase] = time.perf_counter() - started
        return result

    try:
        seeded = timed("seed", lambda: world.seed(client))
        parameters = parameters_for(seeded)
        account = str(client("sts").get_caller_identity()["Account"])
        bucket = deployer.default_bucket_name(account, world.REGION)
        s3, cloudformation = client("s3"), client("cloudformation")

        def package() -> dict[str, Any]:
            deployer.ensure_artifact_bucket(s3, bucket, world.REGION, account, lambda line: None)
            return deployer.package(TEMPLATE, bucket, ARTIFACT_PREFIX, s3)

        packaged = timed("package", package)
        transformed = timed("transform", lambda: deployer.transform(packaged, parameters, world.REGION, account))
        body = json.dumps(transformed, separators=(",", ":"))
        timed(
            "change set",
            lambda: deployer.deploy(
                cloudformation,
                s3,
                STACK_NAME,
                body,
                parameters,
                confirm=lambda changes: True,
                progress=lambda line: None,
                bucket=bucket,
                prefix=ARTIFACT_PREFIX,
                poll_seconds=0.02,
            ),
        )
        check = timed("check", lambda: check_stack(client, STACK_NAME, transformed, parameters))
        assert check.ok, check.missing
        outputs = read_outputs(cloudformation, STACK_NAME)
        instance = world.launch_primary(client, seeded)
        timed("register", lambda: onboarding.register(client, outputs, world.registration(seeded, instance)))
        figures["resources"] = float(len(check.declared))
        figures["template_kb"] = len(body) / 1024
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
