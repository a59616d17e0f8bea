"""The one module that knows about moto: starts it and patches its gaps for the SWR emulator.

moto 5.2.5 is pinned; every patch below reaches into moto's private internals and has a canary
test in ``tests/emulator/test_moto_bridge.py`` so that an upgrade that moves them fails loudly.

Patches (installed by :func:`start`, removed by :func:`stop`), and why each exists:

1. Lambda runs real code in-process: moto's docker-less Lambda only echoes the payload. The
   function's Environment.Variables are put in ``os.environ`` before its handler runs (one
   process: swr's functions share one set of variables, so they never disagree). An
   asynchronous invocation that fails is run twice more, a minute and two minutes later, as on
   AWS; then it is kept in ``discarded_async_events`` (moto drops a function's DeadLetterConfig).
2. EventBridge rules start executions / invoke Lambdas / publish to SNS topics: moto raises
   NotImplementedError for ``states``/``lambda``/``sns`` targets and fails the whole ``put_events``,
   ignores DISABLED rules, and reads every InputTemplate as JSON (AWS also takes plain text).
   An SNS target is refused, as on AWS, unless the topic's policy lets events.amazonaws.com
   publish from the rule.
   As on AWS, a delivery that fails is retried (throttling, 5xx) per the target's RetryPolicy and
   then, or at once for any other error, sent to its DeadLetterConfig queue with the error.
3. CloudWatch alarm state changes emit events: moto's ``set_alarm_state`` publishes nothing.
4. Time: moto's interpreter waits (Wait, Retry, TimeoutSeconds, HeartbeatSeconds) in real time and
   stamps histories and resources with the wall clock. With ``hooks.scheduler`` (virtual time, the
   default in process) its threads, events, sleeps and clocks are the scheduler's: one actor runs
   at a time, simulated time jumps to the next deadline when all wait, and moto's random numbers
   and uuids are seeded, so a seed replays to the same history. Without it (``swr emulator``,
   whose clients act in real time) waits are scaled by ``1 / hooks.warp()``. Either way the
   declared seconds in history are unchanged.
5. Cached interpreter clients: the interpreter builds a new boto3 client per Task (3-10x slower).
6. Idempotent RunInstances: moto ignores ``ClientToken`` and launches again on a retry.
7. EC2 lifecycle is not instant: moto makes instances ``running``/``terminated`` at once; here they
   start ``pending`` / stop at ``shutting-down`` and the simulation moves them on.
8. Target health from the simulation: moto reports every registered instance ``healthy``.
9. API fault injection: lets the simulation answer any API call with a throttle/server error in
   the service's own protocol (in-process and server mode, including the interpreter's own calls).
10. Named executions by default: unnamed ``start_execution`` gets ARN ``...:None`` and a second one
    raises ExecutionAlreadyExists.
11. Heartbeat timeouts are ``States.HeartbeatTimeout`` (moto says ``States.Timeout``); as on AWS,
    ``ErrorEquals: ["States.Timeout"]`` still matches them.
12. An instance's security groups are its primary ENI's: moto reports the union of the launch
    groups and the ENI's, so ``ModifyNetworkInterfaceAttribute(Groups=...)`` could never fence.
13. Conditional writes are atomic: moto checks a ConditionExpression and writes without a lock, so
    two threads could both pass the same condition; DynamoDB does not allow that, and the lease
    (one failover per application) depends on it.
14. Lambda tasks run inside ``hooks.invoking()``: the simulation's clock can stand still while the
    emulator computes a step (see BridgeHooks.invoking).
15. CloudFormation creates through the API what moto's CloudFormation skips (alarms, trails, bucket,
    queue and topic policies, Lambda permissions) or mishandles (KMS key policies, ingress rules
    without an id), and puts state machines in the executing backend, with their definition read
    from S3 and substituted. Each has the physical id it has on AWS (queue and topic policies
    excepted); a stack update keeps its logical id and name and changes in place what AWS changes
    in place; deleting it succeeds when moto deleted its bucket, queue or group first (see
    resources_created_through_api()).
16. CloudFormation security groups with SecurityGroupEgress rules lose the default allow-all rule,
    as on AWS (an empty list keeps it); the rules keep their Description and may name an IPv6
    range or a prefix list.
17. A stack created through a change set gets its template parsed, so it has outputs: moto creates
    it with an empty template and never parses the change set's.
18. An update change set that changes nothing fails with "didn't contain changes", as on AWS:
    moto compares the given parameters with those given at creation, not the effective values.
19. Another account's Lambda layer (AWS's Powertools layer) exists: moto refuses it on update.
20. RunInstances applies "network-interface" TagSpecifications: moto drops them.
21. A waitForTaskToken task takes heartbeats while its Lambda still runs: moto says InvalidToken.
22. CloudFormation roles get their ManagedPolicyArns (moto drops them) and an update syncs their
    managed and inline policies (moto changes neither).
23. IAM SimulatePrincipalPolicy: moto does not implement it; evaluated with moto's policy statement
    matching and AWS's condition semantics (see the patch).
24. Embedded metric format becomes metrics: on AWS, CloudWatch Logs turns the EMF documents a
    function writes to its log into CloudWatch metrics; here Powertools' flush of an in-process
    handler puts the same data points into moto's CloudWatch (PutMetricData), unless the
    function's own environment disables metrics.
25. StopExecution aborts an execution whose task waits for its token at once, as on AWS.
26. RedriveExecution answers UnknownOperationException (moto has none) instead of a 500.
27. StopInstances leaves instances "stopping" until the simulation stops them, and refuses an
    instance that is shutting down or terminated (IncorrectInstanceState), as AWS does.
28. Deregistered targets are "draining" for the target group's deregistration delay (simulated
    time), then "unused"; a terminated registered instance is deregistered.
29. Network ACLs take at most 20 entries each way (the AWS quota, default deny included):
    NetworkAclEntryLimitExceeded beyond.
30. DeleteMountTarget leaves the mount target "deleting" until the simulation lets it go.
31. Network interfaces keep the ConnectionTrackingSpecification they are given and report it.
32. A Lambda task given as a bare function ARN whose invoke fails names the error as AWS does,
    ``Lambda.<code>`` (e.g. Lambda.ServiceException, Lambda.TooManyRequestsException), so that the
    ASL's Retry on those names matches; moto names every such failure ``Exception``.
33. The SDK's own retries (botocore standard mode, as the handlers run on AWS) wait in the
    emulator's time, with seeded jitter: botocore sleeps for real and draws from the global
    random generator, which would stall virtual time and make a seed replay differently.
34. PutEvents refuses what EventBridge refuses: a request whose entries total 256 KB or more
    (ValidationException) and, per entry, a source starting with ``aws.`` from a caller that is
    not an AWS service (NotAuthorizedForSourceException). The simulation publishes AWS's own
    events inside :func:`as_aws_service`.
35. A subnet hands out the lowest released private address first: moto pops an arbitrary one
    from a set of strings, whose order changes with the process's hash seed, so a seed would
    not replay alike in another process (AWS documents no order; any is as true).
36. A state machine definition (and each intrinsic function) is parsed once per process: moto
    parses the definition again for every execution (a third of the CPU of the shortest seeds).
    Each execution still gets fresh components built from the cached tree.
37. moto's response serializer works out each member's possible attribute names once per class,
    shape and parent, not for every value of every response (a quarter of the CPU of reading a
    record from DynamoDB went to aliases of absent members). The output is the same.
38. moto lists a response class's methods (``inspect.getmembers``) on every request; here once per
    class and bridge.
39. KMS key material is made once per key spec and process: moto generates a 2048-bit RSA key for
    every key, symmetric ones included (about 0.1 s each; the EBS default key of every
    encrypted launch paid it). swr only asks KMS to encrypt, never to sign, so keys sharing
    material changes nothing it can see.
40. In-process requests are not signed: moto checks no signature, and SigV4's canonical request
    and HMAC chain cost more than moto's handling of a small call. The Authorization header keeps
    its credential scope (moto reads the access key and region from it); the signature is a fixed
    word. Clients outside the process (``swr emulator``) sign as always.
41. A resource whose Condition is false is not a stack resource: moto lists it, with no logical
    id or type, in DescribeStackResources and ListStackResources (CloudFormation creates and
    lists none).
42. Every call made with a role's credentials is authorized against that role with patch 23's
    evaluator (the resource ARNs and condition keys AWS would use); a refused call fails as AWS
    fails it and is listed in ``denials``. moto enforces no IAM on its own. The callers: a Lambda
    step's handler (the function's role), the interpreter's Lambda invokes and SDK integrations
    (the state machine's role), EventBridge deliveries (a target's role, or a function's resource
    policy; refused deliveries go to the dead-letter queue), and whatever runs inside
    :func:`acting_as` (the emulator's instances: the instance profile's role with the VPC, address
    and instance its credentials are used from), and requests signed with an IAM user's access
    key (an operator's command line: the user's inline and attached policies). Not requests
    signed with any other key (the drivers' test credentials), nor the emulator's bookkeeping
    (:func:`as_emulator`).
43. DynamoDB item results (GetItem, PutItem, Query, ...) are written as JSON directly rather than
    member by member through moto's model-driven serializer; results holding bytes or datetimes
    still go through moto's. The response a client parses is the same.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import logging
import os
import random
import re
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import boto3
import boto3.session
from botocore.exceptions import ClientError

from swr.emulator.scheduler import ActorThread, Scheduler, VirtualEvent

LOG = logging.getLogger(__name__)

__all__ = [
    "ApiCreatedResource",
    "ApiFault",
    "BridgeHooks",
    "LambdaContext",
    "WarpedEvent",
    "acting_as",
    "as_aws_service",
    "as_emulator",
    "instance_state",
    "registered_targets",
    "reseed",
    "resources_created_through_api",
    "restore_backends",
    "security_groups_by_instance",
    "set_instance_state",
    "snapshot_backends",
    "start",
    "start_server",
    "stop",
    "stop_server",
]

# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiFault:
    """An error the emulator returns instead of executing an API call."""

    code: str  # e.g. "RequestLimitExceeded", "ThrottlingException", "ServiceUnavailable"
    message: str
    status: int = 400  # 503/500 for server errors


def _no_fault(service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
    return None


def _ignore_ids(ids: list[str]) -> None:
    return None


def _ignore_event(event: dict[str, Any]) -> None:
    return None


def _nothing() -> None:
    return None


def _delete_at_once(mount_target_id: str) -> None:
    finish_mount_target_deletion(mount_target_id)


@dataclass
class BridgeHooks:
    """How the simulation steers the emulator. Read on every use, so fields may be swapped live."""

    # Simulated seconds per real second (100.0 = a 50 s Wait takes 0.5 s); <= 0 pauses waits.
    warp: Callable[[], float]
    # (boto3 service name e.g. "ec2"/"elbv2"/"stepfunctions"/"cloudwatch"/"lambda", action e.g.
    # "RunInstances", top-level request params as moto parsed them) -> fault to return, or None.
    fault_for: Callable[[str, str, dict[str, Any]], ApiFault | None] = _no_fault
    on_instances_launched: Callable[[list[str]], None] = _ignore_ids  # new instances, state pending
    on_instances_terminating: Callable[[list[str]], None] = _ignore_ids  # now shutting-down
    on_instances_stopping: Callable[[list[str]], None] = _ignore_ids  # now stopping
    # A mount target is now "deleting"; call finish_mount_target_deletion(id) when it is gone.
    mount_target_deleting: Callable[[str], None] = _delete_at_once
    # (target_group_arn, instance_id) -> (state, reason_code, description) for registered instance
    # targets; None keeps moto's answer.
    target_health: Callable[[str, str], tuple[str, str | None, str | None]] | None = None
    on_alarm_event: Callable[[dict[str, Any]], None] = _ignore_event  # each alarm event published
    # The simulated clock (epoch seconds). When set, interpreter waits last until it has moved on
    # by the declared seconds, so a clock that pauses (warp() == 0) pauses them exactly.
    sim_now: Callable[[], float] | None = None
    # Virtual time: the interpreter's threads are the scheduler's actors and its waits, timestamps
    # and ids come from it (see swr/emulator/scheduler.py); warp and sim_now are then unused.
    scheduler: Scheduler | None = None
    # Entered around every Lambda task the interpreter runs, request and handler both (e.g. to
    # pause the simulated clock while the emulator spends real CPU on a step, which warped time
    # would otherwise multiply). Callback waits (.waitForTaskToken) are outside it.
    invoking: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Called after a function's Environment.Variables changed os.environ (e.g. to drop settings
    # cached from the previous values).
    on_function_environment: Callable[[], None] = _nothing


# --------------------------------------------------------------------------------------------------
# Module state
# --------------------------------------------------------------------------------------------------

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class _Patches:
    """Records every attribute replaced so that stop() can put moto back exactly as it was."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        own = vars(owner)
        self._undo.append((owner, name, own.get(name), name in own))
        setattr(owner, name, value)

    def undo_all(self) -> None:
        while self._undo:
            owner, name, old, had = self._undo.pop()
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)


@dataclass
class _Bridge:
    hooks: BridgeHooks
    region: str
    mock: Any
    patches: _Patches
    saved_env: dict[str, str | None]
    server: Any = None
    server_saved_port: str | None = None
    client_tokens: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)


_lock = threading.RLock()
_bridge: _Bridge | None = None


def _hooks() -> BridgeHooks | None:
    bridge = _bridge
    return None if bridge is None else bridge.hooks


# --------------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------------


def start(hooks: BridgeHooks, region: str = "ap-northeast-1", seed: int | None = None) -> None:
    """Start moto in-process with every patch installed. A second start() restarts (fresh world).
    ``seed`` seeds moto's ids (and the bridge's): the same seed, the same instance ids and names."""
    global _bridge
    with _lock:
        if _bridge is not None:
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
        _bridge = bridge


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
    global _bridge
    with _lock:
        bridge = _bridge
        if bridge is None:
            return
        stop_server()
        _stop_running_executions()
        _join_execution_threads(timeout=15.0)
        _clear_client_cache()
        bridge.patches.undo_all()
        _bridge = None
        bridge.mock.stop()  # remove_data=True: BackendDict.reset() -> fresh world on next start
        _restore_env(bridge.saved_env)


def start_server(port: int = 0) -> str:
    """Serve the same backends over HTTP on 127.0.0.1 (port 0 = a free one); sets MOTO_PORT."""
    with _lock:
        bridge = _bridge
        if bridge is None:
            raise RuntimeError("moto_bridge.start() must be called before start_server()")
        if bridge.server is None:
            from moto.server import ThreadedMotoServer

            if port:
                # ThreadedMotoServer binds in its thread and would wait forever if that failed.
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", port))

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            bridge.server = server
            bridge.server_saved_port = os.environ.get("MOTO_PORT")
        _, real_port = bridge.server.get_host_and_port()
        # The interpreter's clients use localhost:$MOTO_PORT whenever the in-process stub is off.
        os.environ["MOTO_PORT"] = str(real_port)
        return f"http://127.0.0.1:{real_port}"


def stop_server() -> None:
    with _lock:
        bridge = _bridge
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
        _api_created[:] = snapshot.api_created
        bridge.client_tokens.clear()
        bridge.client_tokens.update(snapshot.client_tokens)


def _require_bridge() -> _Bridge:
    bridge = _bridge
    if bridge is None:
        raise RuntimeError("moto bridge not started")
    return bridge


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


