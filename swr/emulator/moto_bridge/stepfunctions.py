"""Step Functions: the interpreter's clients (patch 5), executions (10, 25, 26), errors (11, 32),
Lambda tasks (14, 21), parse trees (36) and JSONPath expressions (46); and the executions and
histories the drivers read.
The interpreter's time (patch 4) is in timing.py."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from contextlib import nullcontext
from typing import Any, cast

from botocore.exceptions import ClientError

from swr.emulator.moto_bridge._state import LOG, _hooks, _Patches, _require
from swr.emulator.moto_bridge.iam import acting_as
from swr.emulator.moto_bridge.timing import _new_uuid

# --------------------------------------------------------------------------------------------------
# Executions: stopped when the bridge stops, read for the drivers
# --------------------------------------------------------------------------------------------------


def _stop_running_executions() -> None:
    """Stop executions left running so their threads do not act on the next test's fresh world."""
    try:
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        now = dt.datetime.now(tz=dt.UTC)
        backends: list[Any] = [b for _, _, b in stepfunctions_parser_backends.iter_backends()]
        executions = [
            execution
            for backend in backends
            for machine in backend.state_machines
            for execution in machine.executions
            if execution.exec_status == ExecutionStatus.RUNNING
        ]
    except Exception:  # best effort: cleanup must never prevent the reset
        LOG.warning("could not list running executions", exc_info=True)
        return
    for execution in executions:
        try:
            execution.stop(stop_date=now, error="Emulator.Stopped", cause=None)  # interrupts Wait
            pool = getattr(getattr(execution.exec_worker, "env", None), "callback_pool_manager", None)
            for endpoint in list(getattr(pool, "_pool", {}).values()):
                endpoint.interrupt_all()  # and task-token / heartbeat waits
        except Exception:
            LOG.warning("could not stop execution %s", getattr(execution, "exec_arn", "?"), exc_info=True)


def execution_list(state_machine_arn: str) -> list[dict[str, Any]]:
    """What ListExecutions answers for the state machine, read from the backend: the drivers
    poll it every few simulated seconds, and a request would serialize every execution each time."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backends: list[Any] = [b for _, _, b in stepfunctions_parser_backends.iter_backends()]
    for backend in backends:
        machine = next((m for m in backend.state_machines if m.arn == state_machine_arn), None)
        if machine is not None:
            listed = [dict(e.to_execution_list_item()) for e in list(machine.executions)]
            return [{**item, "status": str(getattr(item["status"], "value", item["status"]))} for item in listed]
    return []


def execution_events(execution_arn: str) -> list[dict[str, Any]]:
    """What GetExecutionHistory answers for the execution, read from the backend."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backends: list[Any] = [b for _, _, b in stepfunctions_parser_backends.iter_backends()]
    for backend in backends:
        for machine in backend.state_machines:
            for execution in list(machine.executions):
                if execution.exec_arn == execution_arn:
                    return [dict(e) for e in execution.to_history_output()["events"]]
    return []


def _join_execution_threads(timeout: float) -> None:
    """Wait for the interpreter's threads of stopped executions: one in the middle of a Lambda
    invocation finishes that call first, and must not make it in the next emulator's world."""
    try:
        from moto.stepfunctions.parser.utils import TMP_THREADS
    except ImportError:  # best effort, as above
        return
    deadline = time.monotonic() + timeout
    for thread in list(TMP_THREADS):
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in TMP_THREADS if t.is_alive()]
    if alive:
        LOG.warning("%d execution thread(s) still running after %.0f s", len(alive), timeout)
    TMP_THREADS[:] = alive


# --------------------------------------------------------------------------------------------------
# 5. Cached interpreter clients
# --------------------------------------------------------------------------------------------------

_client_lock = threading.Lock()
_client_cache: dict[tuple[str, str, str | None], Any] = {}
_client_creations = 0  # read by the canary test


def _clear_client_cache() -> None:
    """At a bridge's stop: forget the clients of its server (their port goes with it). The
    in-process ones stay for the next bridge: the stub they call through is the process's, and
    making one (a new client class for the service) was a measurable part of every short run."""
    global _client_creations
    with _client_lock:
        for key in [key for key in _client_cache if key[2] is not None]:
            del _client_cache[key]
        _client_creations = 0


class _ActingClient:
    """An interpreter client whose calls are made as the execution's role (patch 42): on AWS,
    Step Functions calls Lambda and the SDK integrations with the state machine's role."""

    def __init__(self, client: Any, role_arn: str) -> None:
        self._client, self._role_arn = client, role_arn

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if not callable(found) or name.startswith("_"):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            with acting_as(self._role_arn):
                return found(*args, **kwargs)

        return call


