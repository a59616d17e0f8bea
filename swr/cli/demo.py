"""The emulator on this machine: `swr demo` (one failover, reported) and `swr emulator`
(served on loopback)."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from types import FrameType
from typing import Annotated, Any, TextIO

import typer

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    command,
    shorten,
)
from swr.cli.options import Verbose, positive
from swr.cli.output import Progress, print_json, print_lines, progress
from swr.ops.executions import json_object
from swr.timeline import (
    Timeline,
    ToSimulated,
    fetch_history,
    fetch_timeline,
    indented,
    readable_cause,
)
from swr.trigger_input import kind_of

# The scenario names, read without loading the emulator (moto).
SCENARIOS = importlib.import_module("swr.emulator.scenarios").NAMES
Scenario = StrEnum("Scenario", [(name, name) for name in SCENARIOS])  # type: ignore[misc]
DEFAULT_SCENARIO = Scenario("rms-fault")


def _load_emulator() -> Any:
    # Imported by name: the emulator (moto) is an optional extra, and only demo and emulator
    # need it; the rest of the CLI must work without it.
    try:
        module = importlib.import_module("swr.emulator")
    except ImportError as error:
        raise CliError(
            f"the emulator is not installed ({error}); install it with: pip install -e '.[emulator]'", EXIT_ENVIRONMENT
        ) from None
    return module.Emulator


PROGRESS_EVERY = 5.0  # simulated seconds between looks at the executions (lines keep their own times)


class _Progress:
    """Live progress of the demo: the states each execution enters, in simulated seconds
    since the fault. Executions that Admit turned away get one line, not their states."""

    def __init__(self, emu: Any, t0: float, out: TextIO | None, live: Progress) -> None:
        self.live = live
        self.sfn = emu.boto3_client("stepfunctions")
        self.state_machine_arn = str(emu.state_machine_arn)
        self.to_simulated: ToSimulated = emu.clock.to_simulated
        self.t0 = t0
        self.out = out
        self.emu = emu
        self.labels: dict[str, str] = {}
        self.seen: dict[str, set[int]] = {}  # history event ids already looked at
        self.announced: set[str] = set()
        self.turned_away: set[str] = set()  # Admit did not proceed
        self.done: set[str] = set()
        self.notes_seen = 0
        self.held: list[tuple[float, str]] = []  # lines not printed yet, (simulated time, text)

    def say(self, at: float, text: str) -> None:
        line = f"t+{at - self.t0:7.1f}s  {text}"
        if self.out is not None:
            self.live.echo(f"  {line}")
            self.live.update(f"swr demo: {line.strip()}")

    def poll(self, final: bool = False) -> None:
        """Print what happened up to the start of this poll, in time order; lines later than
        the start wait for the next poll, so that nothing that happened earlier comes after
        them."""
        cut = float(self.emu.clock.now())
        executions = self.sfn.list_executions(stateMachineArn=self.state_machine_arn).get("executions", [])
        for execution in sorted(executions, key=lambda e: e["startDate"]):
            arn = str(execution["executionArn"])
            if arn in self.done:
                continue
            if arn not in self.labels:
                self.labels[arn] = f"#{len(self.labels) + 1}"
                self.seen[arn] = set()
            self.held += self._follow(arn)
        self.held += self._world_notes()
        self.held.sort(key=lambda line: line[0])
        ready = self.held if final else [line for line in self.held if line[0] <= cut]
        self.held = self.held[len(ready) :]
        for at, text in ready:
            self.say(at, text)

    def _follow(self, arn: str) -> list[tuple[float, str]]:
        """New lines for one execution: its start, each state as it is entered, and its end.
        Admit's result tells a failover from a trigger it turned away (ignored, duplicate,
        already in progress): those get one line with the reason instead of their states."""
        label, lines = self.labels[arn], []
        # Describe before reading the history: when it says finished, the history is complete.
        described = dict(self.sfn.describe_execution(executionArn=arn))
        trigger = kind_of(json_object(described.get("input")))
        if arn not in self.announced:
            self.announced.add(arn)
            lines.append((self.to_simulated(described["startDate"]), f"{label} started by {trigger} event"))
        for event in fetch_history(self.sfn, arn):
            if int(event["id"]) in self.seen[arn]:
                continue
            self.seen[arn].add(int(event["id"]))
            at = self.to_simulated(event["timestamp"])
            entered, exited = event.get("stateEnteredEventDetails"), event.get("stateExitedEventDetails")
            if entered and arn not in self.turned_away:
                lines.append((at, f"{label} {entered.get('name')}"))
            elif exited and exited.get("name") == "Admit":
                admission = json_object(exited.get("output"))
                if admission.get("decision") not in (None, "proceed"):
                    self.turned_away.add(arn)
                    reason = f"{admission['decision']}: {admission.get('reason', '')}"
                    for other, other_label in self.labels.items():  # "execution arn:..." -> "execution #2"
                        reason = reason.replace(other, other_label)
                    reason = shorten(reason, 110)
                    lines.append((at, f"{label} {reason}"))
        if described["status"] != "RUNNING":
            self.done.add(arn)
            if arn not in self.turned_away:
                at = self.to_simulated(described.get("stopDate") or described["startDate"])
                lines.append((at, f"{label} {described['status']}"))
        return lines

    def _world_notes(self) -> list[tuple[float, str]]:
        # What the simulated world did (alarms, instance states, boot gate). Not part of the
        # emulator's documented API, so read defensively; the demo works without it.
        notes = getattr(getattr(self.emu, "simulation", None), "events", None)
        if not isinstance(notes, list):
            return []
        new = notes[self.notes_seen :]
        self.notes_seen += len(new)
        return [(float(at), f"  · {text}") for at, text in new]


@contextmanager
def _stdout_kept_for_us(verbose: bool) -> Iterator[TextIO]:
    """The in-process handlers print to stdout as on Lambda (Powertools metrics as EMF
    lines); here that would mix with our output and break --json. Give them stderr with
    --verbose, nothing otherwise, and hand back the real stdout."""
    real = sys.stdout
    with contextlib.ExitStack() as stack:
        sink = sys.stderr if verbose else stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        yield real


def _demo(
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="the fault to inject; hung-instance, slow-shutdown, terminate-refused, shared-subnet and"
            " az-api-down are the fence's hard cases: an old instance that still runs",
        ),
    ] = DEFAULT_SCENARIO,
    json: Annotated[bool, typer.Option("--json", help="print one JSON object and nothing else on stdout")] = False,
    timeout: Annotated[
        float, typer.Option(callback=positive, help="simulated seconds to wait for the failover")
    ] = 3600.0,
    api_fault_rate: Annotated[
        float,
        typer.Option(
            metavar="R",
            min=0.0,
            max=1.0,
            help="also make EC2, ELB and DynamoDB calls fail at random: throttling with probability R, 5xx with R/2",
        ),
    ] = 0.0,
    verbose: Verbose = False,
) -> int:
    emulator_class = _load_emulator()
    started = time.monotonic()
    with _stdout_kept_for_us(verbose) as stdout, progress("swr demo: building the world", stdout) as live:
        report, timeline = _run_demo(
            emulator_class, None if json else stdout, live, scenario=str(scenario), timeout=timeout, rate=api_fault_rate
        )
    if report["outcome"] == "recovered" and not _recovered(report):
        report["outcome"] = "failed"
    report["scenario"] = str(scenario)
    report["api_fault_rate"] = api_fault_rate
    report["clock"] = "virtual"
    report["wall_seconds"] = round(time.monotonic() - started, 2)
    report["steps"] = [s.model_dump(mode="json") for s in timeline.steps] if timeline else []
    report.setdefault("invariant_violations", [])
    if json:
        print_json(report, indent=None)
    else:
        print()
        if timeline is not None:
            print_lines(timeline.render())
            print()
        print_lines(_outcome_lines(report))
    return EXIT_OK if report["outcome"] == "recovered" else EXIT_FAILED


def _run_demo(
    emulator_class: Any, out: TextIO | None, live: Progress, *, scenario: str, timeout: float, rate: float
) -> tuple[dict[str, Any], Timeline | None]:
    def say(text: str = "") -> None:
        if out is not None:
            live.echo(text)

    with emulator_class.for_scenario(scenario) as emu:
        old_id, old_az = _current_instance(emu)
        say(f"swr demo: scenario {scenario}, in virtual time (times below are simulated seconds)")
        if getattr(emu, "deployment", None) is not None:
            say(f"  stack {stack_line(emu)}")
        say(f"  app {emu.app} registered by swr register: runs on {old_id} in {old_az}, target healthy, data on EFS")
        say()
        t0 = float(emu.clock.now())
        watch = _Progress(emu, t0, out, live)
        watch.say(t0, f"inject {scenario}")
        if rate:
            emu.inject_api_faults(rate)
            watch.say(t0, f"inject API faults: throttling {rate:.0%}, 5xx {rate / 2:.0%}")
        emu.inject(scenario)
        arn = _await_failover(emu, watch, timeout)
        if arn is not None:
            # Let the executions the failover itself caused (its own terminate) finish, so the
            # invariants are judged on a quiet world; if one is still running, report anyway.
            with contextlib.suppress(TimeoutError):
                emu.wait_until_settled(timeout=max(600.0, timeout / 4))
            watch.poll(final=True)
            report = dict(emu.report(arn))
            timeline: Timeline | None = fetch_timeline(emu.boto3_client("stepfunctions"), arn, emu.clock.to_simulated)
        else:
            watch.poll(final=True)
            report = {
                "outcome": "failed",
                "execution_arn": None,
                "old": {"instance_id": old_id, "az": old_az},
                "new": None,
                "new_target_health": None,
                "efs_data_preserved": False,
                "simulated_rto_seconds": None,
                "error": "Timeout",
                "cause": f"no failover finished within {timeout:g} simulated seconds",
            }
            timeline = None
    return report, timeline


def _await_failover(emu: Any, progress: _Progress, timeout: float) -> str | None:
    found: list[str] = []

    def finished() -> bool:
        progress.poll()  # what happened so far, while the failover runs
        arn = emu.finished_failover()
        if arn is not None:
            found.append(str(arn))
        return arn is not None

    if not emu.wait_until(finished, timeout, poll=PROGRESS_EVERY):
        return None
    progress.poll()
    return found[0]


def _current_instance(emu: Any) -> tuple[str, str]:
    item = emu.boto3_client("dynamodb").get_item(TableName=emu.table_name, Key={"app": {"S": emu.app}}).get("Item", {})
    return item.get("current_instance_id", {}).get("S", "?"), item.get("current_az", {}).get("S", "?")


def _recovered(report: dict[str, Any]) -> bool:
    """Back, healthy, in another AZ, with its EFS data, and nothing unsafe on the way."""
    old, new = report.get("old") or {}, report.get("new") or {}
    return bool(
        report.get("outcome") == "recovered"
        and new.get("instance_id")
        and new.get("instance_id") != old.get("instance_id")
        and new.get("az")
        and new.get("az") != old.get("az")
        and report.get("new_target_health") == "healthy"
        and report.get("efs_data_preserved") is True
        and not report.get("invariant_violations")
    )


def _outcome_lines(report: dict[str, Any]) -> list[str]:
    old, new = report.get("old") or {}, report.get("new") or {}
    recovered = report["outcome"] == "recovered"
    headline = {"recovered": "RECOVERED", "failed-closed": "FAILED CLOSED (nothing unsafe left behind)"}
    lines = [f"outcome: {headline.get(report['outcome'], 'NOT RECOVERED')}"]
    state = f", now {old['state']}" if old.get("state") else ""
    lines.append(f"  old instance   {old.get('instance_id', '?')} in {old.get('az', '?')}{state}")
    for connection in old.get("connections") or []:
        lines.append(f"                 {connection}")
    if new:
        lines.append(f"  new instance   {new.get('instance_id')} in {new.get('az')}")
    else:
        lines.append("  new instance   none")
    lines.append(f"  target health  {report.get('new_target_health') or '-'}")
    preserved = report.get("efs_data_preserved")
    if not new:  # nothing took the data over: it stays where it was
        lines.append("  EFS data       not taken over (no replacement mounted it)")
    else:
        lines.append(f"  EFS data       {'preserved' if preserved else 'NOT preserved'}")
    rto = report.get("simulated_rto_seconds")
    rto_text = f"{rto:.1f} s simulated" if isinstance(rto, int | float) else "-"
    took = "recovery time  " if recovered else "ended after    "
    # No wall time here: it depends on the machine; --json has it (wall_seconds).
    lines.append(f"  {took}{rto_text} from the fault")
    violations = report.get("invariant_violations") or []
    lines.append("  safety         " + ("held" if not violations else "VIOLATED: " + "; ".join(violations)))
    if not recovered and (report.get("error") or report.get("cause")):
        lines.append(f"  error          {report.get('error') or '-'}")
        lines += indented(readable_cause(report.get("cause")) or "-", "  cause          ", " " * 17)
    if report.get("execution_arn"):
        lines.append(f"  execution      {report['execution_arn']}")
    return lines


# --- emulator server ------------------------------------------------------------------------------
def _emulator(
    port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1; 0 picks a free one")] = 5000,
    warp: Annotated[float, typer.Option(callback=positive, help="simulated seconds per wall second")] = 100.0,
    unprotected: Annotated[
        bool,
        typer.Option(
            "--unprotected",
            help="serve the account as it is before swr (the application runs; no stack, no registration), "
            "to follow the README's deployment guide with swr deploy and swr register",
        ),
    ] = False,
    verbose: Verbose = False,
) -> int:
    emulator_class = _load_emulator()
    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with emulator_class(virtual=False, warp=warp, protect=not unprotected) as emu:
            try:
                endpoint = str(emu.start_server(port=port))
            except OSError as error:
                raise CliError(f"cannot serve on 127.0.0.1:{port}: {error} (try --port 0)", EXIT_ENVIRONMENT) from None
            banner = _unprotected_banner if unprotected else _server_banner
            print_lines(banner(emu, endpoint, warp))
            with _stdout_kept_for_us(verbose) as stdout:  # the handlers' metrics lines
                try:
                    while not stop.wait(0.2):
                        pass
                except KeyboardInterrupt:
                    pass
                print("swr emulator: stopping", file=stdout, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _unprotected_banner(emu: Any, endpoint: str, warp: float) -> list[str]:
    world, app = emu.world, emu.app
    where = f"--endpoint {endpoint} --region {emu.region}"
    subnets = list(world.subnets.values())
    return [
        f"swr emulator: serving on {endpoint} (loopback only): the account before swr",
        f"  application     {app} on {emu.primary_instance_id} in {world.az_of_subnet()[subnets[0]]} (not protected)",
        f"  vpc             {world.vpc_id} (route table {world.route_table_id})",
        f"  subnets         {' '.join(subnets)} (one per AZ)",
        f"  target group    {world.target_group_arn}",
        f"  efs             {world.file_system_id} (a mount target in each AZ)",
        f"  time warp       x{warp:g} (simulated seconds per wall second)",
        "",
        "Deploy swr and protect the application (the README's deployment guide):",
        f"  swr deploy {where} --yes --parameter AppName={app} --parameter VpcId={world.vpc_id} \\",
        f"    --parameter EndpointSubnetIds={','.join(subnets)} \\",
        f"    --parameter EndpointRouteTableIds={world.route_table_id}",
        f"  swr register {app} {where} --instance {emu.primary_instance_id} \\",
        f"    --target-group {world.target_group_arn} \\",
        f"    --efs {world.file_system_id} --mount-point /srv/demo/shared --subnets {','.join(subnets)}",
        f"  swr drill {app} {where} --wait",
        "",
        "Ctrl-C or SIGTERM stops it.",
    ]


def stack_line(emu: Any) -> str:
    deployment = getattr(emu, "deployment", None)
    if deployment is None:
        return "none"
    check, api = deployment.check, deployment.created_through_api
    return (
        f"{deployment.stack_name} from infra/template.yaml: {len(check.declared)} resources, all present "
        f"({len(api)} created through the API where moto's CloudFormation skips them)"
    )


def _server_banner(emu: Any, endpoint: str, warp: float) -> list[str]:
    region, machine, table, app = emu.region, emu.state_machine_arn, emu.table_name, emu.app
    # No --warp: the commands that show times read it from the stack (swr.stack.TIME_WARP_TAG).
    where = f"--endpoint {endpoint} --region {region}"
    return [
        f"swr emulator: serving on {endpoint} (loopback only)",
        f"  region          {region}",
        f"  state machine   {machine}",
        f"  record table    {table}",
        f"  stack           {stack_line(emu)}",
        f"  application     {app} (registered by swr register; running and healthy)",
        f"  time warp       x{warp:g} (simulated seconds per wall second)",
        "",
        "swr against it:",
        f"  swr status {where}",
        f"  swr drill {app} --dry-run {where}",
        f"  swr drill {app} {where} --wait",
        f"  swr executions {app} {where}",
        f"  swr show EXECUTION_ARN {where}",
        f"  swr report EXECUTION_ARN --html failover.html {where}",
        f"  swr maintenance {app} on|off {where}",
        f"  swr resume {app} {where} --wait",
        "",
        "AWS CLI (any credentials will do):",
        f"  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={region}",
        f"  aws --endpoint-url {endpoint} stepfunctions list-executions --state-machine-arn {machine}",
        f'  aws --endpoint-url {endpoint} dynamodb get-item --table-name {table} --key \'{{"app": {{"S": "{app}"}}}}\'',
        f"  aws --endpoint-url {endpoint} ec2 describe-instances"
        " --query 'Reservations[].Instances[].[InstanceId,Placement.AvailabilityZone,State.Name]' --output text",
        "",
        "boto3:",
        f"  sfn = boto3.client('stepfunctions', endpoint_url='{endpoint}', region_name='{region}',",
        "                     aws_access_key_id='testing', aws_secret_access_key='testing')",
        f"  sfn.list_executions(stateMachineArn='{machine}')",
        "",
        "Ctrl-C or SIGTERM stops it.",
    ]


def register(app: typer.Typer) -> None:
    command(app, "demo", "Run a failover on the embedded emulator and report the outcome.")(_demo)
    command(app, "emulator", "Serve the emulator on loopback until Ctrl-C or SIGTERM.")(_emulator)
