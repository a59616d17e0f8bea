"""`swr report EXECUTION --html FILE`: one execution as a self-contained HTML page."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from swr.cli.common import (
    EXECUTION_ARN,
    EXECUTION_NAME,
    EXIT_ENVIRONMENT,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Command,
    aws_errors,
    endpoint_options,
)
from swr.report import DefinitionError, render_report, warped
from swr.timeline import fetch_history


def _report(args: argparse.Namespace) -> int:
    arn_or_name = str(args.execution).strip()
    match = EXECUTION_ARN.match(arn_or_name)
    if arn_or_name.startswith("arn:") and not match:
        raise CliError(
            f"not an execution ARN: {arn_or_name!r}"
            " (expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)"
        )
    if not match and not EXECUTION_NAME.match(arn_or_name):
        raise CliError(f"neither an execution ARN nor an execution name: {arn_or_name!r}")
    target = Path(args.html)
    # The page is written next to FILE and renamed over it: FILE is whole or untouched. The
    # temporary file is made first, so an unwritable FILE is known before any AWS call.
    pending = _open_beside(target)
    try:
        aws = Aws.from_args(args, region_hint=match.group("region") if match else None)
        arn = arn_or_name if match else _arn_of_name(aws.state_machine_arn(), arn_or_name)
        page = _page(aws, arn, args.warp)
        with pending:
            pending.write(page)
        os.chmod(pending.name, 0o644)  # a report to share, not a secret (mkstemp makes it 0600)
        try:
            os.replace(pending.name, target)
        except OSError as error:
            raise CliError(f"cannot write {target}: {error.strerror or error}", EXIT_USAGE) from None
    finally:
        pending.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pending.name)
    print(target)
    return EXIT_OK


def _open_beside(target: Path) -> Any:
    if target.is_dir():
        raise CliError(f"cannot write {target}: it is a directory", EXIT_USAGE)
    try:
        return tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        )
    except OSError as error:
        raise CliError(f"cannot write {target}: {error.strerror or error}", EXIT_USAGE) from None


def _page(aws: Aws, arn: str, warp: float) -> str:
    sfn = aws.client("stepfunctions")
    with aws_errors(aws, arn):
        described = sfn.describe_execution(executionArn=arn)
        events = fetch_history(sfn, arn)
        # The definition this execution ran, even if the state machine was updated since.
        definition = sfn.describe_state_machine_for_execution(executionArn=arn)["definition"]
    try:
        return render_report(definition, described, events, warped(described["startDate"], warp))
    except DefinitionError as error:
        raise CliError(f"cannot draw the state machine of {arn}: {error}", EXIT_ENVIRONMENT) from None


def _arn_of_name(state_machine_arn: str, name: str) -> str:
    # arn:aws:states:R:A:stateMachine:M -> arn:aws:states:R:A:execution:M:NAME
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def register(command: Command) -> None:
    report = command(
        "report",
        _report,
        "Write one execution as a self-contained HTML page: the state machine with the path it took, and its timeline.",
    )
    report.add_argument("execution", metavar="EXECUTION", help="an execution ARN, or an execution name")
    report.add_argument("--html", metavar="FILE", required=True, help="the page to write (replaced whole)")
    endpoint_options(report, table=False)