def _install_patches(p: _Patches) -> None:
    _patch_lambda(p)
    _patch_events(p)
    _patch_cloudwatch(p)
    _patch_interpreter_time(p)
    _patch_moto_clock(p)
    _patch_client_cache(p)
    _patch_ec2(p)
    _patch_elbv2(p)
    _patch_fault_injection(p)
    _patch_named_executions(p)
    _patch_heartbeat_timeout(p)
    _patch_eni_security_groups(p)
    _patch_dynamodb_atomic_writes(p)
    _patch_lambda_task_clock(p)
    _patch_cloudformation_api_resources(p)
    _patch_cloudformation_security_group_egress(p)
    _patch_cloudformation_change_set_outputs(p)
    _patch_cloudformation_unchanged_parameters(p)
    _patch_lambda_public_layers(p)
    _patch_ec2_interface_tags(p)
    _patch_early_heartbeats(p)
    _patch_emf_metrics(p)
    _patch_cloudformation_role_policies(p)
    _patch_iam_simulate_principal_policy(p)
    _patch_stop_execution(p)
    _patch_redrive_unsupported(p)
    _patch_ec2_stop(p)
    _patch_elbv2_draining(p)
    _patch_network_acl_quota(p)
    _patch_efs_mount_target_deletion(p)
    _patch_eni_connection_tracking(p)
    _patch_lambda_service_errors(p)
    _patch_sdk_retry_time(p)
    _patch_put_events_limits(p)
    _patch_subnet_ip_reuse(p)
    _patch_asl_parse_cache(p)
    _patch_serializer_alias_cache(p)
    _patch_response_method_names(p)
    _patch_kms_key_material(p)
    _patch_unsigned_requests(p)
    _patch_cloudformation_conditioned_out(p)
    _patch_step_authorization(p)
    _patch_dynamodb_item_json(p)


def _require(owner: Any, name: str, expected: Any = None) -> Any:
    """Fail loudly when a moto internal we patch has moved."""
    if name not in vars(owner):
        raise RuntimeError(f"moto internals moved: {owner!r} has no {name!r} (moto bridge needs update)")
    value = vars(owner)[name]
    if expected is not None and value is not expected:
        raise RuntimeError(f"moto internals moved: {owner!r}.{name} is {value!r}, expected {expected!r}")
    return value


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
_principal = threading.local()  # .current: (role ARN, condition context) this thread's calls are made as


@contextmanager
def acting_as(role_arn: str, context: dict[str, list[str]] | None = None) -> Iterator[None]:
    """The calls this thread makes inside are made with ``role_arn``'s credentials: patch 42
    authorizes each against the role, with ``context``'s global condition keys (for an instance's
    credentials: the VPC, address and instance they are used from). Nests: a Lambda the
    interpreter invokes acts as its own role, then the interpreter again."""
    with _principal_is((role_arn, {k.lower(): list(v) for k, v in (context or {}).items()})):
        yield


@contextmanager
def _principal_is(current: tuple[str, dict[str, list[str]]] | None) -> Iterator[None]:
    saved = getattr(_principal, "current", None)
    _principal.current = current
    try:
        yield
    finally:
        _principal.current = saved


def _apply_environment(fn: Any) -> None:
    """The function's Environment.Variables, as the Lambda runtime sets them."""
    variables = {str(k): str(v) for k, v in (getattr(fn, "environment_vars", None) or {}).items()}
    bridge = _bridge
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
# 2. EventBridge rules start executions / invoke Lambdas
# --------------------------------------------------------------------------------------------------

_OUR_TARGET_SERVICES = ("states", "lambda", "sns")


def _iso_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except ValueError:
            return value  # already a timestamp string
    else:
        moment = dt.datetime.now(tz=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aws_event(message: dict[str, Any]) -> dict[str, Any]:
    """moto's internal event message -> the envelope AWS delivers to targets (ISO time, no extras)."""
    keys = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
    event = {k: copy.deepcopy(message[k]) for k in keys if k in message}
    event["time"] = _iso_time(message.get("time"))
    return event


def _target_input(target: dict[str, Any], message: dict[str, Any], transform: bool) -> str:
    event = _aws_event(message)
    if not transform:
        return json.dumps(event)
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse as jsonpath  # moto's own dependency

        found = jsonpath(target["InputPath"]).find(event)
        return json.dumps(found[0].value if found else None)
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        if not str(transformer.get("InputTemplate") or "{").lstrip().startswith(("{", "[")):
            return _filled_text_template(transformer, event)
        parsed = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": message.get("ingestion-time", time.time())},  # type: ignore[typeddict-item]
        )
        return json.dumps(parsed)
    return json.dumps(event)


