"""What AWS and the instances do that moto does not: the simulated world moving on in
simulated time.

A ticker thread advances EC2 lifecycles (pending -> running, shutting-down -> terminated,
stopping -> stopped), boots replacements and runs the real boot gate on them, keeps target
health in step with the workload, turns failed status checks and missing heartbeats into alarm
state changes, publishes EC2 state-change events, keeps each instance's connections (its NFS
session to EFS, clients through the load balancer, its AWS API calls) established or cut as AWS
documents (swr/emulator/network.py), and watches the safety invariants, judged from those
connections:

- data: never two instances with the workload started that can both reach the shared data;
- clients: never two instances with the workload started that both hold client connections;
- permit: no instance mounts the shared data while another can still reach it or its clients.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from swr.emulator import moto_bridge
from swr.emulator.clock import VirtualClock, WarpClock
from swr.emulator.faults import FaultPlan
from swr.emulator.latency import LatencyProfile
from swr.emulator.network import (
    HTTPS_PORT,
    NFS_PORT,
    Address,
    Flow,
    NetworkAcls,
    PathKind,
    TargetGroupView,
    powered_off,
)
from swr.emulator.world import WorldInfo

log = logging.getLogger("swr-emulator")
# How often the world moves on: every simulated second in virtual time; every 20 ms of real time
# (whatever that is in simulated time) when warped.
TICK_SECONDS = 1.0
TICK_REAL_SECONDS = 0.02
RUNNING = "running"
API_ENDPOINTS = "the AWS API endpoints"


class SimulationStopped(BaseException):  # not Exception: instance code must not swallow it
    """Raised into instance-side code still running when the emulator stops."""


@dataclass
class SimInstance:
    instance_id: str
    az: str
    generation: int
    role: str  # "primary" (running before swr) or "replacement"
    state: str = "pending"
    state_since: float = 0.0
    subnet_id: str = ""
    address: str = ""
    hung: bool = False  # frozen, still on the network: its connections stay, its workload may resume
    panicked: bool = False  # kernel panic: nothing runs on it any more, its connections are gone
    shutdown_seconds: float | None = None  # shutting-down -> terminated, when not the profile's
    workload_up: bool = False
    mounted: bool = False
    isolated: bool = False  # every network interface in the blackhole security group
    passing_since: float | None = None  # health checks passing since (simulated)
    registered_at: dict[str, float] = field(default_factory=dict)  # target group -> simulated time
    gate_started: bool = False
    gate_outcome: str | None = None
    seen_records: int = 0
    flows: list[Flow] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def local(self) -> Address:
        return Address(self.address, self.subnet_id)

    def live(self, kind: PathKind | None = None) -> list[Flow]:
        return [f for f in self.flows if f.live and (kind is None or f.kind is kind)]

    @property
    def reaches_data(self) -> bool:
        """The workload is started (or frozen while started) and has a live NFS session."""
        return self.workload_up and bool(self.live(PathKind.EFS))

    @property
    def serves_clients(self) -> bool:
        return self.workload_up and bool(self.live(PathKind.CLIENTS))

    @property
    def serving(self) -> bool:
        """The workload is started and reachable: what must never be true of two at once."""
        return self.reaches_data or self.serves_clients


@dataclass(frozen=True)
class WorldView:
    """One read of what the workflow changed through the API, taken once per tick."""

    groups: dict[str, list[str]]  # instance -> security groups of its interfaces
    registered: set[str]
    draining: dict[str, float]  # instance -> when it was deregistered
    target_group: TargetGroupView
    acls: NetworkAcls
    mount_targets: list[dict[str, str]]


class EfsStore:
    """EFS as one local directory per file system: data written before a fault is what
    the replacement finds after it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, file_system_id: str) -> Path:
        path = self.root / file_system_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def append(self, file_system_id: str, name: str, line: str) -> None:
        with (self.directory(file_system_id) / name).open("a") as handle:
            handle.write(line + "\n")

    def read(self, file_system_id: str, name: str) -> list[str]:
        path = self.directory(file_system_id) / name
        return path.read_text().splitlines() if path.exists() else []


