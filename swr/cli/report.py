"""`swr report EXECUTION --html FILE`: one execution as a self-contained HTML page."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Where,
    aws_errors,
    command,
    connect_to_execution,
)
from swr.cli.options import Execution
from swr.report import DefinitionError, render_report
from swr.timeline import fetch_history, warped


def register(app: typer.Typer) -> None:
    command(
        app,
        "report",
        "Write one execution as a self-contained HTML page: the state machine with the path it took, and its timeline.",
        where=("endpoint", "region", "stack_name", "state_machine_arn", "warp"),
    )(_report)


def _report(
    execution: Execution,
    html: Annotated[Path, typer.Option(metavar="FILE", help="the page to write (replaced whole)")],
    *,
    where: Where,
) -> int:
    target = html
    # The page is written next to FILE and renamed over it: FILE is whole or untouched. The
    # temporary file is made first, so an unwritable FILE is known before any AWS call.
    pending = _open_beside(target)
    try:
        aws, arn = connect_to_execution(where, execution)
        page = _page(aws, arn, aws.time_warp(where.warp))
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
