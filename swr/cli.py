"""The ``swr`` command line: the demo and the emulator on this machine, and drills and
execution inspection against any Step Functions endpoint (AWS by default).

Exit codes: 0 done; 1 the thing asked for did not succeed (the demo did not recover, a
waited-for drill failed); 2 bad input (usage, ARN, unknown application); 3 the environment
(endpoint unreachable, credentials, region, missing state machine or table, AWS errors);
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from swr.timeline import (
    Timeline,
    ToSimulated,
    build_timeline,
    describe_failure,
    fetch_history,
    fetch_timeline,
    indented,
    readable_cause,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
STATE_MACHINE_NAME = "swr-failover"
DEFAULT_TABLE = "swr-apps"
SCENARIOS = ("rms-fault", "instance-failure", "az-outage")
APP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as handlers.core.record.AppName
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):\d{12}:(?:express|execution):[^:]+:[^:]+$")
EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}$")


class CliError(Exception):
    """An expected failure: printed as one clear line, no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# --- entry point ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _cli_logging(args.verbose):
            return int(args.run(args))
    except CliError as error:
        print(f"swr {args.command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"swr {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr",
        description="Smart workload recovery: cross-AZ failover of an RMS-managed application on AWS.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("-v", "--verbose", action="store_true", help="show library and emulator logs on stderr")
        sub.set_defaults(run=run)
        return sub

    demo = command("demo", _demo, "Run a failover on the embedded emulator and report the outcome.")
    demo.add_argument("--scenario", choices=SCENARIOS, default="rms-fault", help="the fault to inject (rms-fault)")
    demo.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    demo.add_argument("--warp", type=_positive, default=100.0, help="simulated seconds per wall second (100)")
    demo.add_argument("--timeout", type=_positive, default=120.0, help="wall seconds to wait for the failover (120)")
    demo.add_argument(
        "--api-fault-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="also make EC2, ELB and DynamoDB calls fail at random: throttling with probability R, 5xx with R/2 (0)",
    )

    emulator = command("emulator", _emulator, "Serve the emulator on loopback until Ctrl-C or SIGTERM.")
    emulator.add_argument("--port", type=_port, default=5000, help="port on 127.0.0.1; 0 picks a free one (5000)")
    emulator.add_argument("--warp", type=_positive, default=100.0, help="simulated seconds per wall second (100)")
    emulator.add_argument(
        "--unprotected",
        action="store_true",
        help="serve the account as it is before swr (the application runs; no stack, no registration), "
        "to follow the README's deployment guide with swr deploy and swr register",
    )

    drill = command("drill", _drill, "Start a manual failover (a drill) of APP.")
    drill.add_argument("app", metavar="APP")
    drill.add_argument("--reason", default="drill", help="why; recorded in the trigger (drill)")
    drill.add_argument("--force", action="store_true", help="fail over even when APP is in maintenance mode")
    drill.add_argument("--wait", action="store_true", help="wait for the execution to finish and show its timeline")
    drill.add_argument("--timeout", type=_positive, default=1800.0, help="wall seconds --wait waits (1800)")
    _endpoint_options(drill, table=True)

    executions = command("executions", _executions, "List recent executions of the failover that concern APP.")
    executions.add_argument("app", metavar="APP")
    executions.add_argument("--limit", type=_positive_int, default=10, help="how many to show (10)")
    executions.add_argument("--scan", type=_positive_int, default=300, help="how many recent executions to look at")
    executions.add_argument("--json", action="store_true", help="print a JSON list")
    _endpoint_options(executions, table=True)

    show = command("show", _show, "Show the step timeline of one execution, with durations, errors and causes.")
    show.add_argument("execution", metavar="EXECUTION_ARN", help="an execution ARN, or an execution name")
    show.add_argument("--json", action="store_true", help="print the timeline as JSON")
    _endpoint_options(show, table=False)
    _onboarding_commands(command)
    _deploy_command(command)
    return parser


def _endpoint_options(parser: argparse.ArgumentParser, *, table: bool) -> None:
    group = parser.add_argument_group("where")
    group.add_argument("--endpoint", metavar="URL", help="AWS API endpoint, e.g. the emulator's (default: AWS)")
    group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    group.add_argument(
        "--state-machine-arn", metavar="ARN", help=f"default: the state machine named {STATE_MACHINE_NAME}"
    )
    if table:
        group.add_argument(
            "--table", default=None, help=f"the application record table (${{SWR_TABLE_NAME}} or {DEFAULT_TABLE})"
        )
    group.add_argument(
        "--warp",
        type=_positive,
        default=1.0,
        help="the endpoint's time warp (the emulator prints it): show times in its simulated seconds (1)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return value


@contextmanager
def _cli_logging(verbose: bool) -> Iterator[None]:
    """moto's interpreter and the emulator log a lot: stderr gets logs only with --verbose.
    The previous set-up is restored afterwards, so main() can be called from tests."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    for handler in saved_handlers:
        root.removeHandler(handler)
    target: logging.Handler
    if verbose:
        target = logging.StreamHandler(sys.stderr)
        target.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.setLevel(logging.INFO)
    else:
        target = logging.NullHandler()
        root.setLevel(logging.CRITICAL)
    root.addHandler(target)
    # Library warnings (e.g. from Powertools in the in-process handlers) go the same way.
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(target)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


# --- AWS access -------------------------------------------------------------------------------
@dataclass
class Aws:
    """Clients for one endpoint and region, with the failover state machine resolved lazily."""

    endpoint: str | None
    region: str
    session: Any  # boto3.session.Session
    state_machine_arn_option: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _state_machine_arn: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, region_hint: str | None = None) -> Aws:
        import boto3

        with aws_errors(None):  # a broken profile fails here already
            session = boto3.session.Session(region_name=args.region or region_hint)
            if session.region_name is None:
                raise CliError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", EXIT_ENVIRONMENT)
            if args.endpoint and session.get_credentials() is None:
                # A local endpoint (the emulator) needs some credentials to sign with, not real ones.
                session = boto3.session.Session(
                    region_name=session.region_name, aws_access_key_id="testing", aws_secret_access_key="testing"
                )
        return cls(args.endpoint, session.region_name, session, args.state_machine_arn)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint, config=config)
        return self._clients[service]

    @property
    def where(self) -> str:
        return f"{self.endpoint or 'AWS'} ({self.region})"

    def state_machine_arn(self) -> str:
        if self._state_machine_arn is None:
            self._state_machine_arn = self.state_machine_arn_option or self._find_state_machine()
        return self._state_machine_arn

    def _find_state_machine(self) -> str:
        sfn = self.client("stepfunctions")
        with aws_errors(self):
            for page in sfn.get_paginator("list_state_machines").paginate():
                for machine in page.get("stateMachines", []):
                    if machine["name"] == STATE_MACHINE_NAME:
                        return str(machine["stateMachineArn"])
        raise CliError(
            f"no state machine named {STATE_MACHINE_NAME} at {self.where}; deploy swr or pass --state-machine-arn",
            EXIT_ENVIRONMENT,
        )


@contextmanager
def aws_errors(aws: Aws | None, subject: str = "") -> Iterator[None]:
    """Turn the errors an operator can act on into one clear line each."""
    from botocore import exceptions as bce

    where = aws.where if aws else "AWS"
    try:
        yield
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ConnectionClosedError) as error:
        hint = " (is `swr emulator` running?)" if aws and aws.endpoint else ""
        raise CliError(f"cannot reach {where}: {error}{hint}", EXIT_ENVIRONMENT) from None
    except bce.ReadTimeoutError as error:
        raise CliError(f"{where} did not answer in time: {error}", EXIT_ENVIRONMENT) from None
    except bce.NoCredentialsError:
        raise CliError(
            "no AWS credentials: configure them (aws configure, AWS_PROFILE, ...) or use --endpoint with the emulator",
            EXIT_ENVIRONMENT,
        ) from None
    except bce.NoRegionError:
        raise CliError("no AWS region: pass --region or set AWS_REGION", EXIT_ENVIRONMENT) from None
    except bce.ParamValidationError as error:
        raise CliError(f"invalid request{f' for {subject}' if subject else ''}: {error}", EXIT_USAGE) from None
    except bce.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
        if code in ("ExecutionDoesNotExist", "ResourceNotFound"):
            raise CliError(f"no such execution at {where}: {subject or message}", EXIT_USAGE) from None
        if code == "InvalidArn":
            raise CliError(f"not a valid ARN: {subject or message}", EXIT_USAGE) from None
        if code == "StateMachineDoesNotExist":
            raise CliError(f"no such state machine at {where}: {message}", EXIT_ENVIRONMENT) from None
        if code == "ExecutionAlreadyExists":
            raise CliError(f"an execution with that name already exists: {message}", EXIT_USAGE) from None
        raise CliError(f"{where} refused {subject or 'the request'}: {code}: {message}", EXIT_ENVIRONMENT) from None
    except bce.BotoCoreError as error:
        raise CliError(f"AWS client error talking to {where}: {error}", EXIT_ENVIRONMENT) from None


# --- drill ------------------------------------------------------------------------------------
def _drill(args: argparse.Namespace) -> int:
    app = _valid_app(args.app)
    aws = Aws.from_args(args)
    _require_registered(aws, app, args.table)
    state_machine = aws.state_machine_arn()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    name = f"drill-{app[: 80 - len('drill--') - len(stamp)]}-{stamp}"
    payload = {"kind": "drill", "app": app, "reason": args.reason, "requested_by": _requester(), "force": args.force}
    sfn = aws.client("stepfunctions")
    with aws_errors(aws, f"start of drill {name}"):
        arn = str(
            sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(payload))["executionArn"]
        )
    print(f"drill of {app} started: {arn}")
    if not args.wait:
        print(f"follow it with: swr show {arn}{_where_flags(args)}")
        return EXIT_OK
    described = _wait_for_execution(aws, arn, args.timeout)
    timeline = _timeline(aws, arn, args.warp)
    _print_lines(timeline.render())
    _print_lines(indented(_summary(described), "result: ", "        "))
    return (
        EXIT_OK
        if described["status"] == "SUCCEEDED" and _output(described).get("outcome") == "recovered"
        else EXIT_FAILED
    )


def _wait_for_execution(aws: Aws, arn: str, timeout: float) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    interval = 0.2 if aws.endpoint else 2.0
    while True:
        with aws_errors(aws, arn):
            described = dict(sfn.describe_execution(executionArn=arn))
            for event in fetch_history(sfn, arn):
                details = event.get("stateEnteredEventDetails")
                if details and int(event["id"]) not in seen:
                    seen.add(int(event["id"]))
                    print(f"  ... {details.get('name')}", flush=True)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise CliError(f"still running after {timeout:.0f} s: {arn}", EXIT_FAILED)
        time.sleep(interval)


def _requester() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _where_flags(args: argparse.Namespace) -> str:
    flags = ""
    if args.endpoint:
        flags += f" --endpoint {args.endpoint}"
    if args.region:
        flags += f" --region {args.region}"
    if args.warp != 1.0:
        flags += f" --warp {args.warp:g}"
    return flags


def _valid_app(app: str) -> str:
    if not APP_PATTERN.match(app):
        raise CliError(f"not an application name: {app!r} (letters, digits, '.', '_', '-'; up to 64)", EXIT_USAGE)
    return app


def _table(option: str | None) -> str:
    return option or os.environ.get("SWR_TABLE_NAME") or DEFAULT_TABLE


def _registered(aws: Aws, app: str, table_option: str | None) -> bool:
    table = _table(table_option)
    dynamodb = aws.client("dynamodb")
    with aws_errors(aws, f"read of {app!r} from table {table}"):
        try:
            item = dynamodb.get_item(TableName=table, Key={"app": {"S": app}}, ProjectionExpression="app")
        except dynamodb.exceptions.ResourceNotFoundException:
            raise CliError(
                f"no table {table} at {aws.where}: pass --table (or set SWR_TABLE_NAME)", EXIT_ENVIRONMENT
            ) from None
    return "Item" in item


def _require_registered(aws: Aws, app: str, table_option: str | None) -> None:
    if _registered(aws, app, table_option):
        return
    table = _table(table_option)
    known = _known_apps(aws, table)
    listed = f"; registered: {', '.join(known)}" if known else "; no application is registered"
    raise CliError(f"unknown application {app!r}: no record in table {table}{listed}", EXIT_USAGE)


def _known_apps(aws: Aws, table: str) -> list[str]:
    with aws_errors(aws, f"scan of table {table}"):
        items = aws.client("dynamodb").scan(TableName=table, ProjectionExpression="app", Limit=50).get("Items", [])
    return sorted(str(item["app"]["S"]) for item in items if "S" in item.get("app", {}))


# --- executions ---------------------------------------------------------------------------------
def _executions(args: argparse.Namespace) -> int:
    app = _valid_app(args.app)
    aws = Aws.from_args(args)
    sfn = aws.client("stepfunctions")
    state_machine = aws.state_machine_arn()
    listed: list[dict[str, Any]] = []
    with aws_errors(aws, "list of executions"):
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine):
            listed.extend(page.get("executions", []))
            if len(listed) >= args.scan:
                break
    listed.sort(key=lambda e: e["startDate"], reverse=True)
    rows: list[dict[str, Any]] = []
    for execution in listed[: args.scan]:
        arn = str(execution["executionArn"])
        with aws_errors(aws, arn):
            described = dict(sfn.describe_execution(executionArn=arn))
            if not _concerns(sfn, described, app):
                continue
        rows.append(_row(described, args.warp))
        if len(rows) >= args.limit:
            break
    if not rows and not _registered(aws, app, args.table):
        raise CliError(f"unknown application {app!r}: no record in table {_table(args.table)} and no executions")
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    if not rows:
        print(f"no executions concern {app} among the {len(listed)} most recent of {state_machine}")
        return EXIT_OK
    _print_lines(_table_lines(rows))
    return EXIT_OK


def _concerns(sfn: Any, described: dict[str, Any], app: str) -> bool:
    """Whether the execution is about APP: by its input (a drill, an RMS fault event, a
    heartbeat alarm's App dimension), by what Admit decided, or by its output."""
    trigger = _json_object(described.get("input"))
    if _trigger_app(trigger) == app or _output(described).get("app") == app:
        return True
    if described["status"] == "SUCCEEDED":
        return False  # a finished execution's output names its app when Admit knew it
    # Failed or still running: Admit's result is in the history (an alarm or EC2 event
    # names an instance, and only Admit knows whose it is).
    for event in fetch_history(sfn, str(described["executionArn"])):
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") == "Admit":
            return bool(_json_object(exited.get("output")).get("app") == app)
    return False


def _trigger_app(trigger: dict[str, Any]) -> str | None:
    if trigger.get("kind") == "drill":
        return str(trigger.get("app"))
    detail = trigger.get("detail")
    if not isinstance(detail, dict):
        return None
    if detail.get("app"):
        return str(detail["app"])
    for metric in (detail.get("configuration") or {}).get("metrics") or []:
        dimensions = ((metric or {}).get("metricStat") or {}).get("metric", {}).get("dimensions") or {}
        if dimensions.get("App"):
            return str(dimensions["App"])
    return None


def _trigger_kind(trigger: dict[str, Any]) -> str:
    if trigger.get("kind") == "drill":
        return "drill"
    detail_type = str(trigger.get("detail-type", ""))
    return {
        "RMS Fault": "rms-fault",
        "CloudWatch Alarm State Change": "alarm",
        "EC2 Instance State-change Notification": "ec2-state",
    }.get(detail_type, detail_type or "?")


def _row(described: dict[str, Any], warp: float = 1.0) -> dict[str, Any]:
    started: datetime = described["startDate"]
    stopped: datetime | None = described.get("stopDate")
    end = stopped or datetime.now(started.tzinfo or UTC)
    return {
        "name": described.get("name"),
        "execution_arn": described["executionArn"],
        "status": described["status"],
        "started_at": started.astimezone(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round((end - started).total_seconds() * warp, 1),
        "trigger": _trigger_kind(_json_object(described.get("input"))),
        "result": _summary(described),
    }


def _summary(described: dict[str, Any]) -> str:
    """The decision or the outcome, in a few words."""
    status = described["status"]
    output = _output(described)
    if status == "SUCCEEDED":
        if output.get("outcome") == "recovered":
            return f"recovered on {output.get('new_instance_id')} in {output.get('new_az')}"
        if output.get("decision"):
            return f"{output['decision']}: {output.get('reason', '')}".rstrip(": ")
        return "succeeded"
    if status == "RUNNING":
        return "running"
    return f"{status.lower()}: {describe_failure(described.get('error'), described.get('cause'))}"


def _table_lines(rows: list[dict[str, Any]]) -> list[str]:
    headers = ("STARTED (UTC)", "STATUS", "DURATION", "TRIGGER", "NAME", "RESULT")
    cells = [
        (
            r["started_at"].replace("+00:00", "Z"),
            r["status"],
            f"{r['duration_seconds']:.1f}s",
            r["trigger"],
            str(r["name"]),
            _shorten(r["result"], 100),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return lines


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- show ---------------------------------------------------------------------------------------
def _show(args: argparse.Namespace) -> int:
    given = str(args.execution).strip()
    match = EXECUTION_ARN.match(given)
    if given.startswith("arn:") and not match:
        raise CliError(
            f"not an execution ARN: {given!r} (expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)"
        )
    if not match and not EXECUTION_NAME.match(given):
        raise CliError(f"neither an execution ARN nor an execution name: {given!r}")
    aws = Aws.from_args(args, region_hint=match.group("region") if match else None)
    arn = given if match else _arn_of_name(aws.state_machine_arn(), given)
    timeline = _timeline(aws, arn, args.warp)
    if args.json:
        print(timeline.model_dump_json(indent=2))
    else:
        _print_lines(_show_lines(timeline))
    return EXIT_OK


def _timeline(aws: Aws, arn: str, warp: float) -> Timeline:
    sfn = aws.client("stepfunctions")
    with aws_errors(aws, arn):
        described = sfn.describe_execution(executionArn=arn)
        events = fetch_history(sfn, arn)
    to_simulated: ToSimulated | None = None
    if warp != 1.0:
        # An emulator endpoint runs warped; anchored at the execution's start, offsets and
        # durations come out in its simulated seconds.
        start = described["startDate"].timestamp()

        def to_simulated(wall: datetime) -> float:
            return start + (wall.timestamp() - start) * warp

    return build_timeline(described, events, to_simulated)


def _arn_of_name(state_machine_arn: str, name: str) -> str:
    # arn:aws:states:R:A:stateMachine:M -> arn:aws:states:R:A:execution:M:NAME
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _show_lines(timeline: Timeline) -> list[str]:
    started = timeline.started_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    lines = [f"{timeline.execution_arn}", f"started {started}"]
    trigger = timeline.input if isinstance(timeline.input, dict) else {}
    lines.append(
        f"trigger: {_trigger_kind(trigger)}" + (f" for {_trigger_app(trigger)}" if _trigger_app(trigger) else "")
    )
    lines += timeline.render()
    output = timeline.output if isinstance(timeline.output, dict) else {}
    if output.get("decision"):
        lines.append(f"  decision: {output['decision']}: {output.get('reason', '')}")
    elif output.get("outcome"):
        lines.append(
            f"  outcome: {output['outcome']}: {output.get('old_instance_id')} ({output.get('old_az')})"
            f" -> {output.get('new_instance_id')} ({output.get('new_az')})"
        )
    return lines


# --- demo ---------------------------------------------------------------------------------------
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


class _Progress:
    """Live progress of the demo: the states each execution enters, in simulated seconds
    since the fault. Executions that Admit turned away get one line, not their states."""

    def __init__(self, emu: Any, t0: float, out: TextIO | None) -> None:
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
        if self.out is not None:
            print(f"  t+{at - self.t0:7.1f}s  {text}", file=self.out, flush=True)

    def poll(self, final: bool = False) -> None:
        """Print what happened up to the start of this poll, in time order. Reading takes
        wall time, which the warp turns into simulated seconds; lines later than the start
        wait for the next poll, so that nothing that happened earlier comes after them."""
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
        trigger = _trigger_kind(_json_object(described.get("input")))
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
                admission = _json_object(exited.get("output"))
                if admission.get("decision") not in (None, "proceed"):
                    self.turned_away.add(arn)
                    reason = f"{admission['decision']}: {admission.get('reason', '')}"
                    for other, other_label in self.labels.items():  # "execution arn:..." -> "execution #2"
                        reason = reason.replace(other, other_label)
                    reason = _shorten(reason, 110)
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


def _demo(args: argparse.Namespace) -> int:
    emulator_class = _load_emulator()
    started = time.monotonic()
    with _stdout_kept_for_us(args.verbose) as stdout:
        report, timeline = _run_demo(args, emulator_class, None if args.json else stdout)
    report["outcome"] = "recovered" if _recovered(report) else "failed"
    report["scenario"] = args.scenario
    report["api_fault_rate"] = args.api_fault_rate
    report["warp"] = args.warp
    report["wall_seconds"] = round(time.monotonic() - started, 2)
    report["steps"] = [s.model_dump(mode="json") for s in timeline.steps] if timeline else []
    report.setdefault("invariant_violations", [])
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print()
        if timeline is not None:
            _print_lines(timeline.render())
            print()
        _print_lines(_outcome_lines(report))
    return EXIT_OK if report["outcome"] == "recovered" else EXIT_FAILED


def _run_demo(
    args: argparse.Namespace, emulator_class: Any, out: TextIO | None
) -> tuple[dict[str, Any], Timeline | None]:
    def say(text: str = "") -> None:
        if out is not None:
            print(text, file=out, flush=True)

    with emulator_class(warp=args.warp) as emu:
        old_id, old_az = _current_instance(emu)
        say(f"swr demo: scenario {args.scenario}, time warp x{args.warp:g} (times below are simulated seconds)")
        if getattr(emu, "deployment", None) is not None:
            say(f"  stack {_stack_line(emu)}")
        say(f"  app {emu.app} registered by swr register: runs on {old_id} in {old_az}, target healthy, data on EFS")
        say()
        t0 = float(emu.clock.now())
        progress = _Progress(emu, t0, out)
        progress.say(t0, f"inject {args.scenario}")
        if args.api_fault_rate:
            emu.inject_api_faults(args.api_fault_rate)
            progress.say(
                t0, f"inject API faults: throttling {args.api_fault_rate:.0%}, 5xx {args.api_fault_rate / 2:.0%}"
            )
        emu.inject(args.scenario)
        arn = _await_failover(emu, progress, args.timeout)
        if arn is not None:
            # Let the executions the failover itself caused (its own terminate) finish, so the
            # invariants are judged on a quiet world; if one is still running, report anyway.
            with contextlib.suppress(TimeoutError):
                emu.wait_until_settled(timeout=max(10.0, args.timeout / 4))
            progress.poll(final=True)
            report = dict(emu.report(arn))
            timeline: Timeline | None = fetch_timeline(emu.boto3_client("stepfunctions"), arn, emu.clock.to_simulated)
        else:
            progress.poll(final=True)
            report = {
                "outcome": "failed",
                "execution_arn": None,
                "old": {"instance_id": old_id, "az": old_az},
                "new": None,
                "new_target_health": None,
                "efs_data_preserved": False,
                "simulated_rto_seconds": None,
                "error": "Timeout",
                "cause": f"no failover finished within {args.timeout:g} wall seconds",
            }
            timeline = None
    return report, timeline


def _await_failover(emu: Any, progress: _Progress, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        progress.poll()
        try:
            # A short wait at a time, so progress is shown while the failover runs.
            arn = str(emu.wait_for_failover(timeout=0.2))
        except TimeoutError:
            if time.monotonic() > deadline:
                return None
            continue
        progress.poll()
        return arn


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
    lines = [f"outcome: {'RECOVERED' if recovered else 'NOT RECOVERED'}"]
    lines.append(f"  old instance   {old.get('instance_id', '?')} in {old.get('az', '?')}")
    if new:
        lines.append(f"  new instance   {new.get('instance_id')} in {new.get('az')}")
    else:
        lines.append("  new instance   none")
    lines.append(f"  target health  {report.get('new_target_health') or '-'}")
    preserved = report.get("efs_data_preserved")
    lines.append(f"  EFS data       {'preserved' if preserved else 'NOT preserved'}")
    rto = report.get("simulated_rto_seconds")
    rto_text = f"{rto:.1f} s simulated" if isinstance(rto, int | float) else "-"
    took = "recovery time  " if recovered else "ended after    "
    lines.append(f"  {took}{rto_text} from the fault ({report.get('wall_seconds', 0):.1f} s wall)")
    violations = report.get("invariant_violations") or []
    lines.append("  safety         " + ("held" if not violations else "VIOLATED: " + "; ".join(violations)))
    if not recovered and (report.get("error") or report.get("cause")):
        lines.append(f"  error          {report.get('error') or '-'}")
        lines += indented(readable_cause(report.get("cause")) or "-", "  cause          ", " " * 17)
    if report.get("execution_arn"):
        lines.append(f"  execution      {report['execution_arn']}")
    return lines


# --- emulator server ------------------------------------------------------------------------------
def _emulator(args: argparse.Namespace) -> int:
    emulator_class = _load_emulator()
    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with emulator_class(warp=args.warp, protect=not args.unprotected) as emu:
            try:
                endpoint = str(emu.start_server(port=args.port))
            except OSError as error:
                raise CliError(
                    f"cannot serve on 127.0.0.1:{args.port}: {error} (try --port 0)", EXIT_ENVIRONMENT
                ) from None
            banner = _unprotected_banner if args.unprotected else _server_banner
            _print_lines(banner(emu, endpoint, args.warp))
            with _stdout_kept_for_us(args.verbose) as stdout:  # the handlers' metrics lines
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
        f"    --efs {world.file_system_id} --mount-point /srv/demo/shared --subnets {' '.join(subnets)}",
        f"  swr drill {app} {where} --warp {warp:g} --wait",
        "",
        "Ctrl-C or SIGTERM stops it.",
    ]


def _stack_line(emu: Any) -> str:
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
    where = f"--endpoint {endpoint} --region {region} --warp {warp:g}"
    return [
        f"swr emulator: serving on {endpoint} (loopback only)",
        f"  region          {region}",
        f"  state machine   {machine}",
        f"  record table    {table}",
        f"  stack           {_stack_line(emu)}",
        f"  application     {app} (registered by swr register; running and healthy)",
        f"  time warp       x{warp:g} (simulated seconds per wall second)",
        "",
        "swr against it:",
        f"  swr drill {app} {where} --wait",
        f"  swr executions {app} {where}",
        f"  swr show EXECUTION_ARN {where}",
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


# --- onboarding ---------------------------------------------------------------------------------
def _onboarding_commands(
    command: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser],
) -> None:
    from swr.stack import DEFAULT_STACK_NAME

    def where(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("where")
        group.add_argument("--endpoint", metavar="URL", help="AWS API endpoint, e.g. the emulator's (default: AWS)")
        group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
        group.add_argument(
            "--stack-name", default=DEFAULT_STACK_NAME, help=f"the deployed swr stack to use ({DEFAULT_STACK_NAME})"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.set_defaults(state_machine_arn=None)  # Aws.from_args reads it; onboarding needs no state machine

    register = command("register", _register, "Protect APP: validate, tag, create its alarms and write its record.")
    register.add_argument("app", metavar="APP")
    register.add_argument("--instance", required=True, metavar="ID", help="the instance that runs APP now")
    register.add_argument(
        "--target-group", required=True, action="append", metavar="ARN", help="a target group of APP (repeatable)"
    )
    register.add_argument("--efs", required=True, metavar="FS", help="the EFS file system with APP's shared data")
    register.add_argument("--mount-point", default="/mnt/swr", help="where the boot gate mounts it (/mnt/swr)")
    register.add_argument(
        "--subnets", required=True, nargs="+", metavar="SUBNET", help="subnets to run in, in order of preference"
    )
    register.add_argument(
        "--instance-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="a fallback instance type after the instance's own (repeatable)",
    )
    register.add_argument("--health-timeout", type=_positive_int, default=600, help="seconds to become healthy (600)")
    register.add_argument(
        "--create-ami", action="store_true", help="launch replacements from a new AMI of the instance (no reboot)"
    )
    where(register)

    unregister = command("unregister", _unregister, "Stop protecting APP: remove its alarms, swr tags and record.")
    unregister.add_argument("app", metavar="APP")
    unregister.add_argument("--force", action="store_true", help="even while a failover of APP is running")
    where(unregister)

    ami = command("ami", _ami_refresh, "Manage the AMI replacements of an application launch from.")
    actions = ami.add_subparsers(dest="ami_action", metavar="ACTION", required=True)
    refresh_help = "Make a new AMI from APP's current instance (no reboot) and launch replacements from it."
    refresh = actions.add_parser("refresh", help=refresh_help, description=refresh_help)
    refresh.add_argument("app", metavar="APP")
    # SUPPRESS: an unset -v here must not override `swr ami -v refresh`.
    refresh.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show logs")
    where(refresh)


def _stack_outputs(aws: Aws, stack_name: str) -> Any:
    from swr.stack import StackNotReady, read_outputs

    with aws_errors(aws, f"stack {stack_name}"):
        try:
            return read_outputs(aws.client("cloudformation"), stack_name)
        except StackNotReady as error:
            raise CliError(str(error), EXIT_ENVIRONMENT) from None


@contextmanager
def _onboarding_errors(aws: Aws) -> Iterator[None]:
    from handlers.core.errors import SwrError
    from swr import onboarding

    with aws_errors(aws):
        try:
            yield
        except (onboarding.RegistrationInvalid, onboarding.NotRegistered) as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except onboarding.OnboardingError as error:  # refused while switching, or failed and undone
            raise CliError(str(error), EXIT_FAILED) from None
        except SwrError as error:  # throttled or unavailable after retries
            raise CliError(str(error), EXIT_ENVIRONMENT) from None


def _register(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from swr import onboarding

    app = _valid_app(args.app)
    try:
        registration = onboarding.Registration(
            app=app,
            instance_id=args.instance,
            target_group_arns=args.target_group,
            file_system_id=args.efs,
            mount_point=args.mount_point,
            subnet_ids=args.subnets,
            extra_instance_types=args.instance_type,
            health_timeout_seconds=args.health_timeout,
            create_ami=args.create_ami,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CliError(f"invalid registration: {problems}", EXIT_USAGE) from None
    aws = Aws.from_args(args)
    stack = _stack_outputs(aws, args.stack_name)
    with _onboarding_errors(aws):
        result = onboarding.register(aws.client, stack, registration)
    if args.json:
        print(json.dumps({"actions": result.actions, "record": result.record.model_dump(mode="json")}, indent=2))
    else:
        _print_lines(result.actions)
    return EXIT_OK


def _unregister(args: argparse.Namespace) -> int:
    from swr import onboarding

    app = _valid_app(args.app)
    aws = Aws.from_args(args)
    stack = _stack_outputs(aws, args.stack_name)
    with _onboarding_errors(aws):
        result = onboarding.unregister(aws.client, stack, app, force=args.force)
    if args.json:
        print(json.dumps({"actions": result.actions, "leftovers": result.leftovers}, indent=2))
    else:
        _print_lines(result.actions)
        for leftover in result.leftovers:
            print(f"swr unregister: {leftover}", file=sys.stderr)
    return EXIT_FAILED if result.leftovers else EXIT_OK


def _ami_refresh(args: argparse.Namespace) -> int:
    from swr import onboarding

    app = _valid_app(args.app)
    aws = Aws.from_args(args)
    stack = _stack_outputs(aws, args.stack_name)
    with _onboarding_errors(aws):
        result = onboarding.refresh_ami(aws.client, stack, app)
    if args.json:
        print(
            json.dumps(
                {
                    "image_id": result.image_id,
                    "previous_image_id": result.previous_image_id,
                    "version": result.record.version,
                },
                indent=2,
            )
        )
    else:
        print(f"created image {result.image_id} from {result.record.current_instance_id}")
        change = f"image {result.previous_image_id} -> {result.image_id}"
        print(f"updated record {app}: {change} (version {result.record.version})")
    return EXIT_OK


# --- deploy -------------------------------------------------------------------------------------
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
ARTIFACT_PREFIX = "swr"


def _deploy_command(
    command: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser],
) -> None:
    from swr.stack import DEFAULT_STACK_NAME

    deploy = command("deploy", _deploy, "Package the SAM template and deploy it through a CloudFormation change set.")
    deploy.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, help=f"the stack to create or update ({DEFAULT_STACK_NAME})"
    )
    deploy.add_argument(
        "--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template (infra/template.yaml of swr)"
    )
    deploy.add_argument(
        "--parameter",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="a template parameter (repeatable); on an update, parameters not given keep their values",
    )
    deploy.add_argument(
        "--bucket", help="S3 bucket for the artifacts (default: swr-artifacts-ACCOUNT-REGION, created if missing)"
    )
    deploy.add_argument("--yes", action="store_true", help="execute the change set without asking")
    group = deploy.add_argument_group("where")
    group.add_argument("--endpoint", metavar="URL", help="AWS API endpoint, e.g. the emulator's (default: AWS)")
    group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    deploy.set_defaults(state_machine_arn=None)  # Aws.from_args reads it; a deploy needs no state machine


def _key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key.strip(), value


def _deploy(args: argparse.Namespace) -> int:
    from swr import deployer

    template: Path = args.template
    if not template.is_file():
        raise CliError(f"no template at {template}: pass --template", EXIT_USAGE)
    # Without a terminal nobody can answer the prompt; refuse before touching anything.
    if not args.yes and not sys.stdin.isatty():
        raise CliError("stdin is not a terminal, so the change set cannot be confirmed: pass --yes", EXIT_USAGE)
    parameters = dict(args.parameter)
    aws = Aws.from_args(args)
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")

    def say(line: str) -> None:
        print(line, flush=True)

    with aws_errors(aws, f"the deploy of stack {args.stack_name}"):
        try:
            account = str(aws.client("sts").get_caller_identity()["Account"])
            bucket = args.bucket or deployer.default_bucket_name(account, aws.region)
            if not args.bucket:
                deployer.ensure_artifact_bucket(s3, bucket, aws.region, account, say)
            say(f"packaging {template} into s3://{bucket}/{ARTIFACT_PREFIX}/")
            result, _ = deployer.deploy_template(
                template,
                cloudformation,
                s3,
                args.stack_name,
                parameters,
                region=aws.region,
                account_id=account,
                bucket=bucket,
                prefix=ARTIFACT_PREFIX,
                confirm=lambda changes: args.yes or _ask("execute this change set?"),
                progress=say,
                poll_seconds=0.2 if aws.endpoint else 5.0,
            )
        except deployer.TemplateInvalid as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except deployer.DeployFailed as error:
            raise CliError(str(error), EXIT_FAILED) from None
        except deployer.ArtifactBucketUnusable as error:
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
    if result.outcome == "declined":
        return EXIT_FAILED
    if result.outputs:
        say("outputs:")
        width = max(len(key) for key in result.outputs)
        _print_lines([f"  {key.ljust(width)}  {value}" for key, value in sorted(result.outputs.items())])
    return EXIT_OK


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# --- helpers ------------------------------------------------------------------------------------
def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


def _json_object(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _output(described: dict[str, Any]) -> dict[str, Any]:
    return _json_object(described.get("output"))


if __name__ == "__main__":
    sys.exit(main())