def _filled_text_template(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """A plain-text InputTemplate (an SNS message, say), filled as AWS fills it: each <variable>
    becomes its value, a string as it is and anything else as JSON; a path the event lacks
    leaves the variable empty."""
    from jsonpath_ng.ext import parse as jsonpath  # moto's own dependency

    text = str(transformer["InputTemplate"])
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        found = jsonpath(path).find(event)
        value = found[0].value if found else ""
        text = text.replace(f"<{name}>", value if isinstance(value, str) else json.dumps(value))
    return text


def _topic_policy_allows(policy: dict[str, Any], rule_arn: str) -> bool:
    """Does the topic's policy let EventBridge publish for this rule? An Allow of sns:Publish to
    the service principal events.amazonaws.com (or to anyone, unconditionally) whose
    aws:SourceArn condition, if it has one, names the rule. Deny statements are not read."""

    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    for statement in listed(policy.get("Statement") or []):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if not {"sns:publish", "sns:*", "*"} & {str(a).lower() for a in listed(statement.get("Action"))}:
            continue
        principal, conditions = statement.get("Principal"), statement.get("Condition") or {}
        anyone = principal in ("*", {"AWS": "*"}) and not conditions
        services = listed(principal.get("Service", [])) if isinstance(principal, dict) else []
        if not anyone and "events.amazonaws.com" not in services:
            continue
        sources = [
            arn
            for test in conditions.values()
            for key, arns in test.items()
            if key.lower() == "aws:sourcearn"
            for arn in listed(arns)
        ]
        if not sources or rule_arn in sources:
            return True
    return False


class _TopicPolicyRefuses(Exception):
    """EventBridge may not publish to the topic: AWS fails the delivery the same way."""


def _publish_to_topic(rule_arn: str, topic_arn: str, account: str, region: str, payload: str) -> None:
    from moto.sns.models import sns_backends

    topic = sns_backends[account][region].get_topic(topic_arn)
    if not _topic_policy_allows(json.loads(topic.policy), rule_arn):
        raise _TopicPolicyRefuses(f"the policy of {topic_arn} does not let events.amazonaws.com publish for {rule_arn}")
    topic.publish(message=payload)


def _deliver(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    arn = str(target["Arn"])
    parts = arn.split(":")
    service, region, account = parts[2], parts[3], parts[4]
    payload = _target_input(target, message, transform)
    if service == "states":
        from moto.stepfunctions.responses import get_backend

        # EventBridge starts the execution with the target's role (patch 42's evaluator).
        refused = _authorize(
            str(target.get("RoleArn") or ""),
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": arn},
            region,
            account,
        )
        if refused is not None or not target.get("RoleArn"):
            denials.append(refused or f"target {arn} of {rule_arn} has no role")
            raise _TargetRefuses(refused or f"target {arn} of {rule_arn} has no role to start it with")
        get_backend(account, region).start_execution(arn, str(_new_uuid()), payload)
    elif service == "sns":
        _publish_to_topic(rule_arn, arn, account, region, payload)
    else:
        from moto.awslambda_simple.models import lambda_simple_backends

        fn = lambda_simple_backends[account][region].get_function(arn, None)
        if not _function_policy_allows(fn, rule_arn):
            refused = f"the resource policy of {arn} does not let events.amazonaws.com invoke it for {rule_arn}"
            denials.append(refused)
            raise _TargetRefuses(refused)
        _invoke_async(fn, json.loads(payload))


class _TargetRefuses(Exception):
    pass


def _function_policy_allows(fn: Any, rule_arn: str) -> bool:
    """Lambda's resource-based policy: an EventBridge rule invokes a function only when a
    statement lets events.amazonaws.com call lambda:InvokeFunction, for this rule's ARN when
    it names one (AWS::Lambda::Permission with SourceArn). EventBridge User Guide, "Using
    resource-based policies for Amazon EventBridge" (Lambda targets need the function's
    resource-based policy, not a role)."""
    try:
        policy = fn.policy.get_policy()["Policy"]
    except Exception:  # no statement at all (moto raises its not-found)
        return False
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal", {})
        services = principal.get("Service") if isinstance(principal, dict) else principal
        actions = statement.get("Action")
        if statement.get("Effect") != "Allow" or "events.amazonaws.com" not in _as_list(services):
            continue
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in _as_list(actions)):
            continue
        conditions = {
            key.lower(): value
            for test in ("ArnLike", "ArnEquals", "StringEquals", "StringLike")
            for key, value in statement.get("Condition", {}).get(test, {}).items()
        }
        source = conditions.get("aws:sourcearn")
        if source is None or any(_arn_like(rule_arn, str(s)) for s in _as_list(source)):
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _arn_like(arn: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(arn, pattern)


_THROTTLING_CODES = ("Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded")


class _DeliveryFailed(Exception):
    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


_TARGET_ACTIONS = {
    "states": ("stepfunctions", "StartExecution", "stateMachineArn"),
    "lambda": ("lambda", "Invoke", "FunctionName"),
    "sns": ("sns", "Publish", "TopicArn"),
}


def _attempt(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    """One delivery, answered with the fault the simulation injects for the target's API."""
    arn = str(target["Arn"])
    service, action, key = _TARGET_ACTIONS[arn.split(":")[2]]
    params = {key: arn}
    hooks = _hooks()
    fault = hooks.fault_for(service, action, params) if hooks is not None else None
    if fault is not None:
        retryable = fault.status >= 500 or fault.code in _THROTTLING_CODES
        raise _DeliveryFailed(fault.code, fault.message, retryable)
    try:
        _deliver(rule_arn, target, message, transform)
    except Exception as error:  # e.g. the state machine is gone: not worth a retry
        raise _DeliveryFailed(type(error).__name__, str(error), False) from error


def _sim_time() -> float:
    hooks = _hooks()
    return hooks.sim_now() if hooks is not None and hooks.sim_now is not None else time.time()


def _deliver_or_dead_letter(rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool) -> None:
    """The first attempt now; retries, in simulated time, on a thread of their own. EventBridge
    delivers as itself (with the target's role, or by the target's resource policy), not as the
    caller of PutEvents, whose thread this is."""
    with as_emulator():
        try:
            _attempt(rule_arn, target, message, transform)
            return
        except _DeliveryFailed as failure:
            if not failure.retryable:
                _dead_letter(rule_arn, target, message, failure, "non-retryable error", 0)
                return
    _spawn(
        _retry_delivery,
        name=f"swr-event-retry-{target.get('Id', '')}",
        args=(rule_arn, target, message, transform, _sim_time()),
    )


def _retry_delivery(
    rule_arn: str, target: dict[str, Any], message: dict[str, Any], transform: bool, first_attempt: float
) -> None:
    policy = target.get("RetryPolicy") or {}
    max_retries = int(policy.get("MaximumRetryAttempts", 185))
    max_age = float(policy.get("MaximumEventAgeInSeconds", 86400))
    failure = _DeliveryFailed("", "", True)
    for retry in range(1, max_retries + 1):
        _sleep(min(2.0**retry, 60.0))  # exponential backoff, capped at a minute
        if _bridge is None:
            return  # the emulator stopped; so did EventBridge
        if _sim_time() - first_attempt > max_age:
            _dead_letter(rule_arn, target, message, failure, "MaximumEventAgeInSeconds", retry - 1)
            return
        try:
            _attempt(rule_arn, target, message, transform)
            return
        except _DeliveryFailed as error:
            failure = error
            if not error.retryable:
                _dead_letter(rule_arn, target, message, error, "non-retryable error", retry)
                return
    _dead_letter(rule_arn, target, message, failure, "MaximumRetryAttempts", max_retries)


def _dead_letter(
    rule_arn: str, target: dict[str, Any], message: dict[str, Any], failure: _DeliveryFailed, why: str, retries: int
) -> None:
    """What EventBridge sends to a target's dead-letter queue: the event, and why in attributes."""
    queue_arn = str((target.get("DeadLetterConfig") or {}).get("Arn") or "")
    if not queue_arn:
        LOG.error("EventBridge rule %s: event for %s dropped (%s: %s)", rule_arn, target["Arn"], failure.code, why)
        return
    _, _, _, region, account, name = queue_arn.split(":")
    attributes = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": str(target["Arn"]),
        "ERROR_CODE": failure.code or "Unknown",
        "ERROR_MESSAGE": failure.message or why,
        "EXHAUSTED_RETRY_CONDITION": why,
        "RETRY_ATTEMPTS": str(retries),
    }
    sqs = _api_client("sqs", region)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(_aws_event(message)),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    LOG.warning("EventBridge rule %s: event for %s sent to %s (%s)", rule_arn, target["Arn"], queue_arn, why)


def _patch_events(p: _Patches) -> None:
    from moto.events.models import Rule

    original = _require(Rule, "send_to_targets")

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        # AWS never fails PutEvents because of a target, and does not deliver to disabled rules or
        # to schedule-only rules; moto does all three.
        if getattr(self, "state", "ENABLED") == "DISABLED":
            return
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        if not self.event_pattern.matches_event(original_event):
            return
        ours: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for target in self.targets:
            service = str(target.get("Arn", "")).split(":")[2:3]
            (ours if service and service[0] in _OUR_TARGET_SERVICES else others).append(target)
        for target in ours:
            _deliver_or_dead_letter(str(self.arn), target, dict(original_event), transform_input)
        if others:
            clone = copy.copy(self)  # moto's own delivery for the other targets, on a shallow copy
            clone.targets = others
            try:
                original(clone, original_event, transform_input)
            except Exception:
                LOG.exception("EventBridge rule %s: moto delivery failed", self.name)

    p.set(Rule, "send_to_targets", send_to_targets)


def _publish_event(account: str, region: str, event: dict[str, Any]) -> None:
    """Route an AWS-service event on the default bus (as moto's put_events does, same id)."""
    from moto.events.models import events_backends

    bus = events_backends[account][region].describe_event_bus("default")
    message = copy.deepcopy(event)
    message["time"] = dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    message["ingestion-time"] = time.time()
    for rule in list(bus.rules.values()):
        rule.send_to_targets(cast(Any, copy.deepcopy(message)))


# --------------------------------------------------------------------------------------------------
# 3. CloudWatch alarm state changes emit events
# --------------------------------------------------------------------------------------------------


def _alarm_timestamp(moment: dt.datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _alarm_state(value: str, reason: str, reason_data: str | None, moment: dt.datetime) -> dict[str, Any]:
    state: dict[str, Any] = {"value": value, "reason": reason, "timestamp": _alarm_timestamp(moment)}
    if reason_data:
        state["reasonData"] = reason_data
    return state


def _metric_stat(namespace: str, name: str, dims: Any, period: Any, stat: Any, unit: Any) -> dict[str, Any]:
    metric_stat: dict[str, Any] = {
        "metric": {"namespace": namespace, "name": name, "dimensions": {d.name: d.value for d in dims or []}},
        "period": int(period) if period is not None else None,
        "stat": stat,
    }
    if unit:
        metric_stat["unit"] = unit
    return metric_stat


def _alarm_configuration(alarm: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if alarm.description:
        config["description"] = alarm.description
    if getattr(alarm, "rule", None):  # composite alarm
        config["alarmRule"] = alarm.rule
        return config
    metrics: list[dict[str, Any]] = []
    if alarm.metric_data_queries:
        for q in alarm.metric_data_queries:
            entry: dict[str, Any] = {"id": q.id, "returnData": str(q.return_data).lower() != "false"}
            if q.label:
                entry["label"] = q.label
            if q.expression:
                entry["expression"] = q.expression
            if q.metric_stat:
                ms = q.metric_stat
                entry["metricStat"] = _metric_stat(
                    ms.metric.namespace, ms.metric.metric_name, ms.metric.dimensions, ms.period, ms.stat, ms.unit
                )
            metrics.append(entry)
    else:
        metrics.append(
            {
                # AWS gives single-metric alarms a generated id; keep it stable per alarm.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
                "metricStat": _metric_stat(
                    alarm.namespace,
                    alarm.metric_name,
                    alarm.dimensions,
                    alarm.period,
                    alarm.statistic or alarm.extended_statistic,
                    alarm.unit,
                ),
                "returnData": True,
            }
        )
    config["metrics"] = metrics
    return config


def _alarm_event(account: str, region: str, alarm: Any, previous: dict[str, Any]) -> dict[str, Any]:
    moment = alarm.state_updated_timestamp
    return {
        "version": "0",
        "id": str(_new_uuid()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": _iso_time(moment),
        "region": region,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": _alarm_state(alarm.state_value, alarm.state_reason, alarm.state_reason_data, moment),
            "previousState": previous,
            "configuration": _alarm_configuration(alarm),
        },
    }


def _patch_cloudwatch(p: _Patches) -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    original = _require(CloudWatchBackend, "set_alarm_state")

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        previous = None
        if alarm is not None:
            previous = _alarm_state(
                alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp
            )
        original(self, alarm_name, reason, reason_data, state_value)
        if alarm is None or previous is None or previous["value"] == alarm.state_value:
            return  # AWS emits only on an actual change of state value
        event = _alarm_event(self.account_id, self.region_name, alarm, previous)
        _publish_event(self.account_id, self.region_name, event)
        hooks = _hooks()
        if hooks is not None:
            hooks.on_alarm_event(event)

    p.set(CloudWatchBackend, "set_alarm_state", set_alarm_state)


# --------------------------------------------------------------------------------------------------
# 4. Time warp for the ASL interpreter
# --------------------------------------------------------------------------------------------------

_MAX_REAL_SLICE = 0.5  # re-read warp() at least this often (real seconds) while waiting


def _warp() -> float:
    hooks = _hooks()
    return 1.0 if hooks is None else float(hooks.warp())


def _warped_block(block: Callable[[float], bool], sim_seconds: float) -> bool:
    """Block for sim_seconds of simulated time in real slices; block(real) -> True ends early."""
    hooks = _hooks()
    if hooks is not None and hooks.sim_now is not None:
        return _block_until(block, hooks.sim_now, hooks.sim_now() + float(sim_seconds))
    remaining = float(sim_seconds)
    while remaining > 0:
        warp = _warp()
        if warp <= 0:  # paused: simulated time stands still
            if block(_MAX_REAL_SLICE):
                return True
            continue
        real = min(remaining / warp, _MAX_REAL_SLICE)
        if block(real):
            return True
        remaining -= real * warp
    return block(0)


_PAUSED_SLICE = 0.005  # real seconds between looks at a paused clock


def _block_until(block: Callable[[float], bool], now: Callable[[], float], deadline: float) -> bool:
    while True:
        remaining = deadline - now()
        if remaining <= 0:
            return block(0)
        warp = _warp()
        real = _PAUSED_SLICE if warp <= 0 else min(remaining / warp, _MAX_REAL_SLICE)
        if block(real):
            return True


class WarpedEvent(threading.Event):
    """threading.Event whose wait(timeout) treats timeout as simulated seconds."""

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        return _warped_block(super().wait, timeout)


class _WarpedJoinThread(threading.Thread):
    """threading.Thread whose join(timeout) treats timeout as simulated seconds (execution timeout)."""

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            super().join()
            return

        def block(real: float) -> bool:
            threading.Thread.join(self, real)
            return not self.is_alive()

        _warped_block(block, timeout)


def _warped_sleep(seconds: float) -> None:
    def block(real: float) -> bool:
        time.sleep(real)
        return False

    _warped_block(block, seconds)


class _WarpClock:
    """A wall clock that runs warp() times faster than real time (for Wait's elapsed-time check)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._real = time.monotonic()
        self._sim = time.time()

    def time(self) -> float:
        hooks = _hooks()
        if hooks is not None and hooks.sim_now is not None:
            return hooks.sim_now()
        with self._lock:
            now = time.monotonic()
            self._sim += (now - self._real) * max(_warp(), 0.0)
            self._real = now
            return self._sim


class _ModuleShim:
    """Stands in for a stdlib module inside one moto module: a few names replaced, the rest forwarded."""

    def __init__(self, real: ModuleType, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# Virtual time (hooks.scheduler set: the in-process emulator) or warped wall time (the served
# emulator): the interpreter's threads, events, sleeps and clocks are made here, per mode.


def _scheduler() -> Scheduler | None:
    hooks = _hooks()
    return None if hooks is None else hooks.scheduler


def _new_event() -> Any:
    scheduler = _scheduler()
    return VirtualEvent(scheduler) if scheduler is not None else WarpedEvent()


def _new_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    scheduler = _scheduler()
    if scheduler is not None:
        return ActorThread(scheduler, *args, **kwargs)
    return _WarpedJoinThread(*args, **kwargs)


def _spawn(target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> None:
    """Start a thread of the emulator's own (a retry, an asynchronous invocation)."""
    _new_thread(target=target, name=name, args=args, daemon=True).start()


def _sleep(seconds: float) -> None:
    scheduler = _scheduler()
    if scheduler is not None:
        scheduler.sleep(seconds)
    else:
        _warped_sleep(seconds)


_wait_clock = _WarpClock()


def _time() -> float:
    scheduler = _scheduler()
    return scheduler.now() if scheduler is not None else _wait_clock.time()


class _DatetimeType(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, dt.datetime)

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, dt.datetime)


class _Datetime(dt.datetime, metaclass=_DatetimeType):
    """datetime.datetime whose now() is the emulator's time (virtual when it has a scheduler)."""

    @classmethod
    def now(cls, tz: Any = None) -> dt.datetime:  # type: ignore[override]
        scheduler = _scheduler()
        return scheduler.datetime_now(tz) if scheduler is not None else dt.datetime.now(tz)


def _utcnow() -> dt.datetime:
    scheduler = _scheduler()
    if scheduler is not None:
        return scheduler.datetime_now()  # naive UTC, as moto's utcnow()
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _new_uuid() -> uuid.UUID:
    """A random UUID from moto's generator, which the emulator seeds: the same seed, the same ids."""
    from moto.moto_api._internal import mock_random

    return cast(uuid.UUID, mock_random.uuid4())


def _long_uid() -> str:
    return str(_new_uuid())


_STDLIB_SHIMS: dict[int, Any] = {}
_jitter = random.Random(0)  # Retry's JitterStrategy FULL; seeded by start()


def _stdlib_shim(real: Any) -> Any:
    """The stand-in for one stdlib module (or name) inside moto's interpreter."""
    if id(real) not in _STDLIB_SHIMS:
        overrides: dict[int, Any] = {
            id(threading): _ModuleShim(threading, Event=_new_event, Thread=_new_thread),
            id(threading.Event): _new_event,
            id(threading.Thread): _new_thread,
            id(time): _ModuleShim(time, sleep=_sleep, time=_time),
            id(dt): _ModuleShim(dt, datetime=_Datetime),
            id(random): _ModuleShim(random, uniform=lambda a, b: _jitter.uniform(a, b)),
        }
        _STDLIB_SHIMS.update(overrides)
    return _STDLIB_SHIMS.get(id(real))


def _patch_interpreter_time(p: _Patches) -> None:
    """Every module of moto's ASL interpreter gets the emulator's threads, events, sleep and
    clock in place of the stdlib's: Wait, Retry intervals, TimeoutSeconds, HeartbeatSeconds,
    waitForTaskToken, Parallel branches and the execution's own thread all run in its time."""
    import moto.stepfunctions.parser.asl.parse.asl_parser  # loads every state type
    import moto.stepfunctions.parser.backend.execution
    import moto.stepfunctions.parser.models  # noqa: F401
    from moto.stepfunctions.parser import utils as parser_utils

    replaced = (threading, threading.Event, threading.Thread, time, dt, random)
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("moto.stepfunctions.parser"):
            continue
        for attribute, value in list(vars(module).items()):
            if any(value is real for real in replaced):
                p.set(module, attribute, _stdlib_shim(value))
            elif value is parser_utils.long_uid and module is not parser_utils:
                p.set(module, attribute, _long_uid)


_CLOCKED_SERVICES = (
    "core",
    "ec2",
    "elbv2",
    "efs",
    "dynamodb",
    "events",
    "cloudwatch",
    "sns",
    "sqs",
    "logs",
    "cloudformation",
    "iam",
    "awslambda",
    "s3",
    "kms",
    "cloudtrail",
    "stepfunctions",
)


def _patch_moto_clock(p: _Patches) -> None:
    """moto stamps resources and events with utcnow() (EC2 launch times, alarm state changes,
    the time of an event put without one): the emulator's time too."""
    from moto.core import utils as core_utils

    for service in _CLOCKED_SERVICES:
        importlib.import_module(f"moto.{service}.models")
    original = _require(core_utils, "utcnow")
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith("moto.") and getattr(module, "utcnow", None) is original:
            p.set(module, "utcnow", _utcnow)


# --------------------------------------------------------------------------------------------------
# 5. Cached interpreter clients
# --------------------------------------------------------------------------------------------------

_client_lock = threading.Lock()
_client_cache: dict[tuple[str, str, str | None], Any] = {}
_client_creations = 0  # read by the canary test


def _clear_client_cache() -> None:
    global _client_creations
    with _client_lock:
        _client_cache.clear()
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
# 6./7. EC2: idempotent RunInstances, lifecycle that is not instant
# --------------------------------------------------------------------------------------------------

_STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


_token_lock = threading.RLock()


def _set_state(instance: Any, name: str) -> None:
    instance._state.name = name
    instance._state.code = _STATE_CODES[name]


def _fingerprint(params: Any) -> str:
    items = {k: v for k, v in dict(params).items() if k != "ClientToken"}
    return json.dumps(items, sort_keys=True, default=str)


def _patch_ec2(p: _Patches) -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    run_response = _require(InstanceResponse, "run_instances")
    run_backend = _require(InstanceBackend, "run_instances")
    terminate_backend = _require(InstanceBackend, "terminate_instances")

    def run_instances_response(self: Any) -> Any:
        # AWS: same ClientToken + same request -> the original reservation, nothing launched.
        token = self._get_param("ClientToken")
        bridge = _bridge
        if not token or bridge is None:
            return run_response(self)
        key = (self.current_account, self.region, str(token))
        fingerprint = _fingerprint(getattr(self, "params", None) or self.querystring)
        with _token_lock:  # two racing retries with one token must launch once
            known = bridge.client_tokens.get(key)
            if known is not None:
                reservation_id, known_fingerprint = known
                if known_fingerprint != fingerprint:
                    raise _emulator_error(
                        "IdempotentParameterMismatch",
                        "The client token you have provided is associated with a resource that "
                        "has different parameters.",
                    )
                reservation = self.ec2_backend.reservations.get(reservation_id)
                if reservation is not None:
                    return ActionResult(reservation)
            result = run_response(self)
            bridge.client_tokens[key] = (result.result.id, fingerprint)
            return result

    def run_instances_backend(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = run_backend(self, *args, **kwargs)
        for instance in reservation.instances:
            _set_state(instance, "pending")
        hooks = _hooks()
        if hooks is not None:
            hooks.on_instances_launched([i.id for i in reservation.instances])
        return reservation

    def terminate_instances_backend(self: Any, instance_ids: list[str]) -> Any:
        try:
            before = {i.id: i.state for i in self.get_multi_instances_by_id(instance_ids)}
        except Exception:
            before = {}  # the original raises the proper API error below
        result = terminate_backend(self, instance_ids)
        terminating = []
        for instance, _previous in result:
            was = before.get(instance.id)
            if was in ("shutting-down", "terminated"):
                _set_state(instance, was)  # terminating again does not move it back or on
            else:
                _set_state(instance, "shutting-down")
                terminating.append(instance.id)
        hooks = _hooks()
        if terminating and hooks is not None:
            hooks.on_instances_terminating(terminating)
        return result

    p.set(InstanceResponse, "run_instances", run_instances_response)
    p.set(InstanceBackend, "run_instances", run_instances_backend)
    p.set(InstanceBackend, "terminate_instances", terminate_instances_backend)


def _find_instance(instance_id: str) -> tuple[str, str, Any]:
    from moto.ec2.models import ec2_backends

    backend: Any
    for account, region, backend in ec2_backends.iter_backends():
        instance = backend.get_instance_by_id(instance_id)
        if instance is not None:
            return account, region, instance
    raise KeyError(f"no such instance: {instance_id}")


def _terminate_side_effects(account: str, region: str, instance: Any) -> None:
    """What moto does for TerminateInstances: tear down the instance, tell ELBv2 and ASG."""
    from moto.autoscaling import autoscaling_backends
    from moto.elbv2 import elbv2_backends

    instance.terminate()
    autoscaling_backends[account][region].notify_terminate_instances([instance.id])
    elbv2_backends[account][region].notify_terminate_instances([instance.id])


def set_instance_state(instance_id: str, state: str) -> None:
    """Move an instance's lifecycle on (the simulation's job; hooks are not called)."""
    if state not in _STATE_CODES:
        raise ValueError(f"unknown instance state {state!r}; expected one of {sorted(_STATE_CODES)}")
    with _lock:
        account, region, instance = _find_instance(instance_id)
        current = instance.state
        if current == state:
            return
        if current == "terminated":
            raise ValueError(f"{instance_id} is terminated; it cannot become {state}")
        if state in ("shutting-down", "terminated"):
            if current != "shutting-down":
                _terminate_side_effects(account, region, instance)
        elif state in ("stopping", "stopped"):
            if current not in ("stopping", "stopped"):
                instance.stop()  # moto's stop side effects (NICs, state reason)
        elif current in ("stopping", "stopped"):  # -> pending/running: moto's start side effects
            instance.start()
        _set_state(instance, state)


def instance_state(instance_id: str) -> str:
    return str(_find_instance(instance_id)[2].state)


# Read-only views for the simulation's tick: read from the backends directly, because a
# boto3 round trip per tick would take the GIL from the workflow it is watching.
def security_groups_by_instance() -> dict[str, list[str]]:
    """Instance id -> the security groups of all its network interfaces."""
    from moto.ec2.models import ec2_backends

    groups: dict[str, list[str]] = {}
    with _lock:
        for _account, _region, backend in ec2_backends.iter_backends():
            for eni in list(cast(Any, backend).enis.values()):
                if eni.instance is not None:
                    groups.setdefault(eni.instance.id, []).extend(g.id for g in eni.group_set)
    return groups


def registered_targets(target_group_arn: str) -> set[str]:
    from moto.elbv2.models import elbv2_backends

    for _account, _region, backend in elbv2_backends.iter_backends():
        group = cast(Any, backend).target_groups.get(target_group_arn)
        if group is not None:
            return set(group.targets)
    raise KeyError(f"no such target group: {target_group_arn}")


# --------------------------------------------------------------------------------------------------
# 8. Target health from the simulation
# --------------------------------------------------------------------------------------------------


def _patch_elbv2(p: _Patches) -> None:
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original = _require(FakeTargetGroup, "health_for")

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        hooks = _hooks()
        registered = self.targets.get(target["Id"])
        if hooks is None or hooks.target_health is None or registered is None:
            return original(self, target, ec2_backend)
        if self.target_type != "instance":
            return original(self, target, ec2_backend)
        state, reason, description = hooks.target_health(self.arn, registered["Id"])
        return FakeHealthStatus(
            registered["Id"], registered["Port"], self.health_check_port, state, reason, description
        )

    p.set(FakeTargetGroup, "health_for", health_for)


# --------------------------------------------------------------------------------------------------
# 9. API fault injection
# --------------------------------------------------------------------------------------------------


_error_class: type[Exception] | None = None


def _emulator_error(code: str, message: str) -> Exception:
    """A moto ServiceException defined outside moto: moto looks up the error model of a moto-made
    exception by its module's service name, which fails for moto.core itself."""
    global _error_class
    if _error_class is None:
        from moto.core.exceptions import ServiceException

        class _EmulatorError(ServiceException):
            pass

        _error_class = _EmulatorError
    return _error_class(code, message)


def _request_params(response: Any, action: str) -> dict[str, Any]:
    """Top-level request params, parsed by moto's own protocol parsers from the botocore model."""
    params = vars(response).get("params")
    if params is None:
        own = vars(response)
        try:
            response.parse_parameters(response.normalized_request)
            params = response.params
        except Exception:
            params = None
        finally:
            own.pop("params", None)  # leave the response object as moto made it
    if params is None:
        try:
            body = json.loads(response.body) if response.body else None
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict):
            params = body
        else:
            params = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in response.querystring.items()}
    return dict(params)


def _patch_fault_injection(p: _Patches) -> None:
    from moto.core.responses import ActionResult, BaseResponse

    original = _require(BaseResponse, "call_action")

    def call_action(self: Any) -> Any:
        # Every moto service (in-process stub and server) dispatches each request through here.
        hooks = _hooks()
        if hooks is None or hooks.fault_for is _no_fault:
            return original(self)
        try:
            action = self._get_action()
        except Exception:  # let moto report whatever it reports for such a request
            action = None
        if not action:
            return original(self)
        fault = hooks.fault_for(self.boto3_service_name, action, _request_params(self, action))
        if fault is None:
            return original(self)
        # Serialise like a moto service error, in the service's own protocol; then force the status.
        _, headers, body = self.serialized(ActionResult(_emulator_error(fault.code, fault.message)))
        headers, body = self._enrich_response(headers, body)
        return fault.status, headers, body

    p.set(BaseResponse, "call_action", call_action)


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
# 12. Instance and primary ENI share one set of security groups
# --------------------------------------------------------------------------------------------------


def _patch_eni_security_groups(p: _Patches) -> None:
    # moto keeps instance.security_groups (from launch) and eni._group_set apart and reports their
    # union (NetworkInterface.group_set); on AWS they are one list, replaced by either API.
    from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
    from moto.ec2.models.instances import InstanceBackend

    modify_eni = _require(NetworkInterfaceBackend, "modify_network_interface_attribute")
    modify_instance = _require(InstanceBackend, "modify_instance_security_groups")

    def modify_network_interface_attribute(
        self: Any, eni_id: str, group_ids: list[str], *args: Any, **kwargs: Any
    ) -> Any:
        result = modify_eni(self, eni_id, group_ids, *args, **kwargs)
        eni = self.get_network_interface(eni_id)
        if group_ids and eni.instance is not None and eni.device_index == 0:
            eni.instance.security_groups = list(eni._group_set)
        return result

    def modify_instance_security_groups(self: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
        instance = modify_instance(self, instance_id, new_group_id_list)
        primary = instance.nics.get(0)
        if primary is not None:
            primary._group_set = list(instance.security_groups)
        return instance

    p.set(NetworkInterfaceBackend, "modify_network_interface_attribute", modify_network_interface_attribute)
    p.set(InstanceBackend, "modify_instance_security_groups", modify_instance_security_groups)


# --------------------------------------------------------------------------------------------------
# 13. Atomic conditional writes in DynamoDB
# --------------------------------------------------------------------------------------------------
_dynamodb_write_lock = threading.RLock()


def _patch_dynamodb_atomic_writes(p: _Patches) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = _require(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return _original(self, *args, **kwargs)

        p.set(DynamoDBBackend, name, atomic)


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
# 15. CloudFormation creates through the API what moto's CloudFormation skips or misplaces
# --------------------------------------------------------------------------------------------------
# moto's CloudFormation skips AWS::CloudWatch::Alarm, AWS::CloudTrail::Trail and the bucket and
# queue policies with a warning (the stack still says CREATE_COMPLETE), and it creates
# AWS::StepFunctions::StateMachine in the plain backend, which cannot execute, ignoring
# DefinitionS3Location and DefinitionSubstitutions. Each of these types is created here with the
# same API call CloudFormation makes on AWS, with the properties moto already resolved, under the
# physical id CloudFormation gives it on AWS (the type's primary identifier), but for the queue
# policy (see _QueuePolicyResource).
#
# An update keeps the resource's logical id and its name (CloudFormation generates a name once;
# only a new explicit name renames) and changes in place what AWS changes in place: a state
# machine, alarm, trail or KMS key keeps its ARN or id. An ingress rule is replaced, as on AWS.
#
# moto deletes a stack's resources in no fixed order (AWS follows the dependencies), so a bucket,
# queue or security group may go before the policy or rule on it: a delete that finds its target
# gone (only the service's not-found errors) has nothing left to do.


@dataclass(frozen=True)
class ApiCreatedResource:
    logical_id: str
    resource_type: str
    physical_id: str  # what the stack reports as PhysicalResourceId (and Ref gives)


_api_created: list[ApiCreatedResource] = []


def resources_created_through_api() -> list[ApiCreatedResource]:
    """What this bridge created through the API on behalf of CloudFormation, in order; a resource
    a stack update changed or replaced is listed once, as it is now."""
    return list(_api_created)


def _record(logical_id: str, resource: _ApiResource, replaces: _ApiResource | None = None) -> None:
    created = ApiCreatedResource(logical_id, resource.resource_type, resource.physical_resource_id)
    if replaces is not None:
        previous = ApiCreatedResource(logical_id, replaces.resource_type, replaces.physical_resource_id)
        if previous in _api_created:
            _api_created[_api_created.index(previous)] = created
            return
    _api_created.append(created)


def _api_client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _policy_text(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


class _ApiResource:
    """A resource CloudFormation created through a service API (not a moto model)."""

    resource_type = ""
    name_property = ""  # the property naming it; without it CloudFormation generates the name
    # Error codes with which a delete finds the resource, or what it applies to, already gone.
    gone_codes: frozenset[str] = frozenset()

    def __init__(
        self,
        physical_id: str,
        region: str,
        attributes: dict[str, Any],
        name: str = "",
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.physical_resource_id = physical_id
        self.region = region
        self.attributes = attributes
        self.name = name or physical_id
        self.properties = properties or {}

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def is_created(self) -> bool:
        return True  # the API call returned: nothing left to wait for

    def get_cfn_attribute(self, name: str) -> Any:
        if name not in self.attributes:
            raise RuntimeError(f"{self.resource_type} {self.physical_resource_id} has no attribute {name}")
        return self.attributes[name]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _ApiResource:
        properties = dict(cloudformation_json.get("Properties") or {})
        name = str(properties.get(cls.name_property) or resource_name) if cls.name_property else resource_name
        resource = cls.create(name, properties, account_id, region_name)
        _record(str(kwargs.get("LogicalId") or resource_name), resource)
        LOG.info("created %s %s through the API", cls.resource_type, resource.physical_resource_id)
        return resource

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> _ApiResource:
        # moto passes no logical id here, and a freshly generated name.
        logical_id = str(getattr(original_resource, "logical_resource_id", None) or new_resource_name)
        properties = dict(cloudformation_json.get("Properties") or {})
        explicit = properties.get(cls.name_property) if cls.name_property else None
        name = str(explicit or original_resource.name)
        resource = cls.update(original_resource, name, properties, account_id, region_name)
        _record(logical_id, resource, replaces=original_resource)
        LOG.info("updated %s %s through the API", cls.resource_type, resource.physical_resource_id)
        return resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cls(resource_name, region_name, {}).delete(account_id, region_name)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        raise NotImplementedError

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        """Replacement, unless a type changes in place: the old one goes first, because a resource
        with the same name (or an identical rule) cannot exist twice."""
        original.delete(account_id, region)
        return cls.create(name, properties, account_id, region)

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError

    @classmethod
    @contextmanager
    def unless_gone(cls, what: str) -> Iterator[None]:
        """Around a delete's API call: finding `what` already gone is success."""
        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code not in cls.gone_codes:
                raise
            LOG.info("%s: %s is already gone (%s)", cls.resource_type, what, code)


class _StateMachineResource(_ApiResource):
    resource_type = "AWS::StepFunctions::StateMachine"
    name_property = "StateMachineName"

    @staticmethod
    def _definition(name: str, properties: dict[str, Any], region: str) -> str:
        definition = properties.get("DefinitionString") or properties.get("Definition")
        if isinstance(definition, dict):
            definition = json.dumps(definition)
        location = properties.get("DefinitionS3Location")
        if not definition and location:
            body = _api_client("s3", region).get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"]
            definition = body.read().decode()
        if not definition:
            raise RuntimeError(f"state machine {name}: no DefinitionString, Definition or DefinitionS3Location")
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        return str(definition)

    @staticmethod
    def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
        return [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags") or []]

    @staticmethod
    def _observability(properties: dict[str, Any]) -> dict[str, Any]:
        """LoggingConfiguration and TracingConfiguration, in the API's spelling."""
        request: dict[str, Any] = {}
        logging_ = properties.get("LoggingConfiguration")
        if logging_:
            request["loggingConfiguration"] = {
                "level": logging_.get("Level", "OFF"),
                "includeExecutionData": bool(logging_.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging_.get("Destinations") or []
                ],
            }
        tracing = properties.get("TracingConfiguration")
        if tracing:
            request["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled", False))}
        return request

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        request: dict[str, Any] = {
            "name": name,
            "definition": cls._definition(name, properties, region),
            "roleArn": properties.get("RoleArn", ""),
            "type": properties.get("StateMachineType", "STANDARD"),
            **cls._observability(properties),
        }
        if cls._tags(properties):
            request["tags"] = cls._tags(properties)
        arn = _api_client("stepfunctions", region).create_state_machine(**request)["stateMachineArn"]
        return cls(arn, region, {"Arn": arn, "Name": name}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        machine_type = properties.get("StateMachineType", "STANDARD")
        if name != original.name or machine_type != original.properties.get("StateMachineType", "STANDARD"):
            return super().update(original, name, properties, account_id, region)
        arn = original.physical_resource_id
        sfn = _api_client("stepfunctions", region)
        request = {
            "stateMachineArn": arn,
            "definition": cls._definition(name, properties, region),
            **cls._observability(properties),
        }
        sfn.update_state_machine(**request, **({"roleArn": properties["RoleArn"]} if properties.get("RoleArn") else {}))
        tags = cls._tags(properties)
        dropped = {t["key"] for t in cls._tags(original.properties)} - {t["key"] for t in tags}
        if dropped:
            sfn.untag_resource(resourceArn=arn, tagKeys=sorted(dropped))
        if tags:
            sfn.tag_resource(resourceArn=arn, tags=tags)
        return cls(arn, region, original.attributes, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("stepfunctions", region_name).delete_state_machine(stateMachineArn=self.physical_resource_id)


class _AlarmResource(_ApiResource):
    resource_type = "AWS::CloudWatch::Alarm"
    name_property = "AlarmName"
    _API_FIELDS = (
        *("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions"),
        *("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit"),
        *("EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData"),
        *("EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId"),
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        request = {k: properties[k] for k in cls._API_FIELDS if k in properties}
        for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if number in request:
                request[number] = int(request[number])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        _api_client("cloudwatch", region).put_metric_alarm(AlarmName=name, **request)
        arn = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"
        return cls(name, region, {"Arn": arn}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if name != original.name:
            return super().update(original, name, properties, account_id, region)
        return cls.create(name, properties, account_id, region)  # PutMetricAlarm overwrites it

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("cloudwatch", region_name).delete_alarms(AlarmNames=[self.physical_resource_id])


class _TrailResource(_ApiResource):
    resource_type = "AWS::CloudTrail::Trail"
    name_property = "TrailName"

    @staticmethod
    def _request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"Name": name, "S3BucketName": properties["S3BucketName"]}
        for key in ("S3KeyPrefix", "SnsTopicName", "KMSKeyId", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
            if key in properties:
                request["KmsKeyId" if key == "KMSKeyId" else key] = properties[key]
        for flag in ("IsMultiRegionTrail", "IncludeGlobalServiceEvents", "EnableLogFileValidation"):
            if flag in properties:
                request[flag] = str(properties[flag]).lower() == "true"
        return request

    @staticmethod
    def _set_logging(client: Any, name: str, properties: dict[str, Any]) -> None:
        if str(properties.get("IsLogging", "false")).lower() == "true":
            client.start_logging(Name=name)
        else:
            client.stop_logging(Name=name)

    @staticmethod
    def _select_events(client: Any, name: str, properties: dict[str, Any]) -> None:
        if properties.get("AdvancedEventSelectors"):
            client.put_event_selectors(TrailName=name, AdvancedEventSelectors=properties["AdvancedEventSelectors"])
        elif properties.get("EventSelectors"):
            client.put_event_selectors(TrailName=name, EventSelectors=properties["EventSelectors"])

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        client = _api_client("cloudtrail", region)
        arn = client.create_trail(**cls._request(name, properties))["TrailARN"]
        cls._select_events(client, name, properties)
        if str(properties.get("IsLogging", "false")).lower() == "true":
            client.start_logging(Name=name)
        return cls(name, region, {"Arn": arn}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if name != original.name:
            return super().update(original, name, properties, account_id, region)
        client = _api_client("cloudtrail", region)
        client.update_trail(**cls._request(name, properties))
        cls._select_events(client, name, properties)
        cls._set_logging(client, name, properties)
        return cls(name, region, original.attributes, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("cloudtrail", region_name).delete_trail(Name=self.physical_resource_id)


class _BucketPolicyResource(_ApiResource):
    resource_type = "AWS::S3::BucketPolicy"  # physical id: the bucket's name
    gone_codes = frozenset({"NoSuchBucket"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        bucket = str(properties["Bucket"])
        _api_client("s3", region).put_bucket_policy(Bucket=bucket, Policy=_policy_text(properties["PolicyDocument"]))
        return cls(bucket, region, {}, bucket, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if str(properties["Bucket"]) != original.physical_resource_id:
            return super().update(original, name, properties, account_id, region)
        return cls.create(name, properties, account_id, region)  # PutBucketPolicy replaces the policy

    def delete(self, account_id: str, region_name: str) -> None:
        with self.unless_gone(f"bucket {self.physical_resource_id}"):
            _api_client("s3", region_name).delete_bucket_policy(Bucket=self.physical_resource_id)


class _QueuePolicyResource(_ApiResource):
    # Physical id: the URLs of its queues, comma-separated (what stack_check probes). On AWS it is
    # an id of its own (the type's primary identifier, /properties/Id).
    resource_type = "AWS::SQS::QueuePolicy"
    gone_codes = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        queues = [str(q) for q in properties["Queues"]]
        sqs, policy = _api_client("sqs", region), _policy_text(properties["PolicyDocument"])
        for queue_url in queues:
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
        return cls(",".join(queues), region, {}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kept = {str(q) for q in properties["Queues"]}
        cls._clear([q for q in original.physical_resource_id.split(",") if q and q not in kept], region)
        return cls.create(name, properties, account_id, region)  # SetQueueAttributes replaces the policy

    @classmethod
    def _clear(cls, queues: list[str], region: str) -> None:
        sqs = _api_client("sqs", region)
        for queue_url in queues:
            with cls.unless_gone(f"queue {queue_url}"):
                sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": ""})

    def delete(self, account_id: str, region_name: str) -> None:
        self._clear([q for q in self.physical_resource_id.split(",") if q], region_name)


class _LambdaPermissionResource(_ApiResource):
    # Physical id: "<function>|<statement id>", the type's primary identifier; the statement id is
    # the logical id here (CloudFormation generates one on AWS).
    resource_type = "AWS::Lambda::Permission"
    gone_codes = frozenset({"ResourceNotFoundException"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        function = str(properties["FunctionName"])
        request = {
            "FunctionName": function,
            "StatementId": name,
            "Action": str(properties["Action"]),
            "Principal": str(properties["Principal"]),
        }
        request |= {key: str(properties[key]) for key in ("SourceArn", "SourceAccount") if key in properties}
        _api_client("lambda", region).add_permission(**request)
        return cls(f"{function}|{name}", region, {}, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        function, statement = self.physical_resource_id.split("|", 1)
        with self.unless_gone(f"function {function}"):
            _api_client("lambda", region_name).remove_permission(FunctionName=function, StatementId=statement)


class _TopicPolicyResource(_ApiResource):
    # Physical id: the ARNs of its topics, comma-separated (what stack_check probes). On AWS it is
    # an id of its own. Deleting it gives the topics back their default policy, as on AWS.
    resource_type = "AWS::SNS::TopicPolicy"
    gone_codes = frozenset({"NotFound"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        topics = [str(t) for t in properties["Topics"]]
        sns, policy = _api_client("sns", region), _policy_text(properties["PolicyDocument"])
        for topic_arn in topics:
            sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=policy)
        return cls(",".join(topics), region, {}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kept = {str(t) for t in properties["Topics"]}
        cls._restore([t for t in original.physical_resource_id.split(",") if t and t not in kept], region)
        return cls.create(name, properties, account_id, region)

    @classmethod
    def _restore(cls, topics: list[str], region: str) -> None:
        from moto.sns.models import sns_backends

        for topic_arn in topics:
            account = topic_arn.split(":")[4]
            topic = sns_backends[account][region].topics.get(topic_arn)
            if topic is None:
                LOG.info("%s: topic %s is already gone", cls.resource_type, topic_arn)
                continue
            topic._policy_json = topic._create_default_topic_policy(region, account, topic.name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._restore([t for t in self.physical_resource_id.split(",") if t], region_name)


class _KmsKeyResource(_ApiResource):
    # moto's own model keeps a KeyPolicy given as an object, and DescribeKey then fails on it.
    resource_type = "AWS::KMS::Key"  # physical id: the KeyId

    @staticmethod
    def _set_rotation(kms: Any, key_id: str, properties: dict[str, Any]) -> None:
        if str(properties.get("EnableKeyRotation", "false")).lower() == "true":
            kms.enable_key_rotation(KeyId=key_id)
        else:
            kms.disable_key_rotation(KeyId=key_id)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        kms = _api_client("kms", region)
        policy = properties.get("KeyPolicy")
        request: dict[str, Any] = {"Description": properties.get("Description", "")}
        if policy:
            request["Policy"] = _policy_text(policy)
        key = kms.create_key(**request)["KeyMetadata"]
        if str(properties.get("EnableKeyRotation", "false")).lower() == "true":
            kms.enable_key_rotation(KeyId=key["KeyId"])
        return cls(key["KeyId"], region, {"Arn": key["Arn"], "KeyId": key["KeyId"]}, key["KeyId"], properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kms, key_id = _api_client("kms", region), original.physical_resource_id
        kms.update_key_description(KeyId=key_id, Description=properties.get("Description", ""))
        if properties.get("KeyPolicy"):
            kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_text(properties["KeyPolicy"]))
        cls._set_rotation(kms, key_id, properties)
        return cls(key_id, region, original.attributes, key_id, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("kms", region_name).schedule_key_deletion(KeyId=self.physical_resource_id, PendingWindowInDays=7)


def _ip_permission(rule: dict[str, Any], group_key: str, prefix_list_key: str) -> dict[str, Any]:
    """A CloudFormation security group rule as an EC2 IpPermission, with its Description."""
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    for port in ("FromPort", "ToPort"):
        if port in rule:
            permission[port] = int(rule[port])
    described = {"Description": str(rule["Description"])} if rule.get("Description") else {}
    if rule.get("CidrIp"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **described}]
    if rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **described}]
    if rule.get(group_key):
        permission["UserIdGroupPairs"] = [{"GroupId": rule[group_key], **described}]
    if rule.get(prefix_list_key):
        permission["PrefixListIds"] = [{"PrefixListId": rule[prefix_list_key], **described}]
    return permission


class _SecurityGroupIngressResource(_ApiResource):
    # moto's own model has no physical id, so nothing could tell that the rule exists.
    resource_type = "AWS::EC2::SecurityGroupIngress"  # physical id: the rule's sgr- id
    gone_codes = frozenset({"InvalidSecurityGroupRuleId.NotFound", "InvalidGroup.NotFound"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        permission = _ip_permission(properties, "SourceSecurityGroupId", "SourcePrefixListId")
        rules = _api_client("ec2", region).authorize_security_group_ingress(
            GroupId=properties["GroupId"], IpPermissions=[permission]
        )["SecurityGroupRules"]
        rule_id = rules[0]["SecurityGroupRuleId"]
        return cls(rule_id, region, {"Id": rule_id}, rule_id, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        ec2 = _api_client("ec2", region_name)
        with self.unless_gone(f"rule {self.physical_resource_id} (or its group)"):
            found = ec2.describe_security_group_rules(SecurityGroupRuleIds=[self.physical_resource_id])
            for rule in found["SecurityGroupRules"]:
                group, rule_id = rule["GroupId"], rule["SecurityGroupRuleId"]
                ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[rule_id])


_API_RESOURCES: dict[str, type[_ApiResource]] = {
    cls.resource_type: cls
    for cls in (
        _StateMachineResource,
        _AlarmResource,
        _TrailResource,
        _BucketPolicyResource,
        _QueuePolicyResource,
        _TopicPolicyResource,
        _LambdaPermissionResource,
        _KmsKeyResource,
        _SecurityGroupIngressResource,
    )
}


def _patch_cloudformation_api_resources(p: _Patches) -> None:
    from moto.cloudformation import parsing

    original = _require(parsing, "resource_class_from_type")

    def resource_class_from_type(resource_type: str) -> Any:
        return _API_RESOURCES.get(resource_type) or original(resource_type)

    _api_created.clear()
    p.set(parsing, "resource_class_from_type", resource_class_from_type)


# --------------------------------------------------------------------------------------------------
# 16. CloudFormation security groups honour SecurityGroupEgress
# --------------------------------------------------------------------------------------------------
# On AWS, declaring egress rules replaces the default allow-all egress rule (an empty list declares
# none, so allow-all stays); moto ignores the property and keeps allow-all, so the fence's
# blackhole group would let traffic out.


def _patch_cloudformation_security_group_egress(p: _Patches) -> None:
    from moto.ec2.models.security_groups import SecurityGroup

    original = _require(SecurityGroup, "create_from_cloudformation_json").__func__

    @classmethod  # type: ignore[misc]
    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        group = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        egress = (cloudformation_json.get("Properties") or {}).get("SecurityGroupEgress") or []
        if egress:
            ec2 = _api_client("ec2", region_name)
            ec2.revoke_security_group_egress(
                GroupId=group.id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
            )
            permissions = [
                _ip_permission(rule, "DestinationSecurityGroupId", "DestinationPrefixListId") for rule in egress
            ]
            ec2.authorize_security_group_egress(GroupId=group.id, IpPermissions=permissions)
        return group

    p.set(SecurityGroup, "create_from_cloudformation_json", create_from_cloudformation_json)


# --------------------------------------------------------------------------------------------------
# 17. A stack created through a change set has its template
# --------------------------------------------------------------------------------------------------
# moto makes the stack of a CREATE change set with an empty template and executing the change set
# creates the resources without parsing the template into the stack, so the stack has no outputs
# and no description; `swr deploy` (change sets, as on AWS) reads the outputs.


def _patch_cloudformation_change_set_outputs(p: _Patches) -> None:
    from moto.cloudformation.models import CloudFormationBackend

    original = _require(CloudFormationBackend, "execute_change_set")

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        change_set = self.change_sets.get(change_set_name) or next(
            (cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name), None
        )
        if change_set is None:
            return
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()

    p.set(CloudFormationBackend, "execute_change_set", execute_change_set)


# --------------------------------------------------------------------------------------------------
# 18. An update that changes nothing is "no changes"
# --------------------------------------------------------------------------------------------------
# moto compares an update's parameters with those given when the stack was created, so a parameter
# passed as UsePreviousValue (which it resolves to the stack's value) or a default given explicitly
# looks like a change: the change set "succeeds" and its execution updates every resource. AWS
# compares the effective values and fails the change set with "didn't contain changes".


def _effective_parameters(declared: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)

    effective = {name: text(spec.get("Default")) for name, spec in declared.items() if "Default" in spec}
    effective.update({name: text(value) for name, value in values.items()})
    return effective


def _patch_cloudformation_unchanged_parameters(p: _Patches) -> None:
    from moto.cloudformation.models import Stack

    _require(Stack, "has_parameters")

    def has_parameters(self: Any, other_parameters: dict[str, Any]) -> bool:
        declared = (self.template_dict or {}).get("Parameters") or {}
        current = _effective_parameters(declared, self.stack_parameters)
        return current == _effective_parameters(declared, other_parameters)

    p.set(Stack, "has_parameters", has_parameters)


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


# --------------------------------------------------------------------------------------------------
# 20. RunInstances tags the network interfaces it creates
# --------------------------------------------------------------------------------------------------
# moto applies the "instance" and "volume" TagSpecifications and drops "network-interface". The
# stack lets swr fence only interfaces tagged with its application, so an untagged interface of a
# replacement would make the next failover's fence fail.


def _patch_ec2_interface_tags(p: _Patches) -> None:
    from moto.ec2.models.instances import InstanceBackend

    original = _require(InstanceBackend, "run_instances")

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        interface_tags = dict((kwargs.get("tags") or {}).get("network-interface") or {})
        reservation = original(self, *args, **kwargs)
        if interface_tags:
            for instance in reservation.instances:
                for interface in instance.nics.values():
                    interface.add_tags(interface_tags)
        return reservation

    p.set(InstanceBackend, "run_instances", run_instances)


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
# 22. CloudFormation roles get their ManagedPolicyArns
# --------------------------------------------------------------------------------------------------
# moto's AWS::IAM::Role creates the role and its inline Policies and drops ManagedPolicyArns; an
# update changes neither. On AWS the role has exactly the policies its template names, and a
# permission check (swr drill --dry-run asks IAM what each step's role may do) must see them.


def _sync_role_policies(backend: Any, role: Any, properties: dict[str, Any]) -> None:
    wanted_managed = set(properties.get("ManagedPolicyArns") or [])
    for arn in set(role.managed_policies) - wanted_managed:
        backend.detach_role_policy(arn, role.name)
    for arn in wanted_managed - set(role.managed_policies):
        backend.attach_role_policy(arn, role.name)
    wanted_inline = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies") or []}
    for name in set(role.policies) - set(wanted_inline):
        backend.delete_role_policy(role.name, name)
    for name, document in wanted_inline.items():
        backend.put_role_policy(role.name, name, _policy_text(document))


def _patch_cloudformation_role_policies(p: _Patches) -> None:
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    create = _require(Role, "create_from_cloudformation_json").__func__
    update = _require(Role, "update_from_cloudformation_json").__func__
    delete = _require(Role, "delete_from_cloudformation_json").__func__

    def backend_of(account_id: str, region_name: str) -> Any:
        return iam_backends[account_id][get_partition(region_name)]

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        role = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _sync_role_policies(backend_of(account_id, region_name), role, cloudformation_json.get("Properties") or {})
        return role

    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        role = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        _sync_role_policies(backend_of(account_id, region_name), role, cloudformation_json.get("Properties") or {})
        return role

    def delete_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        # As CloudFormation does on AWS: detach the managed policies, or the delete is a conflict.
        backend = backend_of(account_id, region_name)
        for role in [r for r in backend.roles.values() if r.name == resource_name]:
            for arn in list(role.managed_policies):
                backend.detach_role_policy(arn, role.name)
        delete(cls, resource_name, cloudformation_json, account_id, region_name)

    p.set(Role, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
    p.set(Role, "update_from_cloudformation_json", classmethod(update_from_cloudformation_json))
    p.set(Role, "delete_from_cloudformation_json", classmethod(delete_from_cloudformation_json))


# --------------------------------------------------------------------------------------------------
# 23. IAM SimulatePrincipalPolicy
# --------------------------------------------------------------------------------------------------
# moto does not implement it. Here it evaluates the principal's identity policies (a role's or a
# user's inline and attached ones, plus any PolicyInputList) as IAM does: an explicit Deny wins,
# then an Allow, else implicitDeny; one result per action with the most restrictive decision
# across the resources and each resource's in ResourceSpecificResults. moto's own evaluator
# (moto.iam.access_control.IAMPolicyStatement) matches actions and resources and applies the
# effect; conditions are evaluated here, because moto's (written for trust policies) treats a
# missing context key as satisfied and an unmet condition on an Allow as a Deny. A key missing
# from ContextEntries makes its condition false (true for the negated operators) and is listed in
# MissingContextValues. Null, IfExists, ForAllValues/ForAnyValue and policy variables in
# condition values, NotAction and NotResource are modelled. Not modelled: permissions boundaries,
# SCPs, resource policies, and the numeric, date and IP address operators (a condition using one
# fails closed).

_DECISION_ORDER = ("allowed", "implicitDeny", "explicitDeny")  # least to most restrictive


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(value: str, context: dict[str, list[str]]) -> str | None:
    """``value`` with its policy variables (``${aws:SourceVpc}``) replaced from the context; None
    when one names a key the request lacks (or holds several values): the condition then
    matches nothing (IAM User Guide, "IAM policy elements: Variables and tags")."""

    def one(match: re.Match[str]) -> str:
        found = context.get(match.group(1).lower())
        if found is None or len(found) != 1:
            raise KeyError(match.group(1))
        return found[0]

    try:
        return _VARIABLE.sub(one, value)
    except KeyError:
        return None


def _matches(plain: str, value: str, expected: list[str]) -> bool | None:
    if plain in ("StringEquals", "ArnEquals"):
        return value in expected
    if plain == "StringEqualsIgnoreCase":
        return value.lower() in [e.lower() for e in expected]
    if plain in ("StringLike", "ArnLike"):
        from fnmatch import fnmatchcase

        return any(fnmatchcase(value, e) for e in expected)
    if plain == "Bool":
        return value.lower() in [e.lower() for e in expected]
    return None  # an operator not modelled here


def _condition_holds(operator: str, wanted: Any, given: list[str] | None) -> bool:
    """One operator on one key, with AWS's semantics for a missing key, IfExists, the negated
    operators, Null and the ForAllValues/ForAnyValue set operators (IAM User Guide, "Condition
    operators" and "Multivalued context keys"). ``wanted`` has its variables substituted (a
    None in it could not be)."""
    qualifier, _, operator = operator.rpartition(":")
    if operator == "Null":
        flag = wanted[0] if isinstance(wanted, list) and wanted else wanted
        return (given is None) == (str(flag).lower() == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = "Not" in base
    plain = base.replace("Not", "")
    expected = [v for v in (wanted if isinstance(wanted, list) else [wanted])]
    if any(v is None for v in expected):
        return False
    expected = [str(v) for v in expected]
    if qualifier == "ForAllValues":
        if not given:  # true with no values in the request, as AWS documents
            return True
        results = [_matches(plain, g, expected) for g in given]
        if any(r is None for r in results):
            return False
        return all(r != negated for r in results)
    if qualifier == "ForAnyValue":
        if not given:
            return False
        results = [_matches(plain, g, expected) for g in given]
        if any(r is None for r in results):
            return False
        return any(r != negated for r in results)
    if given is None:
        return if_exists or negated
    results = [_matches(plain, g, expected) for g in given]
    if any(r is None for r in results):
        return False  # an operator not modelled here fails closed
    return any(results) != negated


def _conditions_hold(conditions: dict[str, Any], context: dict[str, list[str]], missing: set[str]) -> bool:
    holds = True
    for operator, keys in conditions.items():
        for key, wanted in keys.items():
            given = context.get(key.lower())
            if given is None:
                missing.add(key)
            values = wanted if isinstance(wanted, list) else [wanted]
            substituted = [_substitute(str(v), context) if isinstance(v, str) else v for v in values]
            holds = holds and _condition_holds(operator, substituted, given)
    return holds


def _simulate(
    policies: list[tuple[str, str, dict[str, Any]]], action: str, resource: str, context: dict[str, list[str]]
) -> tuple[str, list[dict[str, str]], set[str]]:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    allowed: list[dict[str, str]] = []
    denied: list[dict[str, str]] = []
    missing: set[str] = set()
    for policy_id, policy_type, document in policies:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            plain = {k: v for k, v in statement.items() if k != "Condition"}
            for key in ("Action", "NotAction"):  # action names are case-insensitive in IAM
                if key in plain:
                    names = plain[key] if isinstance(plain[key], list) else [plain[key]]
                    plain[key] = [str(n).lower() for n in names]
            if "NotResource" in plain:
                # Every resource but those listed (moto reads a statement without Resource as a
                # trust policy's, which applies to everything).
                listed = IAMPolicyStatement({"Effect": "Allow", "Action": "*", "Resource": plain.pop("NotResource")})
                if listed.is_action_permitted("*", resource) != PermissionResult.NEUTRAL:
                    continue
                plain["Resource"] = "*"
            result = IAMPolicyStatement(plain).is_action_permitted(action.lower(), resource)
            if result == PermissionResult.NEUTRAL:
                continue
            if not _conditions_hold(statement.get("Condition") or {}, context, missing):
                continue
            matched = {"SourcePolicyId": policy_id, "SourcePolicyType": policy_type}
            (denied if result == PermissionResult.DENIED else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    if allowed:
        return "allowed", allowed, missing
    return "implicitDeny", [], missing


def _principal_policies(backend: Any, arn: str) -> list[tuple[str, str, dict[str, Any]]]:
    from moto.iam.access_control import IAMPolicy

    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "role":
        principal = backend.get_role(name)
    elif kind == "user":
        principal = backend.get_user(name)
    else:
        from moto.iam.exceptions import InvalidInput

        raise InvalidInput(f"PolicySourceArn {arn} is not a role or a user")
    found: list[tuple[str, str, dict[str, Any]]] = []
    for policy_name, document in principal.policies.items():
        text = document if isinstance(document, str) else json.dumps(document)
        found.append((policy_name, kind, json.loads(text)))
    for policy in principal.managed_policies.values():
        policy_type = "aws-managed" if ":aws:policy/" in policy.arn else "user-managed"
        found.append((policy.name, policy_type, IAMPolicy(policy)._policy_json))
    return found


def _patch_iam_simulate_principal_policy(p: _Patches) -> None:
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    if "simulate_principal_policy" in vars(IamResponse):
        raise RuntimeError("moto implements SimulatePrincipalPolicy now: retire bridge patch 23")

    def simulate_principal_policy(self: Any) -> Any:
        source = str(self._get_param("PolicySourceArn"))
        policies = _principal_policies(self.backend, source)
        for n, text in enumerate(self._get_param("PolicyInputList") or [], start=1):
            policies.append((f"PolicyInputList.{n}", "none", json.loads(text)))
        context: dict[str, list[str]] = {}
        for entry in self._get_param("ContextEntries") or []:
            context[str(entry["ContextKeyName"]).lower()] = [str(v) for v in entry.get("ContextKeyValues") or []]
        resources = [str(r) for r in self._get_param("ResourceArns") or ["*"]]
        results = []
        for action in self._get_param("ActionNames") or []:
            per_resource = []
            for resource in resources:
                decision, matched, missing = _simulate(policies, str(action), resource, context)
                per_resource.append((resource, decision, matched, missing))
            worst = max(per_resource, key=lambda r: _DECISION_ORDER.index(r[1]))
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resources[0] if len(resources) == 1 else "*",
                    "EvalDecision": worst[1],
                    "MatchedStatements": worst[2],
                    "MissingContextValues": sorted(set().union(*(r[3] for r in per_resource))),
                    "ResourceSpecificResults": [
                        {
                            "EvalResourceName": resource,
                            "EvalResourceDecision": decision,
                            "MatchedStatements": matched,
                            "MissingContextValues": sorted(missing),
                        }
                        for resource, decision, matched, missing in per_resource
                    ],
                }
            )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    p.set(IamResponse, "simulate_principal_policy", simulate_principal_policy)


# --------------------------------------------------------------------------------------------------
# 24. Embedded metric format becomes metrics
# --------------------------------------------------------------------------------------------------
# A Lambda function's metrics (Powertools Metrics) are EMF documents in its log; CloudWatch Logs
# extracts them into CloudWatch metrics. The in-process handlers have no such path: Powertools'
# flush is where the document is written, so the same data points go into moto's CloudWatch
# there. The emulator keeps EMF off its own stdout (POWERTOOLS_METRICS_DISABLED in its process);
# what decides, as on AWS, is the function's own environment from its template.

_TRUE = ("1", "true", "yes", "on")


def emf_metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, PutMetricData MetricData) per directive of one EMF document, as CloudWatch
    Logs extracts it: every metric under every dimension set, at the document's timestamp. A
    dimension set naming a key the document lacks is skipped, as CloudWatch skips it."""
    meta = document.get("_aws") or {}
    moment = dt.datetime.fromtimestamp(int(meta.get("Timestamp") or time.time() * 1000) / 1000, tz=dt.UTC)
    timestamp = moment.replace(tzinfo=None)  # moto keeps naive UTC, as its own PutMetricData does
    extracted: list[tuple[str, list[dict[str, Any]]]] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        data: list[dict[str, Any]] = []
        for names in directive.get("Dimensions") or [[]]:
            if not all(name in document for name in names):
                continue
            dimensions = [{"Name": name, "Value": str(document[name])} for name in names]
            for definition in directive.get("Metrics") or []:
                values = document.get(definition["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if value is None:
                        continue
                    data.append(
                        {
                            "MetricName": definition["Name"],
                            "Dimensions": dimensions,
                            "Timestamp": timestamp,
                            "Value": float(value),
                            "Unit": definition.get("Unit") or "None",
                        }
                    )
        if data:
            extracted.append((str(directive["Namespace"]), data))
    return extracted


def _put_emf(fn: Any, document: dict[str, Any]) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    variables = getattr(fn, "environment_vars", None) or {}
    if str(variables.get("POWERTOOLS_METRICS_DISABLED", "")).lower() in _TRUE:
        return
    _, _, _, region, account = str(fn.function_arn).split(":")[:5]
    backend = cloudwatch_backends[account][region]
    for namespace, data in emf_metric_data(document):
        backend.put_metric_data(namespace, data)


def _patch_emf_metrics(p: _Patches) -> None:
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    original = _require(AmazonCloudWatchEMFProvider, "flush_metrics")

    def flush_metrics(self: Any, raise_on_empty_metrics: bool = False) -> None:
        fn = getattr(_invocation, "function", None)
        if fn is None:
            original(self, raise_on_empty_metrics)
            return
        if not self.metric_set:
            return  # in one process, steps running at once share Powertools' metric set: a
            # concurrent flush may have taken these already
        document = self.serialize_metric_set()
        try:
            _put_emf(fn, cast(dict[str, Any], document))
        except Exception:  # metrics never fail the function that wrote them
            LOG.warning("EMF from %s not turned into metrics", fn.function_name, exc_info=True)
        original(self, raise_on_empty_metrics)  # prints the document unless the process disables it
        self.clear_metrics()  # a disabled flush keeps them; they are in CloudWatch now

    p.set(AmazonCloudWatchEMFProvider, "flush_metrics", flush_metrics)


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
# 27. StopInstances leaves instances stopping
# --------------------------------------------------------------------------------------------------
# moto stops an instance at once ("stopped") and stops one that is shutting down or terminated
# as well. On AWS an instance is "stopping" until the hypervisor has powered it off, and only a
# pending, running or stopping instance can be stopped (IncorrectInstanceState otherwise). The
# simulation moves a stopping instance on to stopped (hooks.on_instances_stopping).


def _patch_ec2_stop(p: _Patches) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import InstanceBackend

    original = _require(InstanceBackend, "stop_instances")

    def stop_instances(self: Any, instance_ids: list[str]) -> Any:
        instances = self.get_multi_instances_by_id(instance_ids)
        before = {i.id: i.state for i in instances}
        for instance in instances:
            if instance.state in ("shutting-down", "terminated"):
                raise EC2ClientError(
                    "IncorrectInstanceState",
                    f"This instance '{instance.id}' is not in a state from which it can be stopped.",
                )
        result = original(self, instance_ids)
        stopping = []
        for instance, _previous in result:
            if before.get(instance.id) in ("stopping", "stopped"):
                _set_state(instance, str(before[instance.id]))  # stopping again moves nothing on
            else:
                _set_state(instance, "stopping")
                stopping.append(instance.id)
        hooks = _hooks()
        if stopping and hooks is not None:
            hooks.on_instances_stopping(stopping)
        return result

    p.set(InstanceBackend, "stop_instances", stop_instances)


# --------------------------------------------------------------------------------------------------
# 28. Deregistered targets drain for the target group's deregistration delay
# --------------------------------------------------------------------------------------------------
# moto drops a deregistered target at once ("unused"), and reports a registered instance that
# was terminated "draining" for ever. ELB (Network Load Balancer guide, "Deregistration delay";
# Application Load Balancer guide, likewise): a deregistering target is "draining" until the
# deregistration delay (deregistration_delay.timeout_seconds, default 300) has passed, even when
# it has no connections left, then "unused"; a terminated instance is deregistered. The delay
# runs in simulated time. What happens to established connections meanwhile and after is the
# simulation's (swr/emulator/network.py).


def _patch_elbv2_draining(p: _Patches) -> None:
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    deregister = _require(FakeTargetGroup, "deregister")
    register = _require(FakeTargetGroup, "register")
    deregister_terminated = _require(FakeTargetGroup, "deregister_terminated_instances")
    health_for = vars(FakeTargetGroup)["health_for"]  # patch 8's, or moto's when installed alone

    def since(group: Any) -> dict[str, float]:
        if "_swr_draining_since" not in vars(group):
            group._swr_draining_since = {}
        return cast(dict[str, float], group._swr_draining_since)

    def register_(self: Any, targets: list[dict[str, Any]]) -> None:
        register(self, targets)
        for target in targets:
            since(self).pop(target["Id"], None)

    def deregister_(self: Any, targets: list[dict[str, Any]]) -> None:
        deregister(self, targets)
        for target in targets:
            since(self)[target["Id"]] = _sim_time()

    def deregister_terminated_(self: Any, instance_ids: list[str]) -> None:
        registered = [i for i in instance_ids if i in self.targets]
        deregister_terminated(self, instance_ids)
        for instance_id in registered:
            since(self)[instance_id] = _sim_time()
            self.deregistered_targets[instance_id] = self.terminated_targets.pop(instance_id)

    def health_for_(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        draining_since = since(self).get(target["Id"])
        if target["Id"] in self.targets or draining_since is None:
            return health_for(self, target, ec2_backend)
        delay = float(self.attributes.get("deregistration_delay.timeout_seconds", 300))
        port = target.get("Port", self.port)
        if _sim_time() < draining_since + delay:
            return FakeHealthStatus(
                target["Id"],
                port,
                self.health_check_port,
                "draining",
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress",
            )
        return FakeHealthStatus(
            target["Id"],
            port,
            self.health_check_port,
            "unused",
            "Target.NotRegistered",
            "Target is not registered to the target group",
        )

    p.set(FakeTargetGroup, "register", register_)
    p.set(FakeTargetGroup, "deregister", deregister_)
    p.set(FakeTargetGroup, "deregister_terminated_instances", deregister_terminated_)
    p.set(FakeTargetGroup, "health_for", health_for_)


def draining_targets(target_group_arn: str) -> dict[str, float]:
    """Target id -> simulated time it was deregistered, for targets no longer registered."""
    from moto.elbv2.models import elbv2_backends

    for _account, _region, backend in elbv2_backends.iter_backends():
        group = cast(Any, backend).target_groups.get(target_group_arn)
        if group is not None:
            drained = dict(vars(group).get("_swr_draining_since", {}))
            return {target: at for target, at in drained.items() if target not in group.targets}
    raise KeyError(f"no such target group: {target_group_arn}")


def target_group_attributes(target_group_arn: str) -> tuple[str, dict[str, str]]:
    """(protocol, attributes) of a target group, as DescribeTargetGroupAttributes reports them."""
    from moto.elbv2.models import elbv2_backends

    for _account, _region, backend in elbv2_backends.iter_backends():
        group = cast(Any, backend).target_groups.get(target_group_arn)
        if group is not None:
            return str(group.protocol), {str(k): str(v) for k, v in group.attributes.items()}
    raise KeyError(f"no such target group: {target_group_arn}")


# --------------------------------------------------------------------------------------------------
# 29. Network ACL entries within the quota
# --------------------------------------------------------------------------------------------------
# moto accepts any number of entries. Amazon VPC quotas ("Network ACLs"): 20 rules per network
# ACL, one way (inbound and outbound counted apart, IPv4 and IPv6 apart), the default deny rule
# included; adjustable up to 40. Beyond it CreateNetworkAclEntry fails with
# NetworkAclEntryLimitExceeded. The fence must meet that answer here as it would on AWS.

NETWORK_ACL_RULES_PER_DIRECTION = 20


def _patch_network_acl_quota(p: _Patches) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.network_acls import NetworkAclBackend

    original = _require(NetworkAclBackend, "create_network_acl_entry")

    def create_network_acl_entry(self: Any, network_acl_id: str, rule_number: int, *args: Any, **kwargs: Any) -> Any:
        acl = self.get_network_acl(network_acl_id)
        egress = kwargs.get("egress", args[2] if len(args) > 2 else None)
        ipv6 = bool(kwargs.get("ipv6_cidr_block", args[9] if len(args) > 9 else None))
        same_way = [
            e for e in acl.network_acl_entries if bool(e.egress) == bool(egress) and bool(e.ipv6_cidr_block) == ipv6
        ]
        if len(same_way) >= NETWORK_ACL_RULES_PER_DIRECTION:
            raise EC2ClientError(
                "NetworkAclEntryLimitExceeded",
                f"The maximum number of network ACL entries ({NETWORK_ACL_RULES_PER_DIRECTION}) has been reached"
                f" for {network_acl_id}.",
            )
        return original(self, network_acl_id, rule_number, *args, **kwargs)

    p.set(NetworkAclBackend, "create_network_acl_entry", create_network_acl_entry)


def network_acls_by_subnet() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Subnet id -> (network ACL id, its IPv4 entries as DescribeNetworkAcls reports them)."""
    from moto.ec2.models import ec2_backends

    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for _account, _region, backend in ec2_backends.iter_backends():
        for acl in list(cast(Any, backend).network_acls.values()):
            entries = [
                {
                    "RuleNumber": int(e.rule_number),
                    "Egress": bool(e.egress),
                    "RuleAction": str(e.rule_action),
                    "Protocol": str(e.protocol),
                    "CidrBlock": str(e.cidr_block),
                    "PortRange": {"From": int(e.port_range_from), "To": int(e.port_range_to)}
                    if e.port_range_from not in (None, "")
                    else None,
                }
                for e in list(acl.network_acl_entries)
                if e.cidr_block
            ]
            for association in list(acl.associations):
                found[str(association.subnet_id)] = (str(acl.id), entries)
    return found


# --------------------------------------------------------------------------------------------------
# 30. DeleteMountTarget leaves the mount target deleting
# --------------------------------------------------------------------------------------------------
# moto removes a mount target (and its network interface) at once. The EFS API reference,
# DeleteMountTarget: "This operation forcibly breaks any mounts of the file system by using the
# mount target that is being deleted ... The DeleteMountTarget call returns while the mount
# target state is still deleting. You can check the mount target deletion by calling the
# DescribeMountTargets operation". Here it stays "deleting" until hooks.mount_target_deleting
# lets it go (the simulation does, after the latency profile's delay; the default at once).


def _patch_efs_mount_target_deletion(p: _Patches) -> None:
    from moto.efs.models import EFSBackend

    original = _require(EFSBackend, "delete_mount_target")

    def delete_mount_target(self: Any, mount_target_id: str) -> None:
        target = self.mount_targets_by_id.get(mount_target_id)
        if target is None:
            original(self, mount_target_id)  # MountTargetNotFound, as moto answers it
            return
        if target.life_cycle_state == "deleting":
            return
        target.life_cycle_state = "deleting"
        hooks = _hooks()
        (hooks.mount_target_deleting if hooks is not None else finish_mount_target_deletion)(mount_target_id)

    p.set(EFSBackend, "delete_mount_target", delete_mount_target)
    p.set(EFSBackend, "_swr_delete_mount_target", original)


def finish_mount_target_deletion(mount_target_id: str) -> None:
    """The deletion of a mount target completes: it and its network interface are gone."""
    from moto.efs.models import efs_backends

    with _lock:
        for _account, _region, backend in efs_backends.iter_backends():
            target = cast(Any, backend).mount_targets_by_id.get(mount_target_id)
            if target is not None and target.life_cycle_state == "deleting":
                cast(Any, backend)._swr_delete_mount_target(mount_target_id)
                return


def mount_targets(file_system_id: str) -> list[dict[str, str]]:
    """Every mount target of a file system: id, subnet, AZ, address and lifecycle state."""
    from moto.efs.models import efs_backends

    for _account, _region, backend in efs_backends.iter_backends():
        file_system = cast(Any, backend).file_systems_by_id.get(file_system_id)
        if file_system is not None:
            return [
                {
                    "MountTargetId": str(t.mount_target_id),
                    "SubnetId": str(t.subnet_id),
                    "AvailabilityZoneName": str(t.availability_zone_name),
                    "IpAddress": str(t.ip_address),
                    "LifeCycleState": str(t.life_cycle_state),
                }
                for t in list(file_system.iter_mount_targets())
            ]
    raise KeyError(f"no such file system: {file_system_id}")


# --------------------------------------------------------------------------------------------------
# 31. Network interfaces keep their connection tracking configuration
# --------------------------------------------------------------------------------------------------
# moto ignores ModifyNetworkInterfaceAttribute's ConnectionTrackingSpecification. EC2 User Guide,
# "Idle connection tracking timeout": an interface's TCP established timeout is 432,000 s (5 days)
# unless set (60 s at the least); DescribeNetworkInterfaces reports what was set as
# ConnectionTrackingConfiguration. swr register and swr drill --dry-run read it.


def _patch_eni_connection_tracking(p: _Patches) -> None:
    from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

    original = _require(ElasticNetworkInterfaces, "modify_network_interface_attribute")

    def modify_network_interface_attribute(self: Any) -> Any:
        specification = self._get_param("ConnectionTrackingSpecification")
        if isinstance(specification, dict) and specification:
            self.error_on_dryrun()
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            current = dict(getattr(eni, "connection_tracking_configuration", None) or {})
            current.update({str(k): int(v) for k, v in specification.items()})
            eni.connection_tracking_configuration = current
        return original(self)

    p.set(ElasticNetworkInterfaces, "modify_network_interface_attribute", modify_network_interface_attribute)


def availability_zone_of(resource_id: str) -> str | None:
    """The AZ of an instance, network interface, subnet or EFS mount target, or None."""
    from moto.ec2.models import ec2_backends
    from moto.efs.models import efs_backends

    for _account, _region, backend in ec2_backends.iter_backends():
        ec2: Any = backend
        if resource_id.startswith("i-"):
            instance = ec2.get_instance_by_id(resource_id)
            if instance is not None:
                return str(instance.placement.availability_zone)
        elif resource_id.startswith("eni-") and resource_id in ec2.enis:
            return str(ec2.enis[resource_id].subnet.availability_zone)
        elif resource_id.startswith("subnet-"):
            for subnets in ec2.subnets.values():
                if resource_id in subnets:
                    return str(subnets[resource_id].availability_zone)
    if resource_id.startswith("fsmt-"):
        for _account, _region, backend in efs_backends.iter_backends():
            target = cast(Any, backend).mount_targets_by_id.get(resource_id)
            if target is not None:
                return str(target.availability_zone_name)
    return None


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
# 33. The SDK's retry backoff waits in the emulator's time, with seeded jitter
# --------------------------------------------------------------------------------------------------


def _sdk_sleep(seconds: float) -> None:
    scheduler = _scheduler()
    if scheduler is not None and scheduler._me() is not None:
        scheduler.sleep(seconds)
    else:  # a thread outside the world (a served request): the warped clock, as interpreter waits
        _warped_sleep(seconds)


def _patch_sdk_retry_time(p: _Patches) -> None:
    import botocore.endpoint
    from botocore.retries import standard

    _require(botocore.endpoint, "time", time)
    p.set(botocore.endpoint, "time", _ModuleShim(time, sleep=_sdk_sleep))
    delay_amount = _require(standard.ExponentialBackoff, "delay_amount")

    def seeded_delay_amount(self: Any, context: Any) -> Any:
        self._random = _jitter.random
        return delay_amount(self, context)

    p.set(standard.ExponentialBackoff, "delay_amount", seeded_delay_amount)


# --------------------------------------------------------------------------------------------------
# 34. PutEvents limits: entry size and aws.* sources
# --------------------------------------------------------------------------------------------------
# EventBridge User Guide, "Calculating PutEvents event entry size": the total entry size must be
# less than 256 KB, counting Time as 14 bytes and the UTF-8 bytes of Source, DetailType, Detail
# and each Resources entry; an oversize request fails as a whole ("ValidationException: Total size
# of the entries in the request is over the limit."). Sources starting with "aws." are reserved for
# AWS services: such an entry from a caller fails alone, with NotAuthorizedForSourceException.

_MAX_PUT_EVENTS_BYTES = 256 * 1024
_aws_service = threading.local()


@contextmanager
def as_aws_service() -> Iterator[None]:
    """Publish as AWS itself does (EC2 state changes, alarm state changes): aws.* is allowed,
    and no caller's role is asked (patch 42)."""
    previous = getattr(_aws_service, "active", False)
    _aws_service.active = True
    try:
        with as_emulator():
            yield
    finally:
        _aws_service.active = previous


@contextmanager
def as_emulator() -> Iterator[None]:
    """The emulator's own calls (the simulated world's bookkeeping, the harness's reads) are made
    under no caller's role, even on a thread that acts as one (a boot gate's)."""
    with _principal_is(None):
        yield


def put_events_entry_size(entry: dict[str, Any]) -> int:
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [] if r is not None)


def _patch_put_events_limits(p: _Patches) -> None:
    from moto.events.exceptions import ValidationException
    from moto.events.models import EventsBackend

    put_events = _require(EventsBackend, "put_events")

    def limited_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if sum(put_events_entry_size(e) for e in events) >= _MAX_PUT_EVENTS_BYTES:
            raise ValidationException("Total size of the entries in the request is over the limit.")
        if getattr(_aws_service, "active", False):
            return list(put_events(self, events))
        refused = {n for n, e in enumerate(events) if str(e.get("Source") or "").startswith("aws.")}
        kept = [e for n, e in enumerate(events) if n not in refused]
        accepted = iter(put_events(self, kept) if kept else [])
        not_authorized = {
            "ErrorCode": "NotAuthorizedForSourceException",
            "ErrorMessage": "Not authorized for the source.",
        }
        return [dict(not_authorized) if n in refused else next(accepted) for n in range(len(events))]

    p.set(EventsBackend, "put_events", limited_put_events)


# --------------------------------------------------------------------------------------------------
# 35. Released private addresses are reused lowest first
# --------------------------------------------------------------------------------------------------


def _patch_subnet_ip_reuse(p: _Patches) -> None:
    import ipaddress

    from moto.ec2.models.subnets import Subnet

    get_available_subnet_ip = _require(Subnet, "get_available_subnet_ip")

    def lowest_first(self: Any, instance: Any) -> str:
        unused = self._unused_ips
        if not unused:
            return str(get_available_subnet_ip(self, instance))
        address = min(unused, key=ipaddress.ip_address)
        unused.discard(address)
        self._subnet_ips[address] = instance
        return str(address)

    p.set(Subnet, "get_available_subnet_ip", lowest_first)


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
# 37. The response serializer looks up each member's aliases once
# --------------------------------------------------------------------------------------------------


_possible_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}


_transform_of: dict[tuple[int, int, str], Any] = {}  # (a class's transformer table, its size, key path)


def _patch_serializer_alias_cache(p: _Patches) -> None:
    from moto.core import serialize
    from moto.core.utils import get_value

    picker_call = _require(serialize.AttributePicker, "__call__")
    serializer_get_value = _require(serialize.ResponseSerializer, "get_value")
    default_providers = serialize.DEFAULT_ALIAS_PROVIDERS
    missing = serialize.MISSING

    def cache_key(picker: Any, obj: Any, key: str, shape: Any) -> tuple[Any, ...] | None:
        if picker.alias_providers is not default_providers or "Meta" in getattr(obj, "__dict__", ()):
            return None  # aliases of its own, or an alias set on one object rather than its class
        # The aliases depend only on these: the picker's kind, the object's class (its Meta, its
        # name), the member's shape and the structure it sits in now (moto re-parents shared shapes).
        return (type(picker), type(obj), shape, getattr(shape, "parent", None), key)

    def pick(obj: Any, possible: tuple[str, ...]) -> Any:
        if type(obj) is dict:  # most results are plain dicts: get_value's checks cost more than the lookup
            for possible_key in possible:
                if "." not in possible_key:
                    if possible_key in obj:
                        return obj[possible_key]
                elif (found := get_value(obj, possible_key, missing)) is not missing:
                    return found
            return None
        for possible_key in possible:
            found = get_value(obj, possible_key, missing)
            if found is not missing:
                return found
        return None

    def call(self: Any, context: Any) -> Any:
        key = cache_key(self, context.obj, context.key, context.shape)
        if key is None:
            return picker_call(self, context)
        possible = _possible_keys.get(key)
        if possible is None:
            possible = _possible_keys[key] = tuple(self.get_possible_keys(context))
        value = pick(context.obj, possible)
        transformers = self.response_transformers
        if not transformers:
            return value
        # The first transform whose path ends the member's key path, found once per path (EC2's
        # table is long, and a DescribeInstances response has thousands of members).
        key_path = f"{context.key_path}.{context.key}"
        found_key = (id(transformers), len(transformers), key_path)  # class tables; one grows at run time
        found = _transform_of.get(found_key, missing)
        if found is missing:
            found = _transform_of[found_key] = next(
                (t for path, t in transformers.items() if key_path.endswith(path)), None
            )
        return found(value) if found is not None else value

    def fast_get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        # A known member, for a picker without transforms, needs no context (nor its key path).
        picker = self._value_picker
        if isinstance(picker, serialize.AttributePicker) and not picker.response_transformers:
            found_key = cache_key(picker, value, key, shape)
            possible = _possible_keys.get(found_key) if found_key is not None else None
            if possible is not None:
                return pick(value, possible)
        return serializer_get_value(self, value, key, shape)

    p.set(serialize.AttributePicker, "__call__", call)
    p.set(serialize.ResponseSerializer, "get_value", fast_get_value)


# --------------------------------------------------------------------------------------------------
# 38. A response class's method names are listed once
# --------------------------------------------------------------------------------------------------


def _patch_response_method_names(p: _Patches) -> None:
    from moto.core import responses

    listed = _require(responses, "method_names_from_class")
    # Per bridge: the patches above are all installed by now, so a class's methods stay as listed.
    names: dict[type, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = listed(clazz)
        return list(found)

    p.set(responses, "method_names_from_class", method_names_from_class)


# --------------------------------------------------------------------------------------------------
# 39. KMS key material once per key spec
# --------------------------------------------------------------------------------------------------

_key_material: dict[str, Any] = {}


def _patch_kms_key_material(p: _Patches) -> None:
    from moto.kms import models as kms_models

    generate = _require(kms_models, "generate_private_key")

    def generate_private_key(key_spec: str) -> Any:
        with _lock:
            if key_spec not in _key_material:
                _key_material[key_spec] = generate(key_spec)
            return _key_material[key_spec]

    p.set(kms_models, "generate_private_key", generate_private_key)


# --------------------------------------------------------------------------------------------------
# 40. In-process requests carry a credential scope, not a signature
# --------------------------------------------------------------------------------------------------

UNSIGNED = "unsigned-in-emulator"


def _patch_unsigned_requests(p: _Patches) -> None:
    from botocore import auth
    from moto.core.models import botocore_stubber

    sign = _require(auth.SigV4Auth, "add_auth")

    def add_auth(self: Any, request: Any) -> Any:
        if not botocore_stubber.enabled or self.credentials is None or isinstance(self, auth.SigV4QueryAuth):
            return sign(self, request)  # a presigned URL carries its signature in the query
        request.context["timestamp"] = _utcnow().strftime(auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, SignedHeaders=host, Signature={UNSIGNED}"
        )
        return request

    p.set(auth.SigV4Auth, "add_auth", add_auth)


# --------------------------------------------------------------------------------------------------
# 41. A resource whose Condition is false is not listed
# --------------------------------------------------------------------------------------------------


def _patch_cloudformation_conditioned_out(p: _Patches) -> None:
    from moto.cloudformation.models import Stack

    listed = _require(Stack, "stack_resources")

    def stack_resources(self: Any) -> list[Any]:
        return [resource for resource in listed.fget(self) if resource is not None]

    p.set(Stack, "stack_resources", property(stack_resources))


# --------------------------------------------------------------------------------------------------
# 42. Every call a Lambda step makes is authorized against the step's role
# --------------------------------------------------------------------------------------------------
# Request parameters arrive parsed by moto from the botocore model: member names (InstanceIds,
# Resources, Groups, SecurityGroupIds, ...), not the query protocol's (InstanceId.1).
# A step's handler runs on its own thread (patch 1), so each call it makes knows the function, and
# the function its role. The call is authorized as IAM would: each action the request needs (some
# need several: RunInstances is authorized per resource it touches, plus iam:PassRole), on the
# resource ARNs the Service Authorization Reference names, with the condition keys the request
# carries (resource and request tags, ec2:Vpc, dynamodb:LeadingKeys, events:source, ...),
# evaluated by patch 23's evaluator against the role's inline and attached policies. A denied
# call fails as AWS fails it: UnauthorizedOperation (EC2), AccessDenied (query protocols) or
# AccessDeniedException. An action without a model here is refused too: a step that starts
# calling something new fails the suite until its authorization is modelled.
# The principal is per thread (acting_as): a step's handler thread, the interpreter's thread for
# its client calls, the emulator's thread while it runs an instance's hooks. EventBridge's own
# deliveries are authorized in _deliver. Not enforced: the drivers and the command line.

Authorization = tuple[str, str, dict[str, list[str]]]  # (iam action, resource ARN, context)
denials: list[str] = []  # every refusal of this bridge, for the tests to read


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _tag_context(prefix: str, tags: dict[str, str]) -> dict[str, list[str]]:
    return {f"{prefix}/{k}".lower(): [v] for k, v in tags.items()}


def _ec2_tags(backend: Any, resource_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (backend.tags.get(resource_id) or {}).items()}


def _ec2_vpc_of(backend: Any, resource_id: str) -> str | None:
    try:
        if resource_id.startswith("i-"):
            return str(backend.get_instance(resource_id).vpc_id)
        if resource_id.startswith("eni-"):
            return str(backend.get_network_interface(resource_id).subnet.vpc_id)
        if resource_id.startswith("acl-"):
            return str(backend.get_network_acl(resource_id).vpc_id)
        if resource_id.startswith("subnet-"):
            return str(backend.get_subnet(resource_id).vpc_id)
        if resource_id.startswith("sg-"):
            return str(backend.get_security_group_from_id(resource_id).vpc_id)
    except Exception:
        return None
    return None


_EC2_KIND = {
    "i-": "instance",
    "eni-": "network-interface",
    "vol-": "volume",
    "subnet-": "subnet",
    "sg-": "security-group",
    "acl-": "network-acl",
    "ami-": "image",
}


def _ec2_resource(backend: Any, region: str, account: str, resource_id: str) -> tuple[str, dict[str, list[str]]]:
    kind = next((k for p, k in _EC2_KIND.items() if resource_id.startswith(p)), "unknown")
    arn = _arn("ec2", region, "" if kind == "image" else account, f"{kind}/{resource_id}")
    context = _tag_context("aws:ResourceTag", _ec2_tags(backend, resource_id))
    vpc = _ec2_vpc_of(backend, resource_id)
    if vpc:
        context["ec2:vpc"] = [_arn("ec2", region, account, f"vpc/{vpc}")]
    return arn, context


def _tag_specs(params: dict[str, Any], kind: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") == kind:
            for tag in spec.get("Tags") or []:
                tags[str(tag["Key"])] = str(tag.get("Value", ""))
    return tags


def _listed(params: dict[str, Any], key: str) -> list[Any]:
    value = params.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ec2_authorizations(action: str, params: dict[str, Any], region: str, account: str) -> list[Authorization] | None:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account][region]
    iam_action = f"ec2:{action}"
    if action.startswith("Describe"):
        return [(iam_action, "*", {})]
    if action in ("TerminateInstances", "StopInstances"):
        return [(iam_action, *_ec2_resource(backend, region, account, i)) for i in _listed(params, "InstanceIds")]
    if action == "CreateTags":
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in _listed(params, "Tags")}
        found = []
        for resource_id in _listed(params, "Resources"):
            arn, context = _ec2_resource(backend, region, account, resource_id)
            context |= _tag_context("aws:RequestTag", tags) | {"aws:tagkeys": list(tags)}
            found.append((iam_action, arn, context))
        return found
    if action in ("CreateNetworkAclEntry", "DeleteNetworkAclEntry"):
        return [(iam_action, *_ec2_resource(backend, region, account, str(params["NetworkAclId"])))]
    if action == "DeleteNetworkInterface":
        return [(iam_action, *_ec2_resource(backend, region, account, str(params["NetworkInterfaceId"])))]
    if action == "ModifyNetworkInterfaceAttribute":
        eni = str(params["NetworkInterfaceId"])
        found = [(iam_action, *_ec2_resource(backend, region, account, eni))]
        groups = [g for g in _listed(params, "Groups") if isinstance(g, str)]
        found += [(iam_action, *_ec2_resource(backend, region, account, g)) for g in groups]
        return found
    if action == "RunInstances":
        return _run_instances_authorizations(backend, params, region, account)
    return None


def _run_instances_authorizations(
    backend: Any, params: dict[str, Any], region: str, account: str
) -> list[Authorization]:
    found: list[Authorization] = []
    tokens = str(((params.get("MetadataOptions") or {}).get("HttpTokens")) or "optional")
    mappings = _listed(params, "BlockDeviceMappings")
    encrypted = bool(mappings) and all(
        str((m.get("Ebs") or {}).get("Encrypted", "")).lower() == "true" for m in mappings
    )
    created = {
        "instance": {"ec2:metadatahttptokens": [tokens]},
        "volume": {"ec2:encrypted": ["true" if encrypted else "false"]},
        "network-interface": {},
    }
    for kind, context in created.items():
        tags = _tag_specs(params, kind)
        found.append(
            (
                "ec2:RunInstances",
                _arn("ec2", region, account, f"{kind}/*"),
                context | _tag_context("aws:RequestTag", tags),
            )
        )
        if tags:
            found.append(
                ("ec2:CreateTags", _arn("ec2", region, account, f"{kind}/*"), {"ec2:createaction": ["RunInstances"]})
            )
    touched = [str(params["ImageId"])]
    if params.get("SubnetId"):
        touched.append(str(params["SubnetId"]))
    touched += [str(g) for g in _listed(params, "SecurityGroupIds")]
    found += [("ec2:RunInstances", *_ec2_resource(backend, region, account, r)) for r in touched]
    if params.get("KeyName"):
        found.append(("ec2:RunInstances", _arn("ec2", region, account, f"key-pair/{params['KeyName']}"), {}))
    profile = params.get("IamInstanceProfile") or {}
    if profile:
        from moto.iam.models import iam_backends

        iam = iam_backends[account]["global"]
        name = str(profile.get("Arn", "")).rsplit("/", 1)[-1] or str(profile.get("Name", ""))
        for role in iam.get_instance_profile(name).roles:
            found.append(("iam:PassRole", role.arn, {"iam:passedtoservice": ["ec2.amazonaws.com"]}))
    return found


def _service_authorizations(
    service: str, action: str, params: dict[str, Any], region: str, account: str
) -> list[Authorization] | None:
    if service == "ec2":
        return _ec2_authorizations(action, params, region, account)
    if service == "elbv2":
        if action.startswith("Describe"):
            return [(f"elasticloadbalancing:{action}", "*", {})]
        if action in ("RegisterTargets", "DeregisterTargets"):
            from moto.elbv2.models import elbv2_backends

            arn = str(params["TargetGroupArn"])
            tags = elbv2_backends[account][region].tagging_service.get_tag_dict_for_resource(arn)
            return [(f"elasticloadbalancing:{action}", arn, _tag_context("aws:ResourceTag", tags))]
        return None
    if service == "efs":
        return _efs_authorizations(action, params, region, account)
    if service == "dynamodb" and action in ("GetItem", "PutItem", "DeleteItem"):
        table = _arn("dynamodb", region, account, f"table/{params['TableName']}")
        key = params.get("Key") or params.get("Item") or {}
        leading = [str(v.get("S") or v.get("N") or "") for k, v in key.items() if isinstance(v, dict)][:1]
        return [(f"dynamodb:{action}", table, {"dynamodb:leadingkeys": leading})]
    if service == "events" and action == "PutEvents":
        found = []
        for entry in params.get("Entries") or []:
            bus = str(entry.get("EventBusName") or "default")
            arn = bus if bus.startswith("arn:") else _arn("events", region, account, f"event-bus/{bus}")
            context = {
                "events:source": [str(entry.get("Source"))],
                "events:detail-type": [str(entry.get("DetailType"))],
            }
            found.append(("events:PutEvents", arn, context))
        return found
    if service == "events" and action == "PutRule":
        pattern = json.loads(params.get("EventPattern") or "{}")
        arn = _arn("events", region, account, f"rule/{params['Name']}")
        context = {
            "events:source": [str(s) for s in pattern.get("source", [])],
            "events:detail-type": [str(d) for d in pattern.get("detail-type", [])],
        }
        return [("events:PutRule", arn, context)]
    if service == "cloudwatch":
        if action == "DescribeAlarms":
            names = _listed(params, "AlarmNames")
            return [
                ("cloudwatch:DescribeAlarms", _arn("cloudwatch", region, account, f"alarm:{n}"), {}) for n in names
            ] or [("cloudwatch:DescribeAlarms", "*", {})]
        if action == "PutMetricAlarm":
            arn = _arn("cloudwatch", region, account, f"alarm:{params['AlarmName']}")
            actions = [str(a) for a in _listed(params, "AlarmActions")]
            return [("cloudwatch:PutMetricAlarm", arn, {"cloudwatch:alarmactions": actions} if actions else {})]
        if action == "PutMetricData":  # no resource-level permissions; the namespace condition key
            return [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": [str(params.get("Namespace", ""))]})]
        return None
    if service == "stepfunctions" and action in ("DescribeExecution", "GetExecutionHistory"):
        return [(f"states:{action}", str(params["executionArn"]), {})]
    if service == "stepfunctions" and action in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return [(f"states:{action}", "*", {})]  # a task token is not a resource
    if service == "stepfunctions" and action in ("StartExecution", "ListExecutions", "DescribeStateMachine"):
        return [(f"states:{action}", str(params["stateMachineArn"]), {})]
    if service == "stepfunctions" and action in (
        "StopExecution",
        "RedriveExecution",
        "DescribeStateMachineForExecution",
    ):
        return [(f"states:{action}", str(params["executionArn"]), {})]
    if service == "stepfunctions" and action == "ListStateMachines":
        return [("states:ListStateMachines", "*", {})]
    if service == "cloudformation" and action in ("DescribeStacks", "ListStacks"):
        return [(f"cloudformation:{action}", "*", {})]  # resource-level exists; the policies use "*"
    if service == "dynamodb" and action in ("Scan", "DescribeTable"):
        return [(f"dynamodb:{action}", _arn("dynamodb", region, account, f"table/{params['TableName']}"), {})]
    if service == "events" and action == "DescribeRule":
        return [("events:DescribeRule", _arn("events", region, account, f"rule/{params['Name']}"), {})]
    if service == "iam" and action == "SimulatePrincipalPolicy":
        return [("iam:SimulatePrincipalPolicy", str(params["PolicySourceArn"]), {})]
    if service == "iam" and action == "GetInstanceProfile":
        return [
            ("iam:GetInstanceProfile", f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}", {})
        ]
    if service == "lambda" and action == "GetFunctionConfiguration":
        name = str(params["FunctionName"])
        return [
            (
                "lambda:GetFunctionConfiguration",
                name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}"),
                {},
            )
        ]
    if service == "sts" and action == "GetCallerIdentity":
        return []  # "No permissions are required to perform this operation" (STS API reference)

    if service == "lambda" and action == "Invoke":
        name = str(params["FunctionName"])
        arn = name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}")
        qualifier = params.get("Qualifier")
        return [("lambda:InvokeFunction", f"{arn}:{qualifier}" if qualifier else arn, {})]
    if service == "sqs" and action == "SendMessage":
        queue = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
        return [("sqs:SendMessage", _arn("sqs", region, account, queue), {})]
    return None


def _efs_authorizations(action: str, params: dict[str, Any], region: str, account: str) -> list[Authorization] | None:
    from moto.ec2.models import ec2_backends
    from moto.efs.models import efs_backends

    efs = efs_backends[account][region]

    def file_system(file_system_id: str) -> tuple[str, dict[str, list[str]]]:
        arn = _arn("elasticfilesystem", region, account, f"file-system/{file_system_id}")
        tags = efs.tagging_service.get_tag_dict_for_resource(file_system_id)  # moto keys them by id
        return arn, _tag_context("aws:ResourceTag", tags)

    def of_mount_target(mount_target_id: str) -> Any:
        return efs.mount_targets_by_id[mount_target_id]

    if action == "DescribeMountTargets":
        if params.get("FileSystemId"):
            return [("elasticfilesystem:DescribeMountTargets", *file_system(str(params["FileSystemId"])))]
        target = of_mount_target(str(params["MountTargetId"]))
        return [("elasticfilesystem:DescribeMountTargets", *file_system(str(target.file_system_id)))]
    if action == "DescribeFileSystems":
        if params.get("FileSystemId"):
            return [("elasticfilesystem:DescribeFileSystems", *file_system(str(params["FileSystemId"])))]
        return [("elasticfilesystem:DescribeFileSystems", "*", {})]
    if action == "DescribeMountTargetSecurityGroups":
        target = of_mount_target(str(params["MountTargetId"]))
        return [("elasticfilesystem:DescribeMountTargetSecurityGroups", *file_system(str(target.file_system_id)))]
    if action == "DeleteMountTarget":
        target = of_mount_target(str(params["MountTargetId"]))
        eni = _ec2_resource(ec2_backends[account][region], region, account, str(target.network_interface_id))
        return [
            ("elasticfilesystem:DeleteMountTarget", *file_system(str(target.file_system_id))),
            ("ec2:DeleteNetworkInterface", *eni),
        ]
    if action == "CreateMountTarget":
        backend = ec2_backends[account][region]
        subnet = _ec2_resource(backend, region, account, str(params["SubnetId"]))
        return [
            ("elasticfilesystem:CreateMountTarget", *file_system(str(params["FileSystemId"]))),
            ("ec2:CreateNetworkInterface", _arn("ec2", region, account, "network-interface/*"), subnet[1]),
            ("ec2:CreateNetworkInterface", *subnet),
        ]
    return None


_DENIED_CODES = {
    "ec2": ("UnauthorizedOperation", 403),
    "elbv2": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
}


def _authorize(
    role_arn: str,
    service: str,
    action: str,
    params: dict[str, Any],
    region: str,
    account: str,
    context: dict[str, list[str]] | None = None,
) -> str | None:
    """Why the role may not make this call (with the caller's global condition keys
    ``context``), or None."""
    from moto.iam.models import iam_backends

    try:
        needed = _service_authorizations(service, action, params, region, account)
    except Exception as error:  # a resource the request names does not exist: moto says so next
        LOG.debug("no authorization context for %s:%s (%s)", service, action, error)
        return None
    if needed is None:
        return f"the emulator has no authorization model for {service}:{action}"
    iam = iam_backends[account]["global"]
    known = [*(role.arn for role in iam.roles.values()), *(user.arn for user in iam.users.values())]
    if role_arn not in known:
        return None  # a role IAM does not know: the bridge's own canaries give made-up ones
    policies = _principal_policies(iam, role_arn)
    for iam_action, resource, needed_context in needed:
        full = {"aws:requestedregion": [region], **(context or {}), **needed_context}
        decision, _, _ = _simulate(policies, iam_action, resource, full)
        if decision != "allowed":
            return f"{role_arn} is not authorized to perform {iam_action} on {resource} ({decision})"
    return None


_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


def _signing_user(response: Any) -> tuple[str, dict[str, list[str]]] | None:
    """Whose access key signed the request (a client outside the process): an IAM user's (an
    operator's command line), or a role session's from AssumeRole (a hook given the instance
    role's credentials; its aws:userid is "<role id>:<session name>"). None for any other key
    (the emulator's default test credentials), whose calls stay unchecked."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    found = _CREDENTIAL.search(str(response.headers.get("Authorization") or ""))
    if found is None:
        return None
    key, account = found.group(1), str(response.current_account)
    try:
        iam = iam_backends[account]["global"]
        user = iam.get_user_from_access_key_id(key)
        if user is not None:
            return str(user.arn), {}
        session = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
    except Exception:  # no IAM or STS backend for the account yet
        return None
    if session is None:
        return None
    role = next((r for r in iam.roles.values() if r.arn == session.role_arn), None)
    if role is None:
        return None
    return str(role.arn), {"aws:userid": [f"{role.id}:{session.session_name}"]}


def _patch_step_authorization(p: _Patches) -> None:
    from moto.core.responses import ActionResult, BaseResponse

    original = _require(BaseResponse, "call_action")

    def call_action(self: Any) -> Any:
        current = getattr(_principal, "current", None) or _signing_user(self)
        if current is None:
            return original(self)
        try:
            action = self._get_action()
        except Exception:
            action = None
        if not action:
            return original(self)
        role_arn, context = current
        service = str(self.boto3_service_name if hasattr(self, "boto3_service_name") else "")
        refused = _authorize(
            role_arn,
            service,
            action,
            _request_params(self, action),
            str(self.region),
            str(self.current_account),
            context,
        )
        if refused is None:
            return original(self)
        denials.append(refused)
        code, status = _DENIED_CODES.get(service, ("AccessDeniedException", 400))
        _, headers, body = self.serialized(ActionResult(_emulator_error(code, refused)))
        headers, body = self._enrich_response(headers, body)
        return status, headers, body

    p.set(BaseResponse, "call_action", call_action)


# --------------------------------------------------------------------------------------------------
# 43. DynamoDB item results are written as JSON directly
# --------------------------------------------------------------------------------------------------
# An item result is already the wire form once moto has expanded its DynamoTypes: attribute-value
# maps whose member names are the shape's. moto's model-driven serializer walks it member by
# member (a record read cost more to serialize than everything else the read did). Results with
# what JSON cannot carry as is (bytes of a B or BS value, datetimes) still go through moto's.

_ITEM_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
)


class _NotPlainJson(Exception):
    pass


def _plain_json(value: Any) -> Any:
    raise _NotPlainJson(type(value).__name__)


def _patch_dynamodb_item_json(p: _Patches) -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    original = _require(ActionResult, "execute_result")  # DynamoResult inherits it

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in _ITEM_OPERATIONS or not isinstance(self.result, dict):
            return original(self, context)
        try:
            body = json.dumps(self.result, separators=(",", ":"), default=_plain_json)
        except _NotPlainJson:
            return original(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    p.set(DynamoResult, "execute_result", execute_result)
