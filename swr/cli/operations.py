"""Day-two operations: `swr status`, `swr maintenance`, `swr resume`."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Where,
    command,
    connect_to_stack,
    operation_errors,
    requester,
    shorten,
    where_flags,
)
from swr.cli.executions import timeline_of, wait_for_execution
from swr.cli.options import DEFAULT_STACK_NAME, App, Json, Timeout, app_name
from swr.cli.output import print_json, print_lines, print_table
from swr.ops import executions as ops


def register(app: typer.Typer) -> None:
    command(
        app,
        "status",
        "Show every protected application: state, instance, lease, last failover.",
        where=("endpoint", "region"),
    )(_status)
    command(
        app,
        "maintenance",
        "Suspend (on) or resume (off) automatic failover of APP while people work on it.",
        where=("endpoint", "region", "stack_name"),
    )(_maintenance)
    command(
        app,
        "resume",
        "Continue the failover of APP that stopped before it finished.",
        where=("endpoint", "region", "stack_name", "warp"),
    )(_resume)


# --- status -------------------------------------------------------------------------------------
def _apps(values: list[str] | None) -> list[str]:
    return [app_name(value) for value in values or []]


def _status(
    apps: Annotated[
        list[str] | None,
        typer.Argument(callback=_apps, help="only these applications (default: all)", show_default=False),
    ] = None,
    json: Json = False,
    stack_name: Annotated[
        str | None, typer.Option(help="only this swr stack (default: every swr stack)", rich_help_panel="Where")
    ] = None,
    *,
    where: Where,
) -> int:
    from swr.ops import status
    from swr.stack import read_outputs

    wanted = list(apps or [])
    aws = Aws.connect(dataclasses.replace(where, stack_name=stack_name or DEFAULT_STACK_NAME))
    with operation_errors(aws):
        if stack_name:
            stacks = [(stack_name, read_outputs(aws.client("cloudformation"), stack_name))]
        else:
            stacks = status.discover_stacks(aws.client("cloudformation"))
        if wanted:
            unknown = sorted(set(wanted) - {outputs.AppName for _, outputs in stacks})
            if unknown:
                known = ", ".join(outputs.AppName for _, outputs in stacks) or "none"
                raise CliError(f"no swr stack protects {', '.join(unknown)} at {aws.where} (protected: {known})")
            stacks = [(name, outputs) for name, outputs in stacks if outputs.AppName in wanted]
        statuses = [status.status_of(aws.client, name, outputs) for name, outputs in stacks]
    # No stack where the command looked is the environment's problem (exit 3), as the README says.
    found = EXIT_OK if statuses else EXIT_ENVIRONMENT
    if json:
        print_json(statuses)
    elif not statuses:
        print(f"no swr stack at {aws.where}: deploy one with `swr deploy`")
    else:
        rows, notes = _status_rows(statuses)
        print_table(("APP", "STATE", "INSTANCE", "AZ", "GEN", "LEASE", "LAST FAILOVER"), rows)
        print_lines(["", *notes] if notes else [])
    return found


def _status_rows(statuses: list[Any]) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for s in statuses:
        if not s.registered:
            rows.append((s.app, "unregistered", "-", "-", "-", "-", "-"))
            notes.append(f"{s.app}: stack {s.stack} is deployed but {s.app} is not registered (swr register)")
            continue
        state = s.state + (" (maintenance)" if s.maintenance else "")
        lease = "-"
        if s.lease:
            lease = "held" if s.lease.holder_status == "RUNNING" else f"stopped ({s.lease.holder_status})"
        rows.append((s.app, state, f"{s.instance_id} {s.instance_state}", s.az, str(s.generation), lease, _last(s)))
        notes += _status_notes(s)
    return rows, notes


def _status_notes(s: Any) -> list[str]:
    notes = []
    if s.maintenance:
        m = s.maintenance
        notes.append(f"{s.app}: maintenance since {_when(m.since)} by {m.by}: {m.reason}")
    if s.lease:
        notes.append(
            f"{s.app}: lease held by {s.lease.holder} ({s.lease.holder_status}) since {_when(s.lease.acquired_at)},"
            f" expires {_when(s.lease.expires_at)}"
        )
        if s.lease.holder_status != "RUNNING":
            notes.append(f"{s.app}: its failover stopped before it finished: `swr resume {s.app}` continues it")
    if s.failure_cause:
        notes.append(f"{s.app}: FAILED: {shorten(s.failure_cause, 200)}")
        notes.append(f"{s.app}: once the cause is fixed, `swr resume {s.app}` finishes the failover")
    notes += [f"{s.app}: alarm {name} is {value}" for name, value in s.alarms.items() if value != "OK"]
    notes += [f"{s.app}: {shorten(fence, 300)}" for fence in s.fences]
    notes += [f"{s.app}: LEFTOVER {shorten(leftover, 400)}" for leftover in s.leftovers]
    notes += [f"{s.app}: WATCH {shorten(drift, 400)}" for drift in s.watch_drift]
    return notes


def _last(s: Any) -> str:
    last = s.last_failover
    if last is None:
        return "none"
    where = f" -> {last.new_instance_id} ({last.new_az})" if last.new_instance_id else ""
    return f"{last.outcome} {_when(last.finished_at)} in {s.last_failover_seconds:.0f}s{where}"


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- maintenance --------------------------------------------------------------------------------
class Mode(StrEnum):
    ON = "on"
    OFF = "off"


def _maintenance(
    app: App,
    mode: Annotated[Mode, typer.Argument(metavar="on|off", case_sensitive=False)],
    reason: Annotated[str, typer.Option(help="why; shown in status and in every ignored trigger")] = "",
    json: Json = False,
    *,
    where: Where,
) -> int:
    from swr.ops.maintenance import set_maintenance

    aws, stack = connect_to_stack(where)
    with operation_errors(aws):
        result = set_maintenance(aws.client, stack, app, on=mode is Mode.ON, by=requester(), reason=reason)
    if json:
        print_json(
            {
                "app": app,
                "maintenance": result.record.maintenance,
                "changed": result.changed,
                "warnings": result.warnings,
            }
        )
        return EXIT_OK
    print(result.message)
    print_lines([f"warning: {warning}" for warning in result.warnings])
    return EXIT_OK


# --- resume -------------------------------------------------------------------------------------
def _resume(
    app: App,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the failover to finish and show its timeline")] = False,
    timeout: Timeout = 1800.0,
    confirm_fenced: Annotated[
        bool,
        typer.Option(
            "--confirm-fenced",
            help="you have confirmed by other means that the old instance is down (swr could not prove it cut off):"
            " its fence counts as confirmed, recorded with who and --reason",
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="with --confirm-fenced: how you know, recorded on the fence")] = "",
    json: Json = False,
    *,
    where: Where,
) -> int:
    from swr.ops.resume import NothingToResume, resume

    if confirm_fenced and not reason.strip():
        raise CliError("--confirm-fenced needs --reason: how you know the old instance is down", EXIT_USAGE)
    if reason and not confirm_fenced:
        raise CliError("--reason goes with --confirm-fenced", EXIT_USAGE)
    aws, stack = connect_to_stack(where)
    with operation_errors(aws):
        try:
            result = resume(aws.client, stack, app, requester(), reason.strip() if confirm_fenced else None)
        except NothingToResume as error:
            if json:
                print_json({"app": app, "resumed": False, "reason": str(error)})
            else:
                print(str(error))
            return EXIT_OK
    if json and not wait:
        print_json({"resumed": True, **vars(result)})
        return EXIT_OK
    print(f"{app}: the failover of {result.interrupted} ({result.interrupted_status}) stopped before it finished")
    print(f"  {result.note}")
    print(f"  continuing in {result.execution_arn} ({result.how})")
    if not wait:
        print(f"follow it with: swr show {result.execution_arn}{where_flags(where)}")
        return EXIT_OK
    described = wait_for_execution(aws, result.execution_arn, timeout)
    print_lines(timeline_of(aws, result.execution_arn, where.warp).render())
    print(f"result: {ops.summary(described)}")
    if ops.recovered(described):
        return EXIT_OK
    raise CliError(f"the resumed failover did not recover {app}: {ops.summary(described)}", EXIT_FAILED)
