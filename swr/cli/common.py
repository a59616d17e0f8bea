"""What every swr command shares: exit codes, CliError, where a command looks (Where), and
AWS access with clear errors."""

from __future__ import annotations

import getpass
import inspect
import logging
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import typer

from swr.ops.executions import ExecutionRef
from swr.stack import DEFAULT_STACK_NAME

if TYPE_CHECKING:  # boto3-stubs: a development dependency
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
RunCommand = Callable[..., int]


@dataclass(frozen=True)
class Where:
    """Where a command looks: the endpoint and region, the stack whose outputs name the state
    machine and the table, explicit names that override those, and the endpoint's time scale."""

    endpoint: str | None = None
    region: str | None = None
    stack_name: str = DEFAULT_STACK_NAME
    state_machine_arn: str | None = None
    table: str | None = None
    warp: float | None = None  # None: learned from the stack (an emulator's), else 1


class CliError(Exception):
    """An expected failure: printed as one clear line, no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def command(
    app: typer.Typer, name: str, help_text: str, *, where: Sequence[str] = ()
) -> Callable[[RunCommand], RunCommand]:
    """Add ``run`` to ``app`` as a command. It gets the shared options named in ``where``
    (swr/cli/options.py: --endpoint, --region, --stack-name, ...) as one ``Where``, if it takes
    a keyword ``where``, and --verbose: its logs go to stderr only with it. It returns its exit
    code."""
    from swr.cli.options import SHARED, Verbose

    def add(run: RunCommand) -> RunCommand:
        own = inspect.signature(run, eval_str=True)
        takes_where = "where" in own.parameters
        parameters = [p for p in own.parameters.values() if p.name != "where"]
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters += [
            inspect.Parameter(option, keyword, annotation=SHARED[option][0], default=SHARED[option][1])
            for option in where
        ]
        wants_verbose = "verbose" in own.parameters  # the demo and the emulator pass it on
        if not wants_verbose:
            parameters.append(inspect.Parameter("verbose", keyword, annotation=Verbose, default=False))

        def logged(**options: Any) -> int:
            verbose = bool(options["verbose"] if wants_verbose else options.pop("verbose"))
            shared = {option: options.pop(option) for option in where}
            if takes_where:
                options["where"] = Where(**shared)
            with cli_logging(verbose):
                try:
                    return run(**options)
                except KeyboardInterrupt:  # typer would exit 130 without a word
                    raise CliError("interrupted", EXIT_INTERRUPTED) from None

        logged.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        logged.__name__, logged.__doc__ = run.__name__, run.__doc__
        app.command(name, help=help_text, no_args_is_help=False)(logged)
        return run

    return add


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
_data_loader: Any = None  # botocore's service models, read from disk once per process


def _botocore_session() -> Any:
    """A fresh botocore session (its own profile, credentials and region) that shares the
    process's loader of service models: a new session otherwise reads each service's model
    again for its first client (about 0.1 s each), which commands run in one process (the
    demo, the tests) paid for every command."""
    import botocore.session

    global _data_loader
    session = botocore.session.get_session()
    if _data_loader is None:
        _data_loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _data_loader)
    return session


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
    def connect(cls, where: Where, region_hint: str | None = None) -> Aws:
        import boto3

        with aws_errors(None):  # a broken profile fails here already
            region = where.region or region_hint
            session = boto3.session.Session(botocore_session=_botocore_session(), region_name=region)
            if session.region_name is None:
                raise CliError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", EXIT_ENVIRONMENT)
            if where.endpoint and session.get_credentials() is None:
                # A local endpoint (the emulator) needs some credentials to sign with, not real ones.
                session = boto3.session.Session(
                    botocore_session=_botocore_session(),
                    region_name=session.region_name,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
        return cls(where.endpoint, session.region_name, session, where.state_machine_arn, where.stack_name)

    @overload
    def client(self, service: Literal["cloudformation"]) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    @overload
    def client(self, service: str) -> Any: ...
    def client(self, service: str) -> Any:
        """One client per service, typed by boto3-stubs for the services the commands call."""
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
        """--table (or $SWR_TABLE_NAME), else the stack's record table."""
        return option or str(self.outputs().RecordTableName)

    def time_warp(self, option: float | None) -> float:
        """--warp, else the emulator's own (its stack carries it as a tag), else 1: AWS runs
        in real time, and a stack there has no such tag."""
        if option is not None:
            return option
        if not self.endpoint:
            return 1.0
        from botocore.exceptions import BotoCoreError, ClientError

        from swr.stack import TIME_WARP_TAG

        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name or DEFAULT_STACK_NAME)
        except (BotoCoreError, ClientError):
            return 1.0
        tags = {tag["Key"]: tag["Value"] for stack in stacks.get("Stacks", []) for tag in stack.get("Tags", [])}
        try:
            return float(tags.get(TIME_WARP_TAG, "1"))
        except ValueError:
            return 1.0

    def outputs(self) -> Any:
        """The outputs of the stack the command was pointed at (--stack-name)."""
        if self._outputs is None:
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


def where_flags(where: Where) -> str:
    """The options that point another swr command where this one looked."""
    flags = ""
    if where.endpoint:
        flags += f" --endpoint {where.endpoint}"
    if where.region:
        flags += f" --region {where.region}"
    if where.stack_name != DEFAULT_STACK_NAME:
        flags += f" --stack-name {where.stack_name}"
    if where.warp not in (None, 1.0):
        flags += f" --warp {where.warp:g}"
    return flags


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


def connect_to_stack(where: Where) -> tuple[Aws, Any]:
    """The endpoint's clients and the outputs of the stack the command was pointed at."""
    aws = Aws.connect(where)
    return aws, stack_outputs(aws, where.stack_name)


def connect_to_execution(where: Where, execution: ExecutionRef) -> tuple[Aws, str]:
    """The endpoint's clients (in the execution ARN's region unless --region says) and its ARN."""
    aws = Aws.connect(where, region_hint=execution.region)
    return aws, execution.arn or execution.arn_within(aws.state_machine_arn())


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
    from swr.ops import onboarding

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
