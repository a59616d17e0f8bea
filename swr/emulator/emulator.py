"""The embedded emulator: moto with its real ASL interpreter, the seeded world, the
deployed workflow and the simulation, behind one object."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import logging
import os
import random
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import boto3

from handlers.core import aws as handler_aws
from handlers.core import clock as handler_clock
from handlers.core.record_store import RecordStore
from handlers.core.settings import get_settings
from rms_hooks import fault_notifier
from rms_hooks.boot_gate import BootGate, GateConfig
from swr.emulator import deploy, moto_bridge, scenarios, world
from swr.emulator.clock import VirtualClock, WarpClock
from swr.emulator.faults import SERVER_ERROR, THROTTLING, FaultPlan
from swr.emulator.host import SimulatedHost
from swr.emulator.latency import LatencyProfile
from swr.emulator.network import Flow
from swr.emulator.simulation import EfsStore, SimInstance, Simulation
from swr.ops import onboarding, status
from swr.stack import TIME_WARP_TAG, StackOutputs

SCENARIOS = scenarios.NAMES
HANDLER_SERVICES = ("ec2", "elbv2", "dynamodb", "events", "stepfunctions", "cloudwatch")
FAULTABLE_ACTIONS = (
    ("ec2", "RunInstances"),
    ("ec2", "DescribeInstances"),
    ("ec2", "ModifyNetworkInterfaceAttribute"),
    ("ec2", "TerminateInstances"),
    ("elbv2", "RegisterTargets"),
    ("elbv2", "DeregisterTargets"),
    ("elbv2", "DescribeTargetHealth"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
)
PRE_FAULT_RECORDS = 5
UNFINISHED = {"RUNNING"}
WORLD_SEED = 7  # a built world's ids and names; the run's seed takes over once it is built
log = logging.getLogger("swr-emulator")


@dataclasses.dataclass(frozen=True)
class _BuiltWorld:
    """A world as built (stack deployed, application registered), kept to be restored."""

    backends: moto_bridge.BackendSnapshot
    world: world.WorldInfo
    deployment: deploy.Deployment | None
    primary_instance_id: str
    function_environment: dict[str, str]


# Fast worlds: a world with the same layout and clock is built once per process and restored
# from its snapshot for every emulator after the first (well under a second).
_WORLDS: dict[tuple[Any, ...], _BuiltWorld] = {}


@functools.cache
def _driver_client(service: str, region: str) -> Any:
    """The driver's clients serve every emulator of the process (creating one costs ~20 ms).
    They keep no state between calls: legacy retries, no quota. The steps' clients, whose
    standard-mode retry quota does carry over, are made afresh for each emulator."""
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


# The steps' clients, by the environment they were made in: creating them costs ~0.1 s per run.
_STEP_CLIENTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def _make_step_clients(environment: tuple[Any, ...]) -> None:
    """The steps' clients as new: kept from an earlier run in the same environment (with their
    standard-mode retry quota full again, as a new client's is: what an earlier run spent must not
    change how this one's calls are retried), or made now."""
    kept = _STEP_CLIENTS.get(environment)
    if kept is None:
        _STEP_CLIENTS[environment] = {service: handler_aws.client(service) for service in HANDLER_SERVICES}  # type: ignore[call-overload]
        return
    for made in kept.values():
        _refill_retry_quota(made)
    handler_aws.clients().update(kept)


def _refill_retry_quota(made: Any) -> None:
    from botocore.retries.quota import RetryQuota
    from botocore.retries.standard import RetryQuotaChecker

    emitter = getattr(made.meta.events, "_emitter", made.meta.events)
    service = made.meta.service_model.service_id.hyphenize()
    checkers = [
        h.__self__
        for h in emitter._handlers.prefix_search(f"after-call.{service}")
        if isinstance(getattr(h, "__self__", None), RetryQuotaChecker)
    ]
    if len(checkers) != 1:
        raise RuntimeError(f"botocore moved: no single retry quota on the {service} client ({checkers})")
    checkers[0]._quota = RetryQuota()
    checkers[0]._last_amount_acquired = None


