"""Drills and execution inspection: `swr drill`, `swr executions`, `swr show`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Where,
    aws_errors,
    command,
    connect_to_execution,
    registered,
    requester,
    require_registered,
    shorten,
    where_flags,
)
from swr.cli.options import (
    App,
    Execution,
    Json,
    Timeout,
)
from swr.cli.output import Progress, print_json, print_lines, print_table, progress, say_parts, styled
from swr.ops import executions as ops
from swr.timeline import (
    Timeline,
    describe_failure,
    ending,
    heading,
    indented,
    seconds_text,
    shows_failure,
    status_text,
)


def register(app: typer.Typer) -> None:
    everything = ("endpoint", "region", "stack_name", "state_machine_arn", "table", "warp")
    command(app, "drill", "Start a manual failover (a drill) of APP.", where=everything)(_drill)
    command(app, "executions", "List recent executions of the failover that concern APP.", where=everything)(
        _executions
    )
    command(
        app,
        "show",
        "Show the step timeline of one execution, with durations, errors and causes.",
        where=("endpoint", "region", "stack_name", "state_machine_arn", "warp"),
    )(_show)


# --- drill --------------------------------------------------------------------------------------
def _drill(
    app: App,
    reason: Annotated[str, typer.Option(help="why; recorded in the trigger")] = "drill",
    force: Annotated[bool, typer.Option("--force", help="fail over even when APP is in maintenance mode")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="wait for the execution to finish and show its timeline")
    ] = False,
    timeout: Timeout = 1800.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="rehearse: show what a drill would do and check what it needs, changing nothing"
            " (exit 0 it would proceed, 1 it would be refused or a check failed)",
        ),
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="with --dry-run: print the rehearsal as JSON")] = False,
    *,
    where: Where,
) -> int:
    if dry_run:
        if wait:
            raise CliError("--dry-run changes nothing, so there is nothing to --wait for")
        return _rehearse(where, app, force=force, as_json=json)
    if json:
        raise CliError("--json goes with --dry-run (a started drill prints its execution ARN)")
    aws = Aws.connect(where)
    require_registered(aws, app, where.table)
    state_machine = aws.state_machine_arn()
    sfn = aws.client("stepfunctions")
    with aws_errors(aws, f"start of a drill of {app}"):
        arn = ops.start_drill(
            sfn, state_machine, app, reason=reason, requested_by=requester(), force=force, now=datetime.now(UTC)
        )
    print(f"drill of {app} started: {arn}", flush=True)
    if not wait:
        print(f"follow it with: swr show {arn}{where_flags(where)}")
        return EXIT_OK
    described = wait_for_execution(aws, arn, timeout)
    print_lines(timeline_of(aws, arn, where.warp).render())
    print_lines(indented(ops.summary(described), "result: ", "        "))
    return EXIT_OK if ops.recovered(described) else EXIT_FAILED


def _rehearse(where: Where, app: str, *, force: bool, as_json: bool) -> int:
    """`swr drill APP --dry-run`: what a drill would do now and what would stop it; changes nothing."""
    from handlers.core.errors import SwrError
    from swr.ops import rehearsal

    aws = Aws.connect(where)
    stack = aws.outputs()
    with aws_errors(aws, f"rehearsal of a drill of {app}"):
        try:
            found = rehearsal.rehearse(aws.client, stack, app, force=force)
        except rehearsal.NotRegistered as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except SwrError as error:  # throttled or unavailable after retries
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
    if as_json:
        print_json({**found.model_dump(mode="json"), "steps": found.steps(), "would_proceed": found.would_proceed})
    else:
        _print_rehearsal(found)
    return EXIT_OK if found.would_proceed else EXIT_FAILED


def _print_rehearsal(found: Any) -> None:
    mode = " --force" if found.force else ""
    print(f"rehearsal of `swr drill {found.app}{mode}` (dry run: nothing was changed)")
    print("what would happen:")
    print_lines([f"  {n}. {step}" for n, step in enumerate(found.steps(), start=1)])
    print("checks:")
    for check in found.checks:
        say_parts(
            "  ", (f"{check.status.value:<8}", _CHECK_STYLES.get(check.status.value)), f" {check.name}: {check.detail}"
        )
    if not found.admit.proceeds:
        print(f"result: a drill would be turned away: {found.admit.reason}")
    elif found.problems:
        names = ", ".join(check.name for check in found.problems)
        print(f"result: a drill would be admitted but fail or be unsafe: {len(found.problems)} problem(s): {names}")
    else:
        print("result: a drill would proceed; every check passed")


_CHECK_STYLES = {"ok": "green", "warning": "yellow", "problem": "bold red"}


def wait_for_execution(aws: Aws, arn: str, timeout: float) -> dict[str, Any]:
    """Wait for the execution, naming each state it enters; a live line on a terminal."""
    sfn = aws.client("stepfunctions")
    with progress(f"waiting for {arn}") as live, aws_errors(aws, arn):
        try:
            return ops.wait_for(
                sfn, arn, timeout=timeout, interval=0.2 if aws.endpoint else 2.0, on_state=_announcer(live)
            )
        except ops.StillRunning as error:
            raise CliError(str(error), EXIT_FAILED) from None


def _announcer(live: Progress) -> Any:
    def announce(state: str) -> None:
        live.echo(f"  ... {state}")
        live.update(f"in {state}")

    return announce


def timeline_of(aws: Aws, arn: str, warp: float | None) -> Timeline:
    with aws_errors(aws, arn):
        return ops.timeline_of(aws.client("stepfunctions"), arn, aws.time_warp(warp))


# --- executions ---------------------------------------------------------------------------------
def _executions(
    app: App,
    limit: Annotated[int, typer.Option(min=1, help="how many to show")] = 10,
    scan: Annotated[int, typer.Option(min=1, help="how many recent executions to look at")] = 300,
    json: Json = False,
    *,
    where: Where,
) -> int:
    aws = Aws.connect(where)
    state_machine = aws.state_machine_arn()
    with aws_errors(aws, "list of executions"):
        rows, looked_at = ops.recent_executions(
            aws.client("stepfunctions"), state_machine, app, scan=scan, limit=limit, warp=aws.time_warp(where.warp)
        )
    if not rows and not registered(aws, app, where.table):
        raise CliError(f"unknown application {app!r}: no record in table {aws.table(where.table)} and no executions")
    if json:
        print_json(rows)
    elif not rows:
        print(f"no executions concern {app} among the {looked_at} most recent of {state_machine}")
    else:
        print_table(
            ("STARTED (UTC)", "STATUS", "DURATION", "TRIGGER", "NAME", "RESULT"),
            [
                (
                    r.started_at.replace("+00:00", "Z"),
                    r.status,
                    f"{r.duration_seconds:.1f}s",
                    r.trigger,
                    str(r.name),
                    shorten(r.result, 100),
                )
                for r in rows
            ],
        )
    return EXIT_OK


# --- show ---------------------------------------------------------------------------------------
def _show(
    execution: Execution,
    json: Json = False,
    *,
    where: Where,
) -> int:
    aws, arn = connect_to_execution(where, execution)
    timeline = timeline_of(aws, arn, where.warp)
    if json:
        print_json(timeline)
        return EXIT_OK
    started = timeline.started_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    print_lines([timeline.execution_arn, f"started {started}", ops.trigger_line(timeline), heading(timeline)])
    _print_steps(timeline)
    print_lines(ending(timeline))
    outcome = ops.ending_line(timeline)
    if outcome:
        print(outcome)
    return EXIT_OK


def _print_steps(timeline: Timeline) -> None:
    """The states as a table; a failed or caught state's error and cause are its result."""
    rows = []
    for step in timeline.steps:
        result = status_text(step)
        if shows_failure(step):
            result += f": {describe_failure(step.error, step.cause)}"
        rows.append(
            (
                f"  +{step.offset_seconds:.1f}s",
                "  " * step.depth + step.name,
                Text(seconds_text(step.duration_seconds), justify="right"),
                styled(" ".join(result.split()), _STEP_STYLES.get(step.status.value)),
            )
        )
    print_table(("  OFFSET", "STATE", "DURATION", "RESULT"), rows)


_STEP_STYLES = {"ok": "green", "caught": "yellow", "failed": "bold red", "aborted": "yellow", "running": "cyan"}
