"""The bridge's lifecycle: moto started in-process with every patch installed (and served over
HTTP on demand), stopped with every patch removed, and its backends snapshotted and restored."""

from __future__ import annotations

import copy
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import boto3
import boto3.session

from swr.emulator.moto_bridge import (
    _state,
    authorization,
    cloudformation,
    cloudformation_resources,
    cloudwatch,
    dynamodb,
    ec2,
    elbv2,
    events,
    faults,
    iam,
    kms,
    lambda_runtime,
    network,
    responses,
    stepfunctions,
    timing,
)
from swr.emulator.moto_bridge._state import (
    _FAKE_ENV,
    _MOTO_CONFIG,
    LOG,
    _Bridge,
    _lock,
    _Patches,
    _require,
    _require_bridge,
    _restore_env,
    note_backends_changed,
)
from swr.emulator.moto_bridge.cloudformation import ApiCreatedResource, _api_created
from swr.emulator.moto_bridge.hooks import BridgeHooks
from swr.emulator.moto_bridge.lambda_runtime import discarded_async_events
from swr.emulator.moto_bridge.stepfunctions import (
    _clear_client_cache,
    _join_execution_threads,
    _stop_running_executions,
)
from swr.emulator.moto_bridge.timing import _jitter

# --------------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------------


def start(hooks: BridgeHooks, region: str = "ap-northeast-1", seed: int | None = None) -> None:
    """Start moto in-process with every patch installed. A second start() restarts (fresh world).
    ``seed`` seeds moto's ids (and the bridge's): the same seed, the same instance ids and names."""
    with _lock:
        if _state._bridge is not None:
            LOG.warning("moto bridge already started; restarting with a fresh world")
            stop()
        from moto import mock_aws

        discarded_async_events.clear()
        saved_env = {
            k: os.environ.get(k) for k in [*_FAKE_ENV, "AWS_DEFAULT_REGION", "AWS_REGION", "MOTO_EC2_LOAD_DEFAULT_AMIS"]
        }
        os.environ.update(_FAKE_ENV)
        os.environ["AWS_DEFAULT_REGION"] = region
        os.environ["AWS_REGION"] = region
        # Each fresh EC2 backend would load ~1,300 public AMIs (~0.3 s per region); the world
        # registers its own image. An explicit setting by the caller wins.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        mock = mock_aws(config=cast(Any, _MOTO_CONFIG))
        if seed is not None:
            reseed(seed)
        mock.start()  # patches boto3.DEFAULT_SESSION; mock.stop() puts the caller's session back
        boto3.DEFAULT_SESSION = _fake_session(region)
        bridge = _Bridge(hooks=hooks, region=region, mock=mock, patches=_Patches(), saved_env=saved_env)
        try:
            _install_patches(bridge.patches)
        except BaseException:
            bridge.patches.undo_all()
            mock.stop()
            _restore_env(saved_env)
            raise
        # Unknown error codes (e.g. ThrottlingException for DynamoDB) are fine for injected faults.
        warnings.filterwarnings("ignore", message=r"Exception\(_EmulatorError\)")
        _state._bridge = bridge


def reseed(seed: int) -> None:
    """From here on, moto's ids and random choices (and Retry's jitter) follow ``seed``."""
    from moto.moto_api._internal import mock_random

    mock_random.seed(seed)
    _jitter.seed(seed)


_sessions: dict[str, Any] = {}


def _fake_session(region: str) -> Any:
    """A boto3 session with fake credentials, kept across start/stop: a fresh session reloads the
    service models for every client (~0.2 s each), which dominated test time."""
    if region not in _sessions:
        _sessions[region] = boto3.session.Session(
            aws_access_key_id=_FAKE_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=_FAKE_ENV["AWS_SESSION_TOKEN"],
            region_name=region,
        )
    return _sessions[region]


