"""Lambda: functions run their real handlers in-process, with their environment, their role
and AWS's asynchronous retries (patch 1), and another account's layers exist (patch 19).
The interpreter's Lambda tasks (patches 14, 32) are in stepfunctions.py."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swr.emulator.moto_bridge import _state
from swr.emulator.moto_bridge._state import LOG, _Patches, _require
from swr.emulator.moto_bridge.faults import _emulator_error
from swr.emulator.moto_bridge.iam import acting_as, as_emulator
from swr.emulator.moto_bridge.timing import _new_uuid, _sleep, _spawn

# --------------------------------------------------------------------------------------------------
# 1. Lambda runs real code in-process
# --------------------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The parts of the Python runtime's context object that handlers and Powertools use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


class _HandlerLoadError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _resolve_handler(handler: str | None) -> Callable[[Any, Any], Any]:
    module_name, _, attr = (handler or "").rpartition(".")
    module_name = module_name.replace("/", ".")
    if not module_name or not attr:
        raise _HandlerLoadError("Runtime.MalformedHandlerName", f"Bad handler '{handler}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise _HandlerLoadError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise _HandlerLoadError("Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'")
    return fn  # type: ignore[no-any-return]


def _context_for(fn: Any) -> LambdaContext:
    request_id = str(_new_uuid())
    version = str(getattr(fn, "version", "$LATEST"))
    today = dt.datetime.now(tz=dt.UTC).strftime("%Y/%m/%d")
    return LambdaContext(
        function_name=fn.function_name,
        function_version=version,
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(fn.memory_size or 128),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{fn.function_name}",
        log_stream_name=f"{today}/[{version}]{_new_uuid().hex}",
        deadline_monotonic=time.monotonic() + float(fn.timeout or 3),
    )


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> bytes:
    body = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack}
    return json.dumps(body).encode("utf-8")


_environment_lock = threading.Lock()
_invocation = threading.local()  # .function: the function whose handler runs on this thread


def _apply_environment(fn: Any) -> None:
    """The function's Environment.Variables, as the Lambda runtime sets them."""
    variables = {str(k): str(v) for k, v in (getattr(fn, "environment_vars", None) or {}).items()}
    bridge = _state._bridge
    with _environment_lock:
        changed = {k: v for k, v in variables.items() if os.environ.get(k) != v}
        if bridge is not None:  # stop() puts back what was there before
            for key in changed:
                bridge.saved_env.setdefault(key, os.environ.get(key))
        os.environ.update(changed)
    if changed and bridge is not None:
        with as_emulator():  # the emulator's bookkeeping, not the caller's (the interpreter's) call
            bridge.hooks.on_function_environment()


def _run_handler(fn: Any, event: Any) -> tuple[bytes, bool]:
    """Run the function's handler like the Python runtime: (payload, errored)."""
    context = _context_for(fn)
    _apply_environment(fn)
    try:
        handler = _resolve_handler(fn.handler)
    except _HandlerLoadError as e:
        return _error_payload(e.error_type, str(e), context.aws_request_id, []), True
    _invocation.function = fn  # whose log an EMF document is written to (patch 24)
    try:
        with acting_as(str(fn.role)):
            result = handler(event, context)
    except Exception as e:  # the runtime reports any handler exception as an Unhandled error
        tb = e.__traceback__.tb_next if e.__traceback__ else None  # from the handler down, like AWS
        stack = traceback.format_list(traceback.extract_tb(tb))
        return _error_payload(type(e).__name__, str(e), context.aws_request_id, stack), True
    finally:
        _invocation.function = None
    try:
        return json.dumps(result).encode("utf-8"), False
    except (TypeError, ValueError) as e:
        message = f"Unable to marshal response: {e}"
        return _error_payload("Runtime.MarshalError", message, context.aws_request_id, []), True


# "If the function returns an error, by default Lambda attempts to run it two more times, with a
# one-minute wait between the first two attempts, and two minutes between the second and third"
# (Lambda Developer Guide, "How Lambda handles errors and retries with asynchronous invocation").
ASYNC_RETRY_WAITS = (60.0, 120.0)
discarded_async_events: list[tuple[str, Any, str]] = []  # (function, event, last error): see below


def _invoke_async(fn: Any, event: Any) -> None:
    def run() -> None:
        for wait in (*ASYNC_RETRY_WAITS, None):
            payload, errored = _run_handler(fn, event)
            if not errored:
                return
            LOG.info("async invocation of %s failed: %s", fn.function_name, payload[:500])
            if wait is not None:
                _sleep(wait)
        # On AWS the function's dead-letter queue gets the event now; moto drops DeadLetterConfig
        # from CloudFormation, so the emulator keeps it here, and says so.
        discarded_async_events.append((fn.function_name, event, payload[:500].decode(errors="replace")))
        LOG.warning("async invocation of %s failed 3 times: event discarded (no DLQ here)", fn.function_name)

    _spawn(run, name=f"swr-lambda-{fn.function_name}")


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return None if value is None else str(value)


def _lambda_invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    """Replaces LambdaSimpleBackend.invoke (same signature as moto's)."""
    fn = self.get_function(function_name, qualifier)
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        event = json.loads(body) if body else {}
    except ValueError as e:
        raise _emulator_error("InvalidRequestContentException", "Could not parse request body into json") from e
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        _invoke_async(fn, event)
        response_headers["Content-Length"] = "0"
        return b""
    payload, errored = _run_handler(fn, event)
    if errored:
        # moto's LambdaResponse.invoke copies response_headers onto the HTTP response.
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(payload))
    return payload


def _patch_lambda(p: _Patches) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    _require(LambdaSimpleBackend, "invoke")
    p.set(LambdaSimpleBackend, "invoke", _lambda_invoke)


# --------------------------------------------------------------------------------------------------
# 19. Public Lambda layers exist
# --------------------------------------------------------------------------------------------------
# A function may use a layer another account publishes (AWS publishes Powertools' per region).
# moto knows only layers published to it: creating the function accepts the ARN, but updating its
# configuration raises "LayerVersion does not exist", so a stack update fails. The emulator runs
# handlers in-process, so another account's layer is taken as existing (and empty).


def _patch_lambda_public_layers(p: _Patches) -> None:
    from moto.awslambda.models import LambdaFunction

    original = _require(LambdaFunction, "_get_layers_data")

    def get_layers_data(self: Any, layers_versions_arns: list[str]) -> list[dict[str, Any]]:
        own = [arn for arn in layers_versions_arns if arn.split(":")[4:5] == [self.account_id]]
        known = {layer["Arn"]: layer for layer in original(self, own)}
        return [known.get(arn) or {"Arn": arn, "CodeSize": 0} for arn in layers_versions_arns]

    p.set(LambdaFunction, "_get_layers_data", get_layers_data)
