"""Day-two operations: `swr status`, `swr maintenance`, `swr resume`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Command,
    aws_errors,
    operation_errors,
    positive,
    print_lines,
    requester,
    shorten,
    stack_options,
    stack_outputs,
    valid_app,
    where_flags,
)
from swr.cli.executions import summary, timeline_of, wait_for_execution


def register(command: Command) -> None:
    status = command("status", _status, "Show every protected application: state, instance, lease, last failover.")
    status.add_argument("apps", nargs="*", metavar="APP", help="only these applications (default: all)")
    stack_options(status, every_stack=True)

    maintenance = command(
        "maintenance", _maintenance, "Suspend (on) or resume (off) automatic failover of APP while people work on it."
    )
    maintenance.add_argument("app", metavar="APP")
    maintenance.add_argument("mode", choices=("on", "off"), metavar="on|off")
    maintenance.add_argument("--reason", default="", help="why; shown in status and in every ignored trigger")
    stack_options(maintenance)

    resume = command("resume", _resume, "Continue the failover of APP that stopped before it finished.")
    resume.add_argument("app", metavar="APP")
    resume.add_argument("--wait", action="store_true", help="wait for the failover to finish and show its timeline")
    resume.add_argument("--timeout", type=positive, default=1800.0, help="wall seconds --wait waits (1800)")
    resume.add_argument(
        "--warp", type=positive, default=1.0, help="the endpoint's time warp, for --wait's timeline (1)"
    )
    resume.add_argument(
        "--confirm-fenced",
        action="store_true",
        help="you have confirmed by other means that the old instance is down (swr could not prove it cut off):"
        " its fence counts as confirmed, recorded with who and --reason",
    )
    resume.add_argument("--reason", default="", help="with --confirm-fenced: how you know, recorded on the fence")
    stack_options(resume)


# --- status -------------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    from swr import status
    from swr.stack import read_outputs

    wanted = [valid_app(app) for app in args.apps]
    aws = Aws.from_args(args)
    with operation_errors(aws):
        if args.stack_name:
            stacks = [(args.stack_name, read_outputs(aws.client("cloudformation"), args.stack_name))]
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
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in statuses], indent=2))
        return found
    if not statuses:
        print(f"no swr stack at {aws.where}: deploy one with `swr deploy`")
        return found
    print_lines(_status_lines(statuses))
    return EXIT_OK


def _status_lines(statuses: list[Any]) -> list[str]:
    headers = ("APP", "STATE", "INSTANCE", "AZ", "GEN", "LEASE", "LAST FAILOVER")
    rows, notes = [], []
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
        for name, value in s.alarms.items():
            if value != "OK":
                notes.append(f"{s.app}: alarm {name} is {value}")
        notes += [f"{s.app}: {shorten(fence, 300)}" for fence in s.fences]
        notes += [f"{s.app}: LEFTOVER {shorten(leftover, 400)}" for leftover in s.leftovers]
        notes += [f"{s.app}: WATCH {shorten(drift, 400)}" for drift in s.watch_drift]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines + (["", *notes] if notes else [])


def _last(s: Any) -> str:
    last = s.last_failover
    if last is None:
        return "none"
    where = f" -> {last.new_instance_id} ({last.new_az})" if last.new_instance_id else ""
    return f"{last.outcome} {_when(last.finished_at)} in {s.last_failover_seconds:.0f}s{where}"


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- maintenance --------------------------------------------------------------------------------
def _maintenance(args: argparse.Namespace) -> int:
    from swr.maintenance import set_maintenance

    app = valid_app(args.app)
    aws = Aws.from_args(args)
    stack = stack_outputs(aws, args.stack_name)
    with operation_errors(aws):
        result = set_maintenance(aws.client, stack, app, on=args.mode == "on", by=requester(), reason=args.reason)
    if args.json:
        document = {
            "app": app,
            "maintenance": result.record.maintenance.model_dump(mode="json") if result.record.maintenance else None,
            "changed": result.changed,
            "warnings": result.warnings,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(result.message)
    for warning in result.warnings:
        print(f"warning: {warning}")
    return EXIT_OK


# --- resume -------------------------------------------------------------------------------------
def _resume(args: argparse.Namespace) -> int:
    from swr.resume import NothingToResume, resume

    app = valid_app(args.app)
    if args.confirm_fenced and not args.reason.strip():
        raise CliError("--confirm-fenced needs --reason: how you know the old instance is down", EXIT_USAGE)
    if args.reason and not args.confirm_fenced:
        raise CliError("--reason goes with --confirm-fenced", EXIT_USAGE)
    aws = Aws.from_args(args)
    stack = stack_outputs(aws, args.stack_name)
    with operation_errors(aws):
        try:
            result = resume(aws.client, stack, app, requester(), args.reason.strip() if args.confirm_fenced else None)
        except NothingToResume as error:
            if args.json:
                print(json.dumps({"app": app, "resumed": False, "reason": str(error)}, indent=2))
            else:
                print(str(error))
            return EXIT_OK
    if args.json and not args.wait:
        print(json.dumps({"resumed": True, **vars(result)}, indent=2))
        return EXIT_OK
    print(f"{app}: the failover of {result.interrupted} ({result.interrupted_status}) stopped before it finished")
    print(f"  {result.note}")
    print(f"  continuing in {result.execution_arn} ({result.how})")
    if not args.wait:
        print(f"follow it with: swr show {result.execution_arn}{where_flags(args)}")
        return EXIT_OK
    described = wait_for_execution(aws, result.execution_arn, args.timeout)
    with aws_errors(aws, result.execution_arn):
        timeline = timeline_of(aws, result.execution_arn, args.warp)
    print_lines(timeline.render())
    print(f"result: {summary(described)}")
    recovered = described["status"] == "SUCCEEDED" and json.loads(described.get("output") or "{}").get("outcome")
    if recovered == "recovered":
        return EXIT_OK
    raise CliError(f"the resumed failover did not recover {app}: {summary(described)}", EXIT_FAILED)