def stop() -> None:
    """Stop the server (if any), running executions, every patch and the mock; reset backends."""
    with _lock:
        bridge = _state._bridge
        if bridge is None:
            return
        stop_server()
        _stop_running_executions()
        _join_execution_threads(timeout=15.0)
        _clear_client_cache()
        bridge.patches.undo_all()
        _state._bridge = None
        bridge.mock.stop()  # remove_data=True: BackendDict.reset() -> fresh world on next start
        _restore_env(bridge.saved_env)


def start_server(port: int = 0) -> str:
    """Serve the same backends over HTTP on 127.0.0.1 (port 0 = a free one); sets MOTO_PORT."""
    with _lock:
        bridge = _state._bridge
        if bridge is None:
            raise RuntimeError("moto_bridge.start() must be called before start_server()")
        if bridge.server is None:
            if port:
                # ThreadedMotoServer binds in its thread and would wait forever if that failed.
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", port))

            server = _server_class()(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            bridge.server = server
            bridge.server_saved_port = os.environ.get("MOTO_PORT")
        _, real_port = bridge.server.get_host_and_port()
        # The interpreter's clients use localhost:$MOTO_PORT whenever the in-process stub is off.
        os.environ["MOTO_PORT"] = str(real_port)
        return f"http://127.0.0.1:{real_port}"


def _server_class() -> type[Any]:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class _QuickStoppingServer(ThreadedMotoServer):
        """moto's threaded server (its _server_entry, but for the poll interval): it looks for a
        shutdown every 50 ms rather than every 500 ms, which every served emulator's stop waited
        out."""

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    _require(ThreadedMotoServer, "_server_entry")
    return _QuickStoppingServer


def stop_server() -> None:
    with _lock:
        bridge = _state._bridge
        if bridge is None or bridge.server is None:
            return
        bridge.server.stop()
        bridge.server = None
        _restore_env({"MOTO_PORT": bridge.server_saved_port})


@dataclass(frozen=True)
class BackendSnapshot:
    """Every moto backend in use, and the bridge's own records of them, as they were."""

    contents: dict[str, dict[str, Any]]  # BackendDict id -> {account id: its backends}
    api_created: list[ApiCreatedResource]
    client_tokens: dict[tuple[str, str, str], tuple[str, str]]


def _copyable_locks() -> None:
    # moto's SQS queues and CloudFormation stacks hold locks and conditions, which deepcopy
    # refuses or gets wrong: a copy gets a fresh, unheld one (a snapshot is taken only while
    # nothing holds them, and nothing waits on them).
    import copyreg

    def fresh(kind: type) -> Callable[[Any], tuple[type, tuple[()]]]:
        return lambda _lock: (kind, ())

    for lock in (threading.Lock(), threading.RLock()):
        copyreg.pickle(type(lock), fresh(type(lock)))
    # A Condition keeps its lock's methods, which deepcopy would leave bound to the original.
    copyreg.pickle(threading.Condition, fresh(threading.Condition))


def snapshot_backends() -> BackendSnapshot:
    """A deep copy of the world moto holds now: taken once a world is built, restored (copied
    again) for every scenario that needs the same world, so a scenario starts without building
    one. Take it while no execution runs."""
    from moto.core.base_backend import BackendDict

    bridge = _require_bridge()
    _copyable_locks()
    with _lock:
        used: list[Any] = list(BackendDict._instances)  # type: ignore[misc]
        memo: dict[int, Any] = {id(d): d for d in used}  # references to a backend dict stay references
        contents = copy.deepcopy({d._id: dict(d) for d in used}, memo)
        return BackendSnapshot(contents, list(_api_created), dict(bridge.client_tokens))


_backend_dicts: dict[str, Any] = {}  # BackendDict id -> the process's BackendDict


def restore_backends(snapshot: BackendSnapshot) -> None:
    """Put moto's backends back as the snapshot has them (a fresh copy: the snapshot stays)."""
    from moto.core.base_backend import BackendDict

    bridge = _require_bridge()
    _copyable_locks()
    with _lock:
        if not set(snapshot.contents) <= set(_backend_dicts):  # scan the modules once, not per restore
            for module in list(sys.modules.values()):  # every backend dict, used or not yet
                for value in list(vars(module).values()) if module is not None else ():
                    if isinstance(value, BackendDict):
                        _backend_dicts[value._id] = value
        known = _backend_dicts
        memo: dict[int, Any] = {id(d): d for d in known.values()}
        contents = copy.deepcopy(snapshot.contents, memo)
        for backend_id, accounts in contents.items():
            backends = known.get(backend_id)
            if backends is None:
                raise RuntimeError("a snapshot's backend is gone: restore it into the process that took it")
            backends.clear()
            backends.update(accounts)
            if backends not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(backends)  # type: ignore[misc]
        note_backends_changed()
        _api_created[:] = snapshot.api_created
        bridge.client_tokens.clear()
        bridge.client_tokens.update(snapshot.client_tokens)


def _install_patches(p: _Patches) -> None:
    # In the patches' order: a later one may wrap what an earlier one installed (20 wraps 6's
    # RunInstances, 28 reads 8's health_for, 42's call_action wraps 9's), and 38 lists each
    # response class's methods once all are in.
    lambda_runtime._patch_lambda(p)  # 1
    events._patch_events(p)  # 2
    cloudwatch._patch_cloudwatch(p)  # 3
    timing._patch_interpreter_time(p)  # 4
    timing._patch_moto_clock(p)  # 4
    stepfunctions._patch_client_cache(p)  # 5
    ec2._patch_ec2(p)  # 6, 7
    elbv2._patch_elbv2(p)  # 8
    faults._patch_fault_injection(p)  # 9
    stepfunctions._patch_named_executions(p)  # 10
    stepfunctions._patch_heartbeat_timeout(p)  # 11
    ec2._patch_eni_security_groups(p)  # 12
    dynamodb._patch_dynamodb_atomic_writes(p)  # 13
    stepfunctions._patch_lambda_task_clock(p)  # 14
    cloudformation_resources._patch_cloudformation_api_resources(p)  # 15
    cloudformation._patch_cloudformation_security_group_egress(p)  # 16
    cloudformation._patch_cloudformation_change_set_outputs(p)  # 17
    cloudformation._patch_cloudformation_unchanged_parameters(p)  # 18
    lambda_runtime._patch_lambda_public_layers(p)  # 19
    ec2._patch_ec2_interface_tags(p)  # 20
    stepfunctions._patch_early_heartbeats(p)  # 21
    cloudwatch._patch_emf_metrics(p)  # 24
    cloudformation._patch_cloudformation_role_policies(p)  # 22
    iam._patch_iam_simulate_principal_policy(p)  # 23
    stepfunctions._patch_stop_execution(p)  # 25
    stepfunctions._patch_redrive_unsupported(p)  # 26
    ec2._patch_ec2_stop(p)  # 27
    elbv2._patch_elbv2_draining(p)  # 28
    network._patch_network_acl_quota(p)  # 29
    network._patch_efs_mount_target_deletion(p)  # 30
    network._patch_eni_connection_tracking(p)  # 31
    stepfunctions._patch_lambda_service_errors(p)  # 32
    timing._patch_sdk_retry_time(p)  # 33
    events._patch_put_events_limits(p)  # 34
    network._patch_subnet_ip_reuse(p)  # 35
    stepfunctions._patch_asl_parse_cache(p)  # 36
    responses._patch_serializer_alias_cache(p)  # 37
    responses._patch_response_method_names(p)  # 38
    kms._patch_kms_key_material(p)  # 39
    iam._patch_unsigned_requests(p)  # 40
    cloudformation._patch_cloudformation_conditioned_out(p)  # 41
    authorization._patch_step_authorization(p)  # 42
    dynamodb._patch_dynamodb_item_json(p)  # 43
    dynamodb._patch_dynamodb_item_reads(p)  # 44
    cloudformation._patch_cloudformation_libyaml(p)  # 45
    stepfunctions._patch_jsonpath_parse_cache(p)  # 46
    responses._patch_stubber_routes(p)  # 47
