"""The options swr's commands share, as typer parameter types, with the checks that make a
bad value a usage error (exit 2) before anything runs."""

from __future__ import annotations

import math
import urllib.parse
from typing import Annotated

import typer

from swr.ops.executions import ExecutionRef, parse_execution
from swr.stack import DEFAULT_STACK_NAME

WHERE = "Where"  # the help panel of the options that say where to look


def endpoint_url(text: str | None) -> str | None:
    """An endpoint URL with its scheme (botocore needs one): http://127.0.0.1:5077, say."""
    if text is None:
        return None
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        hint = f" (did you mean http://{text}?)" if "://" not in text else ""
        raise typer.BadParameter(f"not an http(s) URL: {text!r}{hint}")
    return text


def positive(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise typer.BadParameter(f"not a finite number: {value}")
    if value <= 0:
        raise typer.BadParameter(f"must be positive: {value:g}")
    return value


def app_name(text: str) -> str:
    from handlers.core.record import APP_NAME_PATTERN

    if not APP_NAME_PATTERN.match(text):
        raise typer.BadParameter(f"not an application name: {text!r} (letters, digits, '.', '_', '-'; up to 64)")
    return text


Execution = Annotated[
    ExecutionRef,
    # parse_execution's ValueError is a usage error (exit 2) with its message.
    typer.Argument(parser=parse_execution, metavar="EXECUTION", help="an execution ARN, or an execution name"),
]
App = Annotated[str, typer.Argument(callback=app_name, show_default=False, help="the protected application")]
Endpoint = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        callback=endpoint_url,
        help="AWS API endpoint, e.g. the emulator's (default: AWS)",
        rich_help_panel=WHERE,
    ),
]
Region = Annotated[
    str | None,
    typer.Option(help="AWS region (default: from the AWS configuration)", rich_help_panel=WHERE),
]
StackName = Annotated[
    str,
    typer.Option(help="the deployed swr stack whose outputs name the state machine and table", rich_help_panel=WHERE),
]
StateMachineArn = Annotated[
    str | None,
    typer.Option(metavar="ARN", help="instead of the stack's state machine", rich_help_panel=WHERE),
]
Table = Annotated[
    str | None,
    typer.Option("--table", help="instead of the stack's record table", envvar="SWR_TABLE_NAME", rich_help_panel=WHERE),
]
Warp = Annotated[
    float | None,
    typer.Option(
        callback=positive,
        help="the endpoint's time warp, to show times in its simulated seconds (default: the emulator's own, else 1)",
        rich_help_panel=WHERE,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="show library and emulator logs on stderr")]
Timeout = Annotated[float, typer.Option(callback=positive, help="wall seconds --wait waits")]


# The options many commands share, by parameter name: (type, default). A command names those it
# takes (swr.cli.common.command's ``where``) and gets them as one swr.cli.common.Where.
SHARED: dict[str, tuple[object, object]] = {
    "endpoint": (Endpoint, None),
    "region": (Region, None),
    "stack_name": (StackName, DEFAULT_STACK_NAME),
    "state_machine_arn": (StateMachineArn, None),
    "table": (Table, None),
    "warp": (Warp, None),
}
