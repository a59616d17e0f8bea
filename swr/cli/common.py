"""What every swr command shares: exit codes, CliError, AWS access with clear errors,
argument types and output helpers."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
APP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as handlers.core.record.AppName
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):\d{12}:(?:express|execution):[^:]+:[^:]+$")
EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}$")


# How a command module adds its subcommand: command(name, run, help) -> its parser.
Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


class CliError(Exception):
    """An expected failure: printed as one clear line, no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def endpoint_options(parser: argparse.ArgumentParser, *, table: bool) -> None:
    from swr.stack import DEFAULT_STACK_NAME

    group = parser.add_argument_group("where")
    group.add_argument(
        "--endpoint", metavar="URL", type=endpoint_url, help="AWS API endpoint, e.g. the emulator's (default: AWS)"
    )
    group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    group.add_argument(
        "--stack-name",
        default=DEFAULT_STACK_NAME,
        help=f"the deployed swr stack whose state machine and table to use ({DEFAULT_STACK_NAME})",
    )
    group.add_argument("--state-machine-arn", metavar="ARN", help="instead of the stack's state machine")
    if table:
        group.add_argument("--table", default=None, help="instead of the stack's record table (also ${SWR_TABLE_NAME})")
    group.add_argument(
        "--warp",
        type=positive,
        default=1.0,
        help="the endpoint's time warp (the emulator prints it): show times in its simulated seconds (1)",
    )


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def endpoint_url(text: str) -> str:
    """An endpoint URL with its scheme (botocore needs one): http://127.0.0.1:5077, say."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        hint = f" (did you mean http://{text}?)" if "://" not in text else ""
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}{hint}")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return value


@contextmanager
def cli_logging(verbose: bool) -> Iterator[None]:
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
    stack_name: str | None = None  # whose outputs name the state machine and the table
    _clients: dict[str, Any] = field(default_factory=dict)
    _state_machine_arn: str | None = None
    _outputs: Any = None

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
        return cls(
            args.endpoint, session.region_name, session, args.state_machine_arn, getattr(args, "stack_name", None)
        )

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
        """--state-machine-arn, else the stack's state machine."""
        if self._state_machine_arn is None:
            self._state_machine_arn = self.state_machine_arn_option or str(self.outputs().StateMachineArn)
        return self._state_machine_arn

    def table(self, option: str | None) -> str:
        """--table, else $SWR_TABLE_NAME, else the stack's record table."""
        return option or os.environ.get("SWR_TABLE_NAME") or str(self.outputs().RecordTableName)

    def outputs(self) -> Any:
        """The outputs of the stack the command was pointed at (--stack-name)."""
        if self._outputs is None:
            from swr.stack import DEFAULT_STACK_NAME

            self._outputs = stack_outputs(self, self.stack_name or DEFAULT_STACK_NAME)
        return self._outputs


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


def requester() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def where_flags(args: argparse.Namespace) -> str:
    flags = ""
    if args.endpoint:
        flags += f" --endpoint {args.endpoint}"
    if args.region:
        flags += f" --region {args.region}"
    if args.warp != 1.0:
        flags += f" --warp {args.warp:g}"
    return flags


def valid_app(app: str) -> str:
    if not APP_PATTERN.match(app):
        raise CliError(f"not an application name: {app!r} (letters, digits, '.', '_', '-'; up to 64)", EXIT_USAGE)
    return app


def registered(aws: Aws, app: str, table_option: str | None) -> bool:
    table = aws.table(table_option)
    dynamodb = aws.client("dynamodb")
    with aws_errors(aws, f"read of {app!r} from table {table}"):
        try:
            item = dynamodb.get_item(TableName=table, Key={"app": {"S": app}}, ProjectionExpression="app")
        except dynamodb.exceptions.ResourceNotFoundException:
            raise CliError(
                f"no table {table} at {aws.where}: pass --table (or set SWR_TABLE_NAME)", EXIT_ENVIRONMENT
            ) from None
    return "Item" in item


def require_registered(aws: Aws, app: str, table_option: str | None) -> None:
    if registered(aws, app, table_option):
        return
    table = aws.table(table_option)
    known = known_apps(aws, table)
    listed = f"; registered: {', '.join(known)}" if known else "; no application is registered"
    raise CliError(f"unknown application {app!r}: no record in table {table}{listed}", EXIT_USAGE)


def known_apps(aws: Aws, table: str) -> list[str]:
    with aws_errors(aws, f"scan of table {table}"):
        items = aws.client("dynamodb").scan(TableName=table, ProjectionExpression="app", Limit=50).get("Items", [])
    return sorted(str(item["app"]["S"]) for item in items if "S" in item.get("app", {}))


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


def json_object(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def output_of(described: dict[str, Any]) -> dict[str, Any]:
    return json_object(described.get("output"))


def stack_options(parser: argparse.ArgumentParser, *, every_stack: bool = False) -> None:
    """Where a command that works through the deployed stack's outputs finds them; with
    ``every_stack`` it reads every swr stack of the region unless one is named."""
    from swr.stack import DEFAULT_STACK_NAME

    group = parser.add_argument_group("where")
    group.add_argument(
        "--endpoint", metavar="URL", type=endpoint_url, help="AWS API endpoint, e.g. the emulator's (default: AWS)"
    )
    group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    if every_stack:
        group.add_argument("--stack-name", default=None, help="only this swr stack (default: every swr stack)")
    else:
        group.add_argument(
            "--stack-name", default=DEFAULT_STACK_NAME, help=f"the deployed swr stack to use ({DEFAULT_STACK_NAME})"
        )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(state_machine_arn=None)  # Aws.from_args reads it; the stack names the state machine


def stack_outputs(aws: Aws, stack_name: str) -> Any:
    from swr.stack import StackNotReady, read_outputs

    with aws_errors(aws, f"stack {stack_name}"):
        try:
            return read_outputs(aws.client("cloudformation"), stack_name)
        except StackNotReady as error:
            raise CliError(str(error), EXIT_ENVIRONMENT) from None


@contextmanager
def operation_errors(aws: Aws) -> Iterator[None]:
    from handlers.core.errors import SwrError
    from swr import onboarding

    # The operator-side modules (onboarding, maintenance, status, resume) raise these.
    with aws_errors(aws):
        try:
            yield
        except (onboarding.RegistrationInvalid, onboarding.NotRegistered) as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except onboarding.OnboardingError as error:  # refused while switching, or failed and undone
            raise CliError(str(error), EXIT_FAILED) from None
        except SwrError as error:  # throttled or unavailable after retries
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
