"""Drills and execution inspection: `swr drill`, `swr executions`, `swr show`."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from swr.cli.common import (
    EXECUTION_ARN,
    EXECUTION_NAME,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Command,
    aws_errors,
    endpoint_options,
    json_object,
    output_of,
    positive,
    positive_int,
    print_lines,
    registered,
    requester,
    require_registered,
    shorten,
    valid_app,
    where_flags,
)
from swr.timeline import (
    Timeline,
    ToSimulated,
    build_timeline,
    describe_failure,
    fetch_history,
    indented,
)
from swr.trigger_input import app_of, kind_of


def _drill(args: argparse.Namespace) -> int:
    app = valid_app(args.app)
    if args.dry_run:
        return _rehearse(args, app)
    if args.json:
        raise CliError("--json goes with --dry-run (a started drill prints its execution ARN)")
    aws = Aws.from_args(args)
    require_registered(aws, app, args.table)
    state_machine = aws.state_machine_arn()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    name = f"drill-{app[: 80 - len('drill--') - len(stamp)]}-{stamp}"
    payload = {"kind": "drill", "app": app, "reason": args.reason, "requested_by": requester(), "force": args.force}
    sfn = aws.client("stepfunctions")
    with aws_errors(aws, f"start of drill {name}"):
        arn = str(
            sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(payload))["executionArn"]
        )
    print(f"drill of {app} started: {arn}")
    if not args.wait:
        print(f"follow it with: swr show {arn}{where_flags(args)}")
        return EXIT_OK
    described = wait_for_execution(aws, arn, args.timeout)
    timeline = timeline_of(aws, arn, args.warp)
    print_lines(timeline.render())
    print_lines(indented(summary(described), "result: ", "        "))
    return (
        EXIT_OK
        if described["status"] == "SUCCEEDED" and output_of(described).get("outcome") == "recovered"
        else EXIT_FAILED
    )


def _rehearse(args: argparse.Namespace, app: str) -> int:
    """`swr drill APP --dry-run`: what a drill would do now and what would stop it; changes nothing."""
    from handlers.core.errors import SwrError
    from swr import rehearsal

    if args.wait:
        raise CliError("--dry-run changes nothing, so there is nothing to --wait for")
    aws = Aws.from_args(args)
    stack = aws.outputs()
    with aws_errors(aws, f"rehearsal of a drill of {app}"):
        try:
            found = rehearsal.rehearse(aws.client, stack, app, force=args.force)
        except rehearsal.NotRegistered as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except SwrError as error:  # throttled or unavailable after retries
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
    if args.json:
        print(
            json.dumps(
                {**found.model_dump(mode="json"), "steps": found.steps(), "would_proceed": found.would_proceed},
                indent=2,
            )
        )
    else:
        print_lines(_rehearsal_lines(found))
    return EXIT_OK if found.would_proceed else EXIT_FAILED


def _rehearsal_lines(found: Any) -> list[str]:
    mode = " --force" if found.force else ""
    lines = [f"rehearsal of `swr drill {found.app}{mode}` (dry run: nothing was changed)", "what would happen:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(found.steps(), start=1)]
    lines.append("checks:")
    lines += [f"  {check.status.value:<8} {check.name}: {check.detail}" for check in found.checks]
    if not found.admit.proceeds:
        lines.append(f"result: a drill would be turned away: {found.admit.reason}")
    elif found.problems:
        names = ", ".join(check.name for check in found.problems)
        lines.append(
            f"result: a drill would be admitted but fail or be unsafe: {len(found.problems)} problem(s): {names}"
        )
    else:
        lines.append("result: a drill would proceed; every check passed")
    return lines


def wait_for_execution(aws: Aws, arn: str, timeout: float) -> dict[str, Any]:
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


def _executions(args: argparse.Namespace) -> int:
    app = valid_app(args.app)
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
    if not rows and not registered(aws, app, args.table):
        raise CliError(f"unknown application {app!r}: no record in table {aws.table(args.table)} and no executions")
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    if not rows:
        print(f"no executions concern {app} among the {len(listed)} most recent of {state_machine}")
        return EXIT_OK
    print_lines(_table_lines(rows))
    return EXIT_OK


def _concerns(sfn: Any, described: dict[str, Any], app: str) -> bool:
    """Whether the execution is about APP: by its input (a drill, an RMS fault event, a
    heartbeat alarm's App dimension), by what Admit decided, or by its output."""
    trigger = json_object(described.get("input"))
    if app_of(trigger) == app or output_of(described).get("app") == app:
        return True
    if described["status"] == "SUCCEEDED":
        return False  # a finished execution's output names its app when Admit knew it
    # Failed or still running: Admit's result is in the history (an alarm or EC2 event
    # names an instance, and only Admit knows whose it is).
    for event in fetch_history(sfn, str(described["executionArn"])):
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") == "Admit":
            return bool(json_object(exited.get("output")).get("app") == app)
    return False


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
        "trigger": kind_of(json_object(described.get("input"))),
        "result": summary(described),
    }


def summary(described: dict[str, Any]) -> str:
    """The decision or the outcome, in a few words."""
    status = described["status"]
    output = output_of(described)
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
            shorten(r["result"], 100),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return lines


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
    timeline = timeline_of(aws, arn, args.warp)
    if args.json:
        print(timeline.model_dump_json(indent=2))
    else:
        print_lines(_show_lines(timeline))
    return EXIT_OK


def timeline_of(aws: Aws, arn: str, warp: float) -> Timeline:
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
    lines.append(f"trigger: {kind_of(trigger)}" + (f" for {app_of(trigger)}" if app_of(trigger) else ""))
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


def register(command: Command) -> None:
    drill = command("drill", _drill, "Start a manual failover (a drill) of APP.")
    drill.add_argument("app", metavar="APP")
    drill.add_argument("--reason", default="drill", help="why; recorded in the trigger (drill)")
    drill.add_argument("--force", action="store_true", help="fail over even when APP is in maintenance mode")
    drill.add_argument("--wait", action="store_true", help="wait for the execution to finish and show its timeline")
    drill.add_argument("--timeout", type=positive, default=1800.0, help="wall seconds --wait waits (1800)")
    drill.add_argument(
        "--dry-run",
        action="store_true",
        help="rehearse: show what a drill would do and check what it needs, changing nothing"
        " (exit 0 it would proceed, 1 it would be refused or a check failed)",
    )
    drill.add_argument("--json", action="store_true", help="with --dry-run: print the rehearsal as JSON")
    endpoint_options(drill, table=True)

    executions = command("executions", _executions, "List recent executions of the failover that concern APP.")
    executions.add_argument("app", metavar="APP")
    executions.add_argument("--limit", type=positive_int, default=10, help="how many to show (10)")
    executions.add_argument("--scan", type=positive_int, default=300, help="how many recent executions to look at")
    executions.add_argument("--json", action="store_true", help="print a JSON list")
    endpoint_options(executions, table=True)

    show = command("show", _show, "Show the step timeline of one execution, with durations, errors and causes.")
    show.add_argument("execution", metavar="EXECUTION_ARN", help="an execution ARN, or an execution name")
    show.add_argument("--json", action="store_true", help="print the timeline as JSON")
    endpoint_options(show, table=False)