def _patch_client_cache(p: _Patches) -> None:
    import sys

    # Import the modules that use the name so that the scan below finds them all.
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory  # noqa: F401
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = _require(boto_client, "boto_client_for")

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        global _client_creations
        # The same choice the original makes: in-process stub, or the server on $MOTO_PORT.
        endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
        key = (region, service, endpoint)
        with _client_lock:  # boto3's default session is not thread-safe for client creation
            client = _client_cache.get(key)
            if client is None:
                client = original(region=region, service=service, state_credentials=state_credentials)
                _client_cache[key] = client
                _client_creations += 1
        role_arn = getattr(state_credentials, "role_arn", None)
        return _ActingClient(client, str(role_arn)) if role_arn else client

    p.set(boto_client, "boto_client_for", boto_client_for)
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and vars(module).get("boto_client_for") is original:
            p.set(module, "boto_client_for", boto_client_for)


# --------------------------------------------------------------------------------------------------
# 10. Named executions by default
# --------------------------------------------------------------------------------------------------


def _patch_named_executions(p: _Patches) -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = _require(StepFunctionsParserBackend, "start_execution")

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(_new_uuid()), *args, **kwargs)

    p.set(StepFunctionsParserBackend, "start_execution", start_execution)


# --------------------------------------------------------------------------------------------------
# 11. Heartbeat timeouts named like AWS
# --------------------------------------------------------------------------------------------------


def _patch_heartbeat_timeout(p: _Patches) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    from_error = _require(StateTask, "_from_error")
    eval_body = _require(ErrorEqualsDecl, "_eval_body")
    heartbeat = StatesErrorNameType.StatesHeartbeatTimeout
    timeout_name = StatesErrorName(typ=StatesErrorNameType.StatesTimeout)

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, HeartbeatTimeoutError):
            return from_error(self, env, ex)
        timed_out = self._get_timed_out_failure_event(env)  # TaskTimedOut with the resource details
        details: Any = copy.deepcopy(timed_out.event_details) or {}
        for spec in details.values():
            spec["error"] = heartbeat.to_name()
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=heartbeat),
            event_type=timed_out.event_type,
            event_details=details,
        )

    def _eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1] if env.stack else None
        if isinstance(error_name, StatesErrorName) and error_name.typ == heartbeat and timeout_name in self.error_names:
            env.stack.pop()
            env.stack.append(True)  # States.Timeout also covers heartbeat timeouts
            return
        eval_body(self, env)

    p.set(StateTask, "_from_error", _from_error)
    p.set(ErrorEqualsDecl, "_eval_body", _eval_body)


# --------------------------------------------------------------------------------------------------
# 14. Lambda tasks run inside hooks.invoking()
# --------------------------------------------------------------------------------------------------
def _patch_lambda_task_clock(p: _Patches) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = _require(lambda_eval_utils, "execute_lambda_function_integration")

    def execute_lambda_function_integration(*args: Any, **kwargs: Any) -> None:
        hooks = _hooks()
        with hooks.invoking() if hooks is not None else nullcontext():
            original(*args, **kwargs)

    p.set(lambda_eval_utils, "execute_lambda_function_integration", execute_lambda_function_integration)


# --------------------------------------------------------------------------------------------------
# 21. A task token takes heartbeats from the moment the task starts
# --------------------------------------------------------------------------------------------------
# moto sets up a waitForTaskToken task's heartbeat timer only after the Lambda it invokes has
# returned, and refuses a heartbeat before that with InvalidToken. On AWS the token is live from
# the start of the task: a boot gate that sees its permit while the permit's Lambda is still
# returning must not be told the workflow abandoned it (and fence itself).


def _patch_early_heartbeats(p: _Patches) -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = _require(CallbackEndpoint, "notify_heartbeat")

    def notify_heartbeat(self: Any) -> bool:
        if getattr(self, "_heartbeat_endpoint", None) is None:
            return True  # the task runs; its heartbeat timer starts when its wait does
        return bool(original(self))

    p.set(CallbackEndpoint, "notify_heartbeat", notify_heartbeat)


# --------------------------------------------------------------------------------------------------
# 25. StopExecution stops a task that waits
# --------------------------------------------------------------------------------------------------
# moto marks the program stopped but leaves a waitForTaskToken task waiting for its token (or
# its timeout), so the execution stays RUNNING until then, and the task's timeout then turns
# the stopped program into a failed one (FAILED, States.Timeout). On AWS a stopped execution
# is ABORTED at once and none of its tasks goes on: wake the waits, and keep a stopped program
# stopped whatever its interrupted task reports afterwards.


def _patch_stop_execution(p: _Patches) -> None:
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    original_stop = _require(Execution, "stop")
    original_set_error = _require(Environment, "set_error")

    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        original_stop(self, stop_date, error, cause)
        pool = getattr(getattr(self.exec_worker, "env", None), "callback_pool_manager", None)
        for endpoint in list(getattr(pool, "_pool", {}).values()):
            endpoint.interrupt_all()

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self.program_state(), ProgramStopped):
            return
        original_set_error(self, error)

    p.set(Execution, "stop", stop)
    p.set(Environment, "set_error", set_error)


