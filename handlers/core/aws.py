"""boto3 clients for the steps, and the translation of AWS API failures into named errors
the workflow retries by name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError, ReadTimeoutError

from handlers.core.errors import AwsThrottled, AwsUnavailable
from handlers.core.settings import get_settings

if TYPE_CHECKING:  # boto3-stubs: a development dependency, never imported at run time
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_efs import EFSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_stepfunctions import SFNClient

THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
    }
)
UNAVAILABLE_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"})


_clients: dict[str, Any] = {}


@overload
def client(service: Literal["cloudwatch"]) -> CloudWatchClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["ec2"]) -> EC2Client: ...
@overload
def client(service: Literal["efs"]) -> EFSClient: ...
@overload
def client(service: Literal["elbv2"]) -> ElasticLoadBalancingv2Client: ...
@overload
def client(service: Literal["events"]) -> EventBridgeClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
def client(service: str) -> Any:
    """One client per service for the process (on AWS, a Lambda execution environment's life),
    typed by boto3-stubs for mypy."""
    made = _clients.get(service)
    if made is None:
        attempts = get_settings().sdk_max_attempts
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
        made = _clients[service] = boto3.client(service, config=config)  # type: ignore[call-overload]
    return made


def clients() -> dict[str, Any]:
    """The clients made so far, by service: a host that runs the steps (the emulator) may keep
    them for its next run, or forget them (``clear()``) when settings change."""
    return _clients


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_server_error(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status or 0) >= 500 or error_code(error) in UNAVAILABLE_CODES


@contextmanager
def api_call(what: str, keep: frozenset[str] = frozenset()) -> Iterator[None]:
    """Raise throttling and server errors as the named errors the ASL retries; codes in
    ``keep`` stay ClientErrors for the caller to handle (e.g. capacity, an HTTP 500)."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code in keep:
            raise
        if code in THROTTLING_CODES:
            raise AwsThrottled(f"{what}: throttled ({code})") from error
        if is_server_error(error):
            raise AwsUnavailable(f"{what}: AWS API unavailable ({code or 'HTTP 5xx'})") from error
        raise
    except (EndpointConnectionError, ConnectionError, ReadTimeoutError) as error:
        raise AwsUnavailable(f"{what}: endpoint unreachable ({error})") from error