class Simulation:
    def __init__(
        self,
        clock: WarpClock | VirtualClock,
        latency: LatencyProfile,
        faults: FaultPlan,
        world: WorldInfo,
        client: Callable[[str], Any],
        efs: EfsStore,
        boot_gate: Callable[[SimInstance], str],
    ) -> None:
        self.clock = clock
        self.tick_seconds = TICK_SECONDS if isinstance(clock, VirtualClock) else TICK_REAL_SECONDS * clock.warp
        self.latency = latency
        self.faults = faults
        self.world = world
        self.client = client
        self.efs = efs
        self.boot_gate = boot_gate
        self.instances: dict[str, SimInstance] = {}
        self.violations: list[str] = []
        self.events: list[tuple[float, str]] = []  # (simulated time, what happened) for the demo
        self._lock = threading.RLock()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._stop = clock.event()
        self._thread: threading.Thread | None = None
        self._alarm_states: dict[str, str] = {}
        self._violated: set[tuple[str, ...]] = set()
        self._acls: tuple[dict[str, Any], NetworkAcls] | None = None
        self._frozen_acls: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # subnet -> ACL as last seen
        self._view: tuple[int, WorldView] | None = None  # (backends' epoch, what was read at it)
        # AZs whose replacements start but never pass health checks (a broken dependency there).
        self.unhealthy_azs: set[str] = set()
        # AZs whose EFS mount target does not answer: the boot gate cannot mount there.
        self.efs_unreachable_azs: set[str] = set()
        # AZs where replacements boot but their boot gate never runs (a unit stuck in boot).
        self.silent_gate_azs: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = self.clock.thread(self._run, name="swr-simulation")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sleep(self, simulated_seconds: float) -> None:
        """Sleep for the instances' own code (boot gate); ends it once the world is stopped, so
        no thread of a finished emulator goes on calling an endpoint."""
        if self.clock.sleep(simulated_seconds, self._stop):
            raise SimulationStopped("the emulator stopped")

    def after(self, simulated_seconds: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._timers, (self.clock.now() + simulated_seconds, next(self._sequence), action))

    def note(self, what: str) -> None:
        with self._lock:
            self.events.append((self.clock.now(), what))
        log.info(what)

    # --- moto hooks (called from request threads) ------------------------------------------
    # Hooks run inside a moto request; the work is handed to the ticker so that no API call
    # is made from within another.
    def on_launched(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self.after(0, partial(self._track_new, instance_id))

    def on_terminating(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self.after(0, partial(self._begin, instance_id, "shutting-down"))

    def on_stopping(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self.after(0, partial(self._begin, instance_id, "stopping"))

    def on_mount_target_deleting(self, mount_target_id: str) -> None:
        def gone() -> None:
            moto_bridge.finish_mount_target_deletion(mount_target_id)
            self.note(f"mount target {mount_target_id} deleted")

        self.note(f"mount target {mount_target_id} deleting")
        self.after(self.latency.mount_target_deletion, gone)

    def _begin(self, instance_id: str, state: str) -> None:
        with self._lock:
            sim = self.instances.get(instance_id)
            if sim is not None and sim.state not in ("shutting-down", "terminated", state):
                self._set_state(sim, state, self.clock.now())

    def target_health(self, target_group_arn: str, instance_id: str) -> tuple[str, str | None, str | None]:
        with self._lock:
            sim = self.instances.get(instance_id)
            if sim is None:
                return "unavailable", "Elb.InternalError", "Target unknown to the simulation"
            if sim.state != RUNNING:
                return "unhealthy", "Target.InvalidState", f"Target is in the {sim.state} state"
            registered = sim.registered_at.get(target_group_arn, self.clock.now())
            if sim.passing_since is None:
                if self.clock.now() - registered < self.latency.time_to_unhealthy:
                    return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
                return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
            healthy_at = max(sim.passing_since, registered) + self.latency.time_to_healthy
            if self.clock.now() >= healthy_at:
                return "healthy", None, None
            return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"

    # --- scenario primitives ---------------------------------------------------------------
    def add_primary(self, instance_id: str) -> SimInstance:
        """The instance the user ran before protecting it: booted, workload up, healthy."""
        now = self.clock.now()
        sim = self._instance(instance_id, 0, "primary", RUNNING, now)
        sim.workload_up = sim.mounted = True
        sim.passing_since = now - self.latency.time_to_healthy
        sim.registered_at[self.world.target_group_arn] = now - self.latency.time_to_healthy
        with self._lock:
            self.instances[instance_id] = sim
        moto_bridge.set_instance_state(instance_id, RUNNING)
        refused = self.open_efs(sim)
        if refused is not None:
            raise RuntimeError(f"the primary cannot reach its file system: {refused}")
        group = self.world.target_group_arn.rsplit("/", 2)[-2]
        sim.flows.append(Flow(PathKind.CLIENTS, group, sim.local, None, 0, now))
        sim.flows.append(
            Flow(PathKind.API, API_ENDPOINTS, sim.local, self.world.endpoint_address(sim.az), HTTPS_PORT, now)
        )
        return sim

    def workload_write(self, sim: SimInstance, record: str) -> bool:
        """The workload writes to shared data; only through a live NFS session, and not while frozen."""
        if not sim.reaches_data or sim.hung or sim.az in self.faults.down_azs:
            return False
        self.efs.append(self.world.file_system_id, "orders.log", f"{record} by {sim.instance_id}")
        return True

    def hang(self, sim: SimInstance, reason: str) -> None:
        """Freeze the workload (and the heartbeat with it); connections stay, as on a live host."""
        with self._lock:
            sim.hung = True
        self.note(f"{sim.instance_id} hangs ({reason}): its connections stay established")

    def panic(self, sim: SimInstance) -> None:
        """Kernel panic: the workload is gone with every connection of the instance."""
        now = self.clock.now()
        with self._lock:
            sim.panicked, sim.workload_up = True, False
            for flow in sim.live():
                flow.end(now, "kernel panic: the instance stopped answering")
        self.note(f"{sim.instance_id} kernel panic: the workload and its connections are gone")

    def fault_workload(self, sim: SimInstance) -> None:
        """RMS takes the faulted application down: its client connections close, the mount stays."""
        now = self.clock.now()
        with self._lock:
            sim.workload_up = False
            for flow in sim.live(PathKind.CLIENTS):
                flow.end(now, "the workload stopped: its connections closed")

    def self_fence(self, sim: SimInstance) -> None:
        with self._lock:
            sim.workload_up = False
            if sim.state == RUNNING:
                self._set_state(sim, "stopping", self.clock.now())

    def set_alarm(self, name: str, value: str, reason: str) -> None:
        if self._alarm_states.get(name) == value:
            return
        self._alarm_states[name] = value
        with self.faults.internal():
            self.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=value, StateReason=reason)
        self.note(f"alarm {name} -> {value}: {reason}")

    # --- the shared data ---------------------------------------------------------------------
    def mounting(self, sim: SimInstance) -> None:
        """The boot gate mounts EFS: the moment the permit invariant is judged, then the NFS
        session is opened if the network lets it (OSError otherwise, as mount.nfs4 fails)."""
        self._check_permit(sim)
        refused = self.open_efs(sim)
        if refused is not None:
            raise OSError(f"mount.nfs4: Connection timed out ({refused})")

    def open_efs(self, sim: SimInstance, view: WorldView | None = None) -> str | None:
        """Open an NFS session to the mount target in the instance's AZ; why not, or None."""
        view = view or self._observe()
        target = next(
            (
                t
                for t in view.mount_targets
                if t["AvailabilityZoneName"] == sim.az and t["LifeCycleState"] == "available"
            ),
            None,
        )
        if target is None:
            return f"no available mount target of {self.world.file_system_id} in {sim.az}"
        if sim.az in self.efs_unreachable_azs:
            return f"mount target {target['MountTargetId']} in {sim.az} does not answer"
        remote = Address(target["IpAddress"], target["SubnetId"])
        with self._lock:
            refused = self._refused(sim, view, remote, NFS_PORT)
            if refused is None:
                sim.mounted = True
                sim.flows.append(
                    Flow(PathKind.EFS, target["MountTargetId"], sim.local, remote, NFS_PORT, self.clock.now())
                )
        return refused

    # --- the ticker ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.clock.sleep(self.tick_seconds, self._stop):
            try:
                with self.faults.internal():
                    self._tick()
            except Exception:  # the world must keep turning; the failure is logged
                log.exception("simulation tick failed")

    def _tick(self) -> None:
        now = self.clock.now()
        self._fire_timers(now)
        view = self._observe()
        self._refresh_from_aws(now, view)
        with self._lock:
            for sim in list(self.instances.values()):
                self._advance(sim, now)
                self._update_flows(sim, now, view)
            self._check_invariants()

    def _fire_timers(self, now: float) -> None:
        due: list[Callable[[], None]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for action in due:
            action()

    def _observe(self) -> WorldView:
        # Read from the backends directly: a boto3 round trip per tick would take the GIL from
        # the workflow the simulation is watching. Most ticks fall between API calls (a Wait
        # state, a boot gate's poll interval): the view read at the same epoch still stands.
        epoch = moto_bridge.backends_epoch()  # before the read: a change during it moves it on
        if self._view is not None and self._view[0] == epoch:
            return self._view[1]
        tg = self.world.target_group_arn
        protocol, attributes = moto_bridge.target_group_attributes(tg)
        view = WorldView(
            groups=moto_bridge.security_groups_by_instance(),
            registered=moto_bridge.registered_targets(tg),
            draining=moto_bridge.draining_targets(tg),
            target_group=TargetGroupView(tg, protocol, attributes),
            acls=self._network_acls(),
            mount_targets=moto_bridge.mount_targets(self.world.file_system_id),
        )
        self._view = (epoch, view)
        return view

    def freeze_network_acls(self, az: str) -> None:
        """The AZ's control plane stops answering: ACL changes made from now on do not reach its
        subnets. Nothing documents how they would reach an impaired AZ, so none is assumed to."""
        az_of = self.world.az_of_subnet()
        with self._lock:
            self._view = None  # the view's ACLs are no longer what the backends hold
            self._frozen_acls.update(
                {s: acl for s, acl in moto_bridge.network_acls_by_subnet().items() if az_of.get(s) == az}
            )
        self.note(f"network ACL changes no longer reach the subnets of {az}")

    def _network_acls(self) -> NetworkAcls:
        entries = {**moto_bridge.network_acls_by_subnet(), **self._frozen_acls}
        if self._acls is None or entries != self._acls[0]:
            self._acls = (entries, NetworkAcls(entries))
        return self._acls[1]

    def _refresh_from_aws(self, now: float, view: WorldView) -> None:
        """What the workflow changed through the API: security groups, registrations."""
        with self._lock:
            for sim in self.instances.values():
                if self._blackholed(sim, view) and not sim.isolated:
                    sim.isolated = True
                    self.note(f"{sim.instance_id} isolated (blackhole security group)")
                tg = self.world.target_group_arn
                if sim.instance_id in view.registered and tg not in sim.registered_at:
                    sim.registered_at[tg] = now
                    self.note(f"{sim.instance_id} registered in target group")
                elif sim.instance_id not in view.registered and tg in sim.registered_at:
                    del sim.registered_at[tg]
                    self.note(f"{sim.instance_id} deregistered from target group")

    def _advance(self, sim: SimInstance, now: float) -> None:
        elapsed = now - sim.state_since
        shutdown = self.latency.shutting_down_to_terminated if sim.shutdown_seconds is None else sim.shutdown_seconds
        if sim.state == "pending" and elapsed >= self.latency.pending_to_running:
            self._set_state(sim, RUNNING, now)
        elif sim.state == "shutting-down" and elapsed >= shutdown:
            self._set_state(sim, "terminated", now)
        elif sim.state == "stopping" and elapsed >= self.latency.stopping_to_stopped:
            self._set_state(sim, "stopped", now)
        if (
            sim.role == "replacement"
            and sim.state == RUNNING
            and not sim.gate_started
            and now - sim.state_since >= self.latency.os_boot  # booted since it went running
            and sim.az not in self.faults.down_azs | self.silent_gate_azs
        ):
            sim.gate_started = True
            self.clock.thread(self._run_gate, name=f"boot-gate-{sim.instance_id}", args=(sim,)).start()
        passing = sim.serving and not sim.hung and sim.az not in self.faults.down_azs | self.unhealthy_azs
        if passing and sim.passing_since is None:
            sim.passing_since = now
        elif not passing:
            sim.passing_since = None

    def _update_flows(self, sim: SimInstance, now: float, view: WorldView) -> None:
        """End what AWS documents as ended; open what the instance would open again."""
        gone = powered_off(sim.state)
        for flow in sim.live():
            why = gone or self._cut(sim, flow, now, view)
            if why is not None:
                flow.end(now, why)
                self.note(f"{sim.instance_id}: {flow.describe()} cut: {why}")
        if gone or sim.panicked or sim.hung:
            return
        if sim.mounted and not sim.live(PathKind.EFS):
            self.open_efs(sim, view)  # the NFS client reconnects, if anything lets it
        tg = view.target_group
        if (
            sim.workload_up
            and sim.instance_id in view.registered
            and not sim.live(PathKind.CLIENTS)
            and self.target_health(tg.arn, sim.instance_id)[0] == "healthy"
            and self._refused(sim, view, None, 0) is None
        ):
            sim.flows.append(Flow(PathKind.CLIENTS, tg.name, sim.local, None, 0, now))
        if sim.state == RUNNING and not sim.live(PathKind.API):
            remote = self.world.endpoint_address(sim.az)
            if self._refused(sim, view, remote, HTTPS_PORT) is None:
                sim.flows.append(Flow(PathKind.API, API_ENDPOINTS, sim.local, remote, HTTPS_PORT, now))

    def _cut(self, sim: SimInstance, flow: Flow, now: float, view: WorldView) -> str | None:
        if flow.kind is PathKind.EFS and not any(t["MountTargetId"] == flow.peer for t in view.mount_targets):
            return f"mount target {flow.peer} deleted: its mounts are broken"
        if flow.kind is PathKind.CLIENTS:
            if not sim.workload_up and not sim.hung:
                return "the workload stopped: its connections closed"
            if sim.instance_id not in view.registered:
                deregistered = view.draining.get(sim.instance_id)
                if deregistered is None:
                    return "no longer a target: nothing reaches it through the load balancer"
                return view.target_group.connections_closed(deregistered, now)
            return None
        if flow.remote is not None:
            return view.acls.blocked(flow.local, flow.remote, flow.port)
        return None

    def _refused(self, sim: SimInstance, view: WorldView, remote: Address | None, port: int) -> str | None:
        """Why the instance cannot open a new connection to ``remote`` now, or None."""
        if sim.state != RUNNING:
            return f"{sim.instance_id} is {sim.state}"
        if sim.hung or sim.panicked or sim.az in self.faults.down_azs:
            return f"{sim.instance_id} does not answer"
        if self._blackholed(sim, view):
            return f"{sim.instance_id}'s security group {self.world.blackhole_security_group_id} admits no connection"
        if remote is not None:
            return view.acls.blocked(sim.local, remote, port)
        return None

    def _blackholed(self, sim: SimInstance, view: WorldView) -> bool:
        return bool(self.world.blackhole_security_group_id) and view.groups.get(sim.instance_id) == [
            self.world.blackhole_security_group_id
        ]

    def _run_gate(self, sim: SimInstance) -> None:
        try:
            outcome = self.boot_gate(sim)
        except SimulationStopped:
            return
        with self._lock:
            sim.gate_outcome = outcome
        self.note(f"boot gate on {sim.instance_id}: {outcome}")

    def _set_state(self, sim: SimInstance, state: str, now: float) -> None:
        previous, sim.state, sim.state_since = sim.state, state, now
        gone = powered_off(state)
        if gone is not None:
            # Until it is stopped or terminated the instance may still run: what it holds stays.
            sim.workload_up = sim.mounted = False
            for flow in sim.live():
                flow.end(now, gone)
        moto_bridge.set_instance_state(sim.instance_id, state)
        self.note(f"{sim.instance_id} ({sim.az}) {previous} -> {state}")
        self.publish_ec2_state(sim.instance_id, state)

    def publish_ec2_state(self, instance_id: str, state: str) -> None:
        """EC2's state-change event for ``instance_id``, as AWS publishes it."""
        detail = {"instance-id": instance_id, "state": state}
        with self.faults.internal(), moto_bridge.as_aws_service():
            self.client("events").put_events(
                Entries=[
                    {
                        "Source": "aws.ec2",
                        "DetailType": "EC2 Instance State-change Notification",
                        "Detail": json.dumps(detail),
                        "Resources": [f"arn:aws:ec2:{self.world.region}:123456789012:instance/{instance_id}"],
                    }
                ]
            )

    # --- invariants ------------------------------------------------------------------------
    def _violation(self, key: tuple[str, ...], what: str) -> None:
        if key in self._violated:
            return
        self._violated.add(key)
        self.violations.append(what)
        log.error("SAFETY INVARIANT VIOLATED: %s", what)

    def _check_invariants(self) -> None:
        at_data = sorted((s for s in self.instances.values() if s.reaches_data), key=lambda s: s.instance_id)
        if len(at_data) > 1:
            self._violation(
                ("data", *(s.instance_id for s in at_data)),
                "workload started on "
                + " and ".join(f"{s.instance_id} ({_flows(s, PathKind.EFS)})" for s in at_data)
                + ": both can reach the shared data",
            )
        with_clients = sorted((s for s in self.instances.values() if s.serves_clients), key=lambda s: s.instance_id)
        if len(with_clients) > 1:
            self._violation(
                ("clients", *(s.instance_id for s in with_clients)),
                "workload started on "
                + " and ".join(s.instance_id for s in with_clients)
                + ": both hold client connections",
            )

    def _check_permit(self, sim: SimInstance) -> None:
        with self._lock:
            others = [
                o for o in self.instances.values() if o is not sim and o.live(PathKind.EFS) + o.live(PathKind.CLIENTS)
            ]
            for other in others:
                held = "; ".join(f.describe() for f in other.live(PathKind.EFS) + other.live(PathKind.CLIENTS))
                self._violation(
                    ("permit", sim.instance_id, other.instance_id),
                    f"{sim.instance_id} mounted the shared data while {other.instance_id} could still reach it: {held}",
                )

    # --- instances -------------------------------------------------------------------------
    def _track_new(self, instance_id: str) -> None:
        if instance_id in self.instances:
            return  # the primary, seeded before the simulation started
        instance = self._describe(instance_id)
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        sim = self._instance(
            instance_id,
            int(tags.get("swr:generation", "0")),
            "replacement" if "swr:execution" in tags else "primary",
            "pending",
            self.clock.now(),
            instance,
        )
        with self._lock:
            self.instances[instance_id] = sim
        self.note(f"{instance_id} launched in {sim.az} (generation {sim.generation})")

    def _instance(
        self,
        instance_id: str,
        generation: int,
        role: str,
        state: str,
        now: float,
        described: dict[str, Any] | None = None,
    ) -> SimInstance:
        instance = described or self._describe(instance_id)
        return SimInstance(
            instance_id,
            str(instance["Placement"]["AvailabilityZone"]),
            generation,
            role,
            state,
            now,
            subnet_id=str(instance.get("SubnetId", "")),
            address=str(instance.get("PrivateIpAddress", "")),
        )

    def _describe(self, instance_id: str) -> dict[str, Any]:
        with self.faults.internal():
            reservations = self.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
        return dict(reservations[0]["Instances"][0])


def _flows(sim: SimInstance, kind: PathKind) -> str:
    return ", ".join(f.describe() for f in sim.live(kind)) or "no live flow"