# --------------------------------------------------------------------------------------------------
# 26. RedriveExecution says it is not supported
# --------------------------------------------------------------------------------------------------
# moto has no RedriveExecution: in-process it raises NotImplementedError, served it answers an
# HTML "500 Internal Server Error" page. An endpoint without an operation answers with an
# error a client can read, as AWS does (UnknownOperationException); swr resume then says why it
# continues with a new execution instead.


def _patch_redrive_unsupported(p: _Patches) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.responses import StepFunctionResponse

    def redrive_execution(self: Any) -> Any:
        raise JsonRESTError(
            "UnknownOperationException", "RedriveExecution is not supported by this endpoint (the swr emulator)"
        )

    p.set(StepFunctionResponse, "redrive_execution", redrive_execution)


# --------------------------------------------------------------------------------------------------
# 32. Lambda service errors of a bare-ARN Lambda task are Lambda.<code>
# --------------------------------------------------------------------------------------------------
# Step Functions Developer Guide, "Handle Lambda service exceptions": "Lambda errors are reported
# as Lambda.<exception>" (Lambda.ServiceException, Lambda.AWSLambdaException,
# Lambda.SdkClientException; Lambda.TooManyRequestsException when Lambda hits the maximum number of
# invocations). moto reports the failed invoke of a function given by its ARN as ``Exception``, so
# a Retry on the documented names never matched and an execution AWS would retry ended at once.


# Errors of the Lambda API that Invoke's model does not name (IAM's, the request's own).
_UNMODELLED_LAMBDA_ERRORS = frozenset({"AccessDeniedException", "UnrecognizedClientException", "ValidationException"})


def _patch_lambda_service_errors(p: _Patches) -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    from_error = _require(StateTaskLambda, "_from_error")

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return from_error(self, env, ex)
        error = ex.response.get("Error", {})
        code = str(error.get("Code") or "")
        cause = str(error.get("Message", ""))
        if code in _UNMODELLED_LAMBDA_ERRORS or not code:
            # Not an error of Invoke's model: Step Functions' SDK names it AWSLambdaException and
            # puts the code in the cause (as AWS reported a state machine role without
            # lambda:InvokeFunction: awslabs/aws-deployment-framework issue 460).
            status = ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            cause = f"{cause} (Service: AWSLambda; Status Code: {status}; Error Code: {code or 'Unknown'})"
            code = "AWSLambdaException"
        name = f"Lambda.{code}"
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=cast(
                EventDetails,
                {"lambdaFunctionFailedEventDetails": LambdaFunctionFailedEventDetails(error=name, cause=cause)},
            ),
        )

    p.set(StateTaskLambda, "_from_error", _from_error)


# --------------------------------------------------------------------------------------------------
# 36. A definition's parse tree is built once
# --------------------------------------------------------------------------------------------------

_parse_trees: dict[tuple[str, str], Any] = {}


def _patch_asl_parse_cache(p: _Patches) -> None:
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser
    from moto.stepfunctions.parser.asl.parse.intrinsic.preprocessor import Preprocessor as IntrinsicPreprocessor
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    # Only the tree is kept: the preprocessor builds fresh components from it on every call, so no
    # execution shares state with another, and a definition with errors is parsed (and refused)
    # each time as before.
    for owner, kind, preprocessor in (
        (asl_parser.AmazonStateLanguageParser, "asl", Preprocessor),
        (intrinsic_parser.IntrinsicParser, "intrinsic", IntrinsicPreprocessor),
    ):
        parse = _require(owner, "parse").__func__

        def cached_parse(source: str, parse: Any = parse, kind: str = kind, preprocessor: Any = preprocessor) -> Any:
            tree = _parse_trees.get((kind, source))
            if tree is None:
                component, tree = parse(source)
                _parse_trees[(kind, source)] = tree
                return component, tree
            return preprocessor().visit(tree), tree

        p.set(owner, "parse", staticmethod(cached_parse))


# --------------------------------------------------------------------------------------------------
# 46. A JSONPath is parsed once
# --------------------------------------------------------------------------------------------------
# moto's interpreter parses an InputPath, OutputPath, ResultPath or Parameters path with
# jsonpath_ng each time it evaluates it, and jsonpath_ng builds its PLY parser (lexer and LALR
# tables) on every parse: a tenth of the interpreter's time. A parsed path is immutable (find()
# reads the data it is given), so one per path and parser serves every evaluation.


def _patch_jsonpath_parse_cache(p: _Patches) -> None:
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # The interpreter's modules bound parse when imported; EventBridge's input transformer
    # (moto.events.utils) and the bridge's own deliveries (events.py) import jsonpath_ng.ext's at each call.
    for module in (json_path, result_path, jsonpath_ng, jsonpath_ng.ext):
        parse = _require(module, "parse")
        p.set(module, "parse", functools.lru_cache(maxsize=4096)(parse))