class Emulator:
    def __init__(
        self,
        *,
        virtual: bool = True,
        warp: float = 100.0,
        latency: LatencyProfile | None = None,
        seed: int = 7,
        workdir: Path | None = None,
        protect: bool = True,
        world_options: world.WorldOptions | None = None,
    ) -> None:
        """``protect=False`` leaves the account as it is before swr: the application runs,
        nothing of swr is deployed or registered (the README's deployment guide does that).
        ``virtual`` (the default) runs the world in deterministic virtual time, driven by the
        calling thread (see swr/emulator/scheduler.py); ``virtual=False`` runs it ``warp`` times
        faster than the wall clock, as a served emulator must (its clients act in real time)."""
        self.protect = protect
        self.world_options = world_options or world.WorldOptions()
        self.clock: VirtualClock | WarpClock = VirtualClock() if virtual else WarpClock(warp)
        self.seed = seed
        self._ids = random.Random(seed)
        self.latency = latency or LatencyProfile()
        self.faults = FaultPlan(seed=seed)
        self.region = world.REGION
        self.app = world.APP
        self.table_name = ""  # the deployed stack's
        self.alarm_names: list[str] = []
        self.deployment: deploy.Deployment | None = None
        self.stack: StackOutputs | None = None
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="swr-emulator-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.world: world.WorldInfo | None = None
        self.simulation: Simulation | None = None
        self.state_machine_arn = ""
        self.primary_instance_id = ""
        self.fault_injected_at: float | None = None
        self.scenario: str | None = None
        self._clients: dict[str, Any] = {}
        self._instance_role_found: tuple[str, str] | None = None
        self._failover_verdicts: dict[str, bool] = {}
        self._saved_env: dict[str, str | None] = {}
        self._log_stream: TextIO | None = None
        self._saved_streams: list[tuple[logging.StreamHandler[Any], Any]] = []

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Emulator:
        self._environment(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "swr",
            }
        )
        get_settings.cache_clear()
        handler_aws.clients().clear()
        handler_clock.set_source(self.clock.now)
        self._route_handler_logs()
        scheduler = self.clock.scheduler
        if scheduler is not None:  # this thread drives the world: it runs whenever it is its turn
            scheduler.adopt("driver")
            # Powertools checks a metric's timestamp against the wall clock, which virtual time
            # is not; CloudWatch here (bridge patch 24) takes the handlers' clock.
            warnings.filterwarnings("ignore", message="This metric doesn't meet the requirements")
        hooks = moto_bridge.BridgeHooks(
            warp=self.clock.effective_warp,
            sim_now=self.clock.now,
            scheduler=scheduler,
            invoking=lambda: self.clock.paused(charge=self.latency.step_invocation),
            fault_for=self.faults.fault_for,
            # The functions' environment comes from the deployed stack; settings cached from
            # another environment would be stale.
            on_function_environment=self._on_function_environment,
        )
        moto_bridge.start(hooks, region=self.region, seed=self.seed)
        try:
            self._build(hooks)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.simulation is not None:
            self.simulation.stop()
        scheduler = self.clock.scheduler
        if scheduler is not None:  # what still waits ends here; the teardown below is not gated
            scheduler.close()
            scheduler.leave()
        moto_bridge.stop_server()
        moto_bridge.stop()
        handler_clock.reset_source()
        handler_aws.clients().clear()
        get_settings.cache_clear()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._restore_handler_logs()
        if self._tmp is not None:
            self._tmp.cleanup()

    def start_server(self, port: int = 0) -> str:
        """Serve the backends on loopback. In virtual time the world moves only while the driver
        waits (sleep, wait_until): a client that waits in real time for a failover to progress
        needs Emulator(virtual=False)."""
        endpoint = moto_bridge.start_server(port)
        if self.deployment is not None:
            self._mark_time_warp(self.deployment.stack_name)
        return endpoint

    def _mark_time_warp(self, stack_name: str) -> None:
        # Warped, histories carry wall-clock times: the read commands scale them by the warp
        # the stack carries (swr.stack.TIME_WARP_TAG). In virtual time they are simulated already.
        if isinstance(self.clock, WarpClock):
            moto_bridge.tag_stack(stack_name, {TIME_WARP_TAG: f"{self.clock.warp:g}"}, self.region)

    def boto3_client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _driver_client(service, self.region)
        return self._clients[service]

    @property
    def store(self) -> RecordStore:
        return RecordStore(self.table_name, self.boto3_client("dynamodb"))

    # --- faults ------------------------------------------------------------------------
    @classmethod
    def for_scenario(cls, name: str, *, target_group: tuple[int, bool] | None = None, **kwargs: Any) -> Emulator:
        """An emulator whose account is laid out as the scenario needs (swr/emulator/scenarios.py);
        ``target_group`` sets the deregistration delay and connection termination instead."""
        options = scenarios.scenario(name).world
        if target_group is not None:
            delay, termination = target_group
            options = dataclasses.replace(options, deregistration_delay=delay, connection_termination=termination)
        return cls(world_options=options, **kwargs)

    def inject(self, scenario: str) -> None:
        """Make the fault happen now; detection follows in simulated time."""
        chosen = scenarios.scenario(scenario)
        if chosen.world.mount_targets_in_app_subnets != self.world_options.mount_targets_in_app_subnets:
            raise ValueError(
                f"scenario {scenario} needs the account laid out as {chosen.world}:"
                f" build the emulator with Emulator.for_scenario({scenario!r})"
            )
        self.scenario, self.fault_injected_at = scenario, self.clock.now()
        chosen.inject(self)

    def inject_api_faults(self, rate: float) -> None:
        """From now on, the APIs a failover uses answer throttling (and, at half the rate,
        a 5xx) at random with probability ``rate`` per call."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        for service, action in FAULTABLE_ACTIONS:
            self.faults.add(service, action, THROTTLING, rate=rate)
            self.faults.add(service, action, SERVER_ERROR, rate=rate / 2)

    def metric_datapoints(self, name: str, dimensions: dict[str, str], statistic: str = "Sum") -> list[float]:
        """The stack's metric ``name`` with ``dimensions``, one ``statistic`` over the world's day
        (the handlers' EMF metrics carry the world's time, not the wall clock's)."""
        assert self.stack is not None, "metrics are written in the stack's namespace"
        now = datetime.fromtimestamp(self.clock.now(), tz=UTC)
        points = self.boto3_client("cloudwatch").get_metric_statistics(
            Namespace=self.stack.MetricNamespace,
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=now - timedelta(days=1),
            EndTime=now + timedelta(days=1),
            Period=86400 * 2,
            Statistics=[statistic],
        )["Datapoints"]
        return [float(p[statistic]) for p in points]

    def alarm(self, suffix: str) -> str:
        """The name of the application's alarm that ends with ``suffix``."""
        return next(name for name in self.alarm_names if name.endswith(f"-{suffix}"))

    def report_rms_fault(self, primary: SimInstance) -> None:
        """What RMS's FaultScript does on the instance: publish the fault with swr-notify-fault's code."""
        entry = fault_notifier.fault_entry(
            self.app,
            primary.instance_id,
            "app_demo",
            "userApplication app_demo Faulted: resource Cmdline0 failed",
            occurred_at=datetime.fromtimestamp(self.clock.now(), tz=UTC),
            fault_id=str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),  # seeded: replayable
            generation=primary.generation,  # what IMDS gives the notifier: the instance's swr:generation tag
        )
        with self.instance_credentials(primary):
            fault_notifier.publish(self.boto3_client("events"), entry)

    def instance_credentials(self, instance: SimInstance) -> AbstractContextManager[None]:
        """Calls made inside are made with the instance profile's role, from the instance: through
        the stack's VPC endpoints, from its VPC and private address (the global condition keys an
        instance's credentials carry; IAM User Guide, "AWS global condition context keys")."""
        assert self.world is not None
        account = self.world.instance_profile_arn.split(":")[4]
        arn = f"arn:aws:ec2:{self.region}:{account}:instance/{instance.instance_id}"
        role_arn, role_id = self._instance_role()
        context = {
            "aws:userid": [f"{role_id}:{instance.instance_id}"],  # an instance role's session: its instance
            "aws:SourceVpc": [self.world.vpc_id],
            "aws:VpcSourceIp": [instance.address],
            "aws:EC2InstanceSourceVPC": [self.world.vpc_id],
            "aws:EC2InstanceSourcePrivateIPv4": [instance.address],
            "ec2:SourceInstanceARN": [arn],
            "aws:ViaAWSService": ["false"],
        }
        return moto_bridge.acting_as(role_arn, context)

    def _instance_role(self) -> tuple[str, str]:
        """The instance profile's role: (ARN, unique id)."""
        if self._instance_role_found is None:
            assert self.world is not None
            name = self.world.instance_profile_arn.rsplit("/", 1)[-1]
            profile = self.boto3_client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            role = profile["Roles"][0]
            self._instance_role_found = (str(role["Arn"]), str(role["RoleId"]))
        return self._instance_role_found

    # --- waiting and reporting ---------------------------------------------------------
    def executions(self) -> list[dict[str, Any]]:
        """The state machine's executions, oldest first, as ListExecutions gives them."""
        return sorted(moto_bridge.execution_list(self.state_machine_arn), key=lambda e: e["startDate"])

    def sleep(self, simulated_seconds: float) -> None:
        """Let the world move on (the driver waits; in virtual time, nothing else moves while it
        does not)."""
        if isinstance(self.clock, VirtualClock):
            self.clock.scheduler.sleep(simulated_seconds)
        else:
            self.clock.sleep(simulated_seconds)

    def wait_until(self, done: Callable[[], bool], timeout: float = 3600.0, poll: float = 1.0) -> bool:
        """Wait until done() holds, looking every ``poll`` simulated seconds (every 50 ms of real
        time when warped); False once ``timeout`` simulated seconds have passed."""
        if isinstance(self.clock, VirtualClock):
            return self.clock.scheduler.wait_for(done, timeout, poll)
        deadline = self.clock.now() + timeout
        while not done():
            if self.clock.now() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_until_settled(self, timeout: float = 3600.0, quiet_for: float = 30.0, poll: float = 5.0) -> list[str]:
        """Wait until no execution is running and none started for ``quiet_for`` simulated seconds
        (looking every ``poll``)."""
        seen: dict[str, Any] = {"count": -1, "since": self.clock.now(), "arns": []}

        def settled() -> bool:
            executions = self.executions()
            now = self.clock.now()
            if len(executions) != seen["count"] or any(e["status"] in UNFINISHED for e in executions):
                seen.update(count=len(executions), since=now)
                return False
            seen["arns"] = [e["executionArn"] for e in executions]
            return bool(now - seen["since"] >= quiet_for)

        if not self.wait_until(settled, timeout, poll=poll):
            raise TimeoutError(f"executions still running after {timeout} simulated seconds")
        return list(seen["arns"])

    def wait_for_failover(self, timeout: float = 3600.0) -> str:
        """The execution that admitted the fault (not an ignored or duplicate one), once finished."""
        if not self.wait_until(lambda: self.finished_failover() is not None, timeout, poll=5.0):
            raise TimeoutError(f"no failover finished within {timeout} simulated seconds")
        return str(self.finished_failover())

    def finished_failover(self) -> str | None:
        """The first execution that admitted a fault and has finished, if there is one yet."""
        for execution in self.executions():
            if execution["status"] not in UNFINISHED and self._is_failover(execution["executionArn"]):
                return str(execution["executionArn"])
        return None

    def _is_failover(self, arn: str) -> bool:
        """Did this execution's Admit take the lease (rather than ignore or defer)? Asked of
        finished executions only, so the answer is kept."""
        if arn not in self._failover_verdicts:
            self._failover_verdicts[arn] = self._admitted(arn)
        return self._failover_verdicts[arn]

    def _admitted(self, arn: str) -> bool:
        for event in moto_bridge.execution_events(arn):
            details = event.get("lambdaFunctionSucceededEventDetails") or event.get("taskSucceededEventDetails")
            if details is not None:  # the first task to succeed is Admit
                return bool(json.loads(details.get("output") or "{}").get("decision") == "proceed")
        return False

    def report(self, execution_arn: str) -> dict[str, Any]:
        assert self.world is not None
        described = self.boto3_client("stepfunctions").describe_execution(executionArn=execution_arn)
        record = self.store.require(self.app)
        sim = self._sim()
        old = sim.instances[self.primary_instance_id]
        new = sim.instances.get(record.current_instance_id)
        health = self._target_health(record.current_instance_id)
        preserved = bool(new and new is not old and new.workload_up and new.seen_records >= PRE_FAULT_RECORDS)
        stopped = described.get("stopDate")
        rto = (
            round(self.clock.to_simulated(stopped) - self.fault_injected_at, 1)
            if stopped and self.fault_injected_at is not None
            else None
        )
        recovered = (
            described["status"] == "SUCCEEDED"
            and new is not None
            and new is not old
            and new.az != old.az
            and health == "healthy"
            and preserved
            and not sim.violations
        )
        # Failed closed: the workflow gave up with a cause, released its lease, and left nothing
        # unsafe behind (no invariant broken, at most one instance with the workload started).
        failed_closed = (
            described["status"] == "FAILED"
            and bool(described.get("error"))
            and bool(described.get("cause"))
            and record.lease is None
            and not sim.violations
            and len(self.serving_instances()) <= 1
        )
        return {
            "outcome": "recovered" if recovered else "failed-closed" if failed_closed else "failed",
            "scenario": self.scenario,
            "execution_arn": execution_arn,
            "execution_status": described["status"],
            "error": described.get("error"),
            "cause": described.get("cause"),
            "old": {
                "instance_id": old.instance_id,
                "az": old.az,
                "state": old.state,
                "connections": [_connection(f, self.fault_injected_at) for f in old.flows],
            },
            "new": {"instance_id": new.instance_id, "az": new.az} if new and new is not old else None,
            "new_target_health": health if new is not old else None,
            "efs_data_preserved": preserved,
            "efs_records_seen": new.seen_records if new else 0,
            "simulated_rto_seconds": rto,
            "generation": record.generation,
            "record_state": record.state.value,
            "invariant_violations": list(sim.violations),
        }

    # --- inspection helpers --------------------------------------------------------------
    def instance(self, instance_id: str) -> SimInstance:
        return self._sim().instances[instance_id]

    @property
    def sim(self) -> Simulation:
        return self._sim()

    def current(self) -> SimInstance:
        """The instance the application's record names as current."""
        return self._current()

    def serving_instances(self) -> list[str]:
        return sorted(i.instance_id for i in self._sim().instances.values() if i.serving)

    # --- internals -----------------------------------------------------------------------
    def _build(self, hooks: moto_bridge.BridgeHooks) -> None:
        built = _WORLDS.get(self._world_key())
        if built is None:
            built = _WORLDS[self._world_key()] = self._seed_world()
            # The snapshot (and what the build imported) lives as long as the process: out of
            # the cyclic collector's way, so that every later full collection does not walk it
            # again (a twentieth of a campaign's CPU went to that). Garbage goes first.
            gc.collect()
            gc.freeze()
        # The first run too works on a copy: a copy's sets and dicts may iterate in another
        # order than the originals did, and a seed must replay alike in any process.
        moto_bridge.restore_backends(built.backends)
        self.world = dataclasses.replace(built.world)
        self.faults.subnet_az = self.world.az_of_subnet()
        self.deployment, self.primary_instance_id = built.deployment, built.primary_instance_id
        if built.deployment is not None:
            self._adopt_stack(built.deployment.outputs)
        moto_bridge.reseed(self.seed)  # what happens from now on follows this emulator's seed
        self.simulation = Simulation(
            self.clock,
            self.latency,
            self.faults,
            self.world,
            self.boto3_client,
            EfsStore(self.workdir / "efs"),
            self._run_boot_gate,
        )
        hooks.on_instances_launched = self.simulation.on_launched
        hooks.on_instances_terminating = self.simulation.on_terminating
        hooks.on_instances_stopping = self.simulation.on_stopping
        hooks.mount_target_deleting = self.simulation.on_mount_target_deleting
        hooks.target_health = self.simulation.target_health
        primary = self.simulation.add_primary(self.primary_instance_id)
        for n in range(1, PRE_FAULT_RECORDS + 1):
            self.simulation.workload_write(primary, f"order-{n:04d}")
        if built.function_environment:
            # A Lambda's first call pays for creating its clients; create them before the clock
            # matters, in the functions' environment.
            self._environment(built.function_environment)
            get_settings.cache_clear()
            _make_step_clients((self.region, *sorted(built.function_environment.items())))
        self.simulation.start()

    def _world_key(self) -> tuple[Any, ...]:
        # A warped world is built in warped time (its timestamps are the wall clock's, moved on
        # by the warp): kept apart from the virtual one, it is restored like it.
        return (self.world_options, self.protect, self.clock.scheduler is None)

    def _seed_world(self) -> _BuiltWorld:
        """The account as swr finds it (and, protected, with the stack deployed and the
        application registered by swr's own code), through the API; then a snapshot of it."""
        moto_bridge.reseed(WORLD_SEED)  # the same world (ids, names) whatever the run's seed
        info = world.seed(self.boto3_client, self.world_options)
        deployment = None
        if self.protect:
            deployment = deploy.deploy(self.boto3_client, deploy.parameters_for(info), log.info)
            log.info("%s", deployment.summary())
            self.world = info
            self._adopt_stack(deployment.outputs)
        primary = world.launch_primary(self.boto3_client, info)
        moto_bridge.set_instance_state(primary, "running")  # booted long before swr came
        self.boto3_client("elbv2").register_targets(TargetGroupArn=info.target_group_arn, Targets=[{"Id": primary}])
        environment: dict[str, str] = {}
        if deployment is not None:
            assert self.stack is not None
            # The seeded application is protected by `swr register`'s own code.
            onboarding.register(self.boto3_client, self.stack, world.registration(info, primary))
            environment = self._function_environment(deployment)
        return _BuiltWorld(
            backends=moto_bridge.snapshot_backends(),
            world=dataclasses.replace(info),
            deployment=deployment,
            primary_instance_id=primary,
            function_environment=environment,
        )

    def _adopt_stack(self, outputs: StackOutputs) -> None:
        """Take the names the deployed stack gave swr's resources from its outputs."""
        assert self.world is not None
        self.stack = outputs
        self.table_name = self.world.table_name = outputs.RecordTableName
        self.world.blackhole_security_group_id = outputs.BlackholeSecurityGroupId
        self.world.instance_profile_arn = outputs.InstanceProfileArn
        self.state_machine_arn = outputs.StateMachineArn
        self.alarm_names = onboarding.alarm_names(self.app, outputs.AlarmNamePrefix)

    def _on_function_environment(self) -> None:
        # A function of a stack deployed while serving runs for the first time: before any fence
        # or boot gate, so the simulation learns the stack's names in time.
        get_settings.cache_clear()
        if self.stack is None:
            # The stack whose record table the function was given (any stack name, any prefix).
            table = os.environ.get("SWR_TABLE_NAME", "")
            for name, outputs in status.discover_stacks(self.boto3_client("cloudformation")):
                if outputs.RecordTableName == table:
                    self._adopt_stack(outputs)
                    self._mark_time_warp(name)
                    return
            log.warning("a function ran, but no deployed stack has its record table %s", table)

    def _function_environment(self, deployment: deploy.Deployment) -> dict[str, str]:
        """The Environment.Variables of the stack's functions (one set: the template's Globals)."""
        cloudformation, lambda_ = self.boto3_client("cloudformation"), self.boto3_client("lambda")
        resources = cloudformation.describe_stack_resources(StackName=deployment.stack_name)["StackResources"]
        function = next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function")
        configuration = lambda_.get_function_configuration(FunctionName=function)
        return dict(configuration.get("Environment", {}).get("Variables", {}))

    def _run_boot_gate(self, instance: SimInstance) -> str:
        sim = self._sim()
        config = GateConfig(app=self.app, table_name=self.table_name, region=self.region)
        gate = BootGate(
            config,
            SimulatedHost(sim, instance),
            self.boto3_client("dynamodb"),
            self.boto3_client("stepfunctions"),
            sleep=sim.sleep,
            clock=self.clock.now,
        )
        with self.instance_credentials(instance):
            return str(gate.run())

    def _target_health(self, instance_id: str) -> str:
        assert self.world is not None
        found = self.boto3_client("elbv2").describe_target_health(
            TargetGroupArn=self.world.target_group_arn, Targets=[{"Id": instance_id}]
        )["TargetHealthDescriptions"]
        return str(found[0]["TargetHealth"]["State"]) if found else "unregistered"

    def _current(self) -> SimInstance:
        return self._sim().instances[self.store.require(self.app).current_instance_id]

    def _sim(self) -> Simulation:
        if self.simulation is None:
            raise RuntimeError("the emulator is not started")
        return self.simulation

    def _environment(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.setdefault(key, "testing")

    def _route_handler_logs(self) -> None:
        # The handlers log to stdout as on Lambda; here their stdout is the emulator's log file,
        # as CloudWatch Logs would be.
        import handlers.shell  # noqa: F401  (creates the Powertools logger)

        self._log_stream = (self.workdir / "lambda.log").open("a")
        for handler in logging.getLogger("swr").handlers:
            if isinstance(handler, logging.StreamHandler):
                self._saved_streams.append((handler, handler.stream))
                # Not setStream(): it flushes the old stream, which a caller may have closed.
                with handler.lock or nullcontext():
                    handler.stream = self._log_stream

    def _restore_handler_logs(self) -> None:
        for handler, stream in self._saved_streams:
            with handler.lock or nullcontext():
                handler.stream = stream
        self._saved_streams.clear()
        if self._log_stream is not None:
            self._log_stream.close()
            self._log_stream = None


def _connection(flow: Flow, since: float | None) -> str:
    """One connection of an instance as the report shows it: live, or when and why it ended."""
    if flow.ended_at is None:
        return f"{flow.describe()}: still established"
    at = f" at t+{flow.ended_at - since:.1f}s" if since is not None else ""
    return f"{flow.describe()}: cut{at} ({flow.ended_by})"
