"""What AWS and the instances do that moto does not: the simulated world moving on in
simulated time.

A ticker thread advances EC2 lifecycles (pending -> running, shutting-down -> terminated),
boots replacements and runs the real boot gate on them, keeps target health in step with
the workload, turns failed status checks and missing heartbeats into alarm state changes,
publishes EC2 state-change events, and watches the safety invariant: never two instances
of one application with the workload started and reachable.
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
from swr.emulator.clock import WarpClock
from swr.emulator.faults import FaultPlan
from swr.emulator.latency import LatencyProfile
from swr.emulator.world import WorldInfo

log = logging.getLogger("swr-emulator")
TICK_REAL_SECONDS = 0.02
RUNNING = "running"


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
    hung: bool = False
    workload_up: bool = False
    mounted: bool = False
    isolated: bool = False
    passing_since: float | None = None  # health checks passing since (simulated)
    registered_at: dict[str, float] = field(default_factory=dict)  # target group -> simulated time
    gate_started: bool = False
    gate_outcome: str | None = None
    seen_records: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def serving(self) -> bool:
        """The workload is started and reachable: what must never be true of two at once."""
        return self.workload_up and not self.isolated and self.state == RUNNING


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
        clock: WarpClock,
        latency: LatencyProfile,
        faults: FaultPlan,
        world: WorldInfo,
        client: Callable[[str], Any],
        efs: EfsStore,
        boot_gate: Callable[[SimInstance], str],
    ) -> None:
        self.clock = clock
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._alarm_states: dict[str, str] = {}
        # AZs whose replacements start but never pass health checks (a broken dependency there).
        self.unhealthy_azs: set[str] = set()
        # AZs whose EFS mount target does not answer: the boot gate cannot mount there.
        self.efs_unreachable_azs: set[str] = set()
        # AZs where replacements boot but their boot gate never runs (a unit stuck in boot).
        self.silent_gate_azs: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="swr-simulation", daemon=True)
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
            self.after(0, partial(self._terminating, instance_id))

    def _terminating(self, instance_id: str) -> None:
        with self._lock:
            sim = self.instances.get(instance_id)
            if sim is not None and sim.state not in ("shutting-down", "terminated"):
                self._set_state(sim, "shutting-down", self.clock.now())

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
        sim = SimInstance(instance_id, self._az_of(instance_id), 0, "primary", RUNNING, now)
        sim.workload_up = sim.mounted = True
        sim.passing_since = now - self.latency.time_to_healthy
        sim.registered_at[self.world.target_group_arn] = now - self.latency.time_to_healthy
        with self._lock:
            self.instances[instance_id] = sim
        moto_bridge.set_instance_state(instance_id, RUNNING)
        return sim

    def workload_write(self, sim: SimInstance, record: str) -> bool:
        """The workload writes to shared data; an isolated or unreachable instance cannot."""
        if not sim.serving or sim.hung or sim.az in self.faults.down_azs:
            return False
        self.efs.append(self.world.file_system_id, "orders.log", f"{record} by {sim.instance_id}")
        return True

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

    # --- the ticker ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(TICK_REAL_SECONDS):
            try:
                with self.faults.internal():
                    self._tick()
            except Exception:  # the world must keep turning; the failure is logged
                log.exception("simulation tick failed")

    def _tick(self) -> None:
        now = self.clock.now()
        self._fire_timers(now)
        self._refresh_from_aws(now)
        with self._lock:
            for sim in list(self.instances.values()):
                self._advance(sim, now)
            self._check_invariant(now)

    def _fire_timers(self, now: float) -> None:
        due: list[Callable[[], None]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for action in due:
            action()

    def _refresh_from_aws(self, now: float) -> None:
        """Read what the workflow changed through the API: security groups, registrations."""
        groups = moto_bridge.security_groups_by_instance()
        registered = moto_bridge.registered_targets(self.world.target_group_arn)
        with self._lock:
            for sim in self.instances.values():
                blackholed = groups.get(sim.instance_id) == [self.world.blackhole_security_group_id]
                if blackholed and not sim.isolated:
                    sim.isolated = True
                    self.note(f"{sim.instance_id} isolated (blackhole security group)")
                tg = self.world.target_group_arn
                if sim.instance_id in registered and tg not in sim.registered_at:
                    sim.registered_at[tg] = now
                    self.note(f"{sim.instance_id} registered in target group")
                elif sim.instance_id not in registered and tg in sim.registered_at:
                    del sim.registered_at[tg]
                    self.note(f"{sim.instance_id} deregistered from target group")

    def _advance(self, sim: SimInstance, now: float) -> None:
        elapsed = now - sim.state_since
        if sim.state == "pending" and elapsed >= self.latency.pending_to_running:
            self._set_state(sim, RUNNING, now)
        elif sim.state == "shutting-down" and elapsed >= self.latency.shutting_down_to_terminated:
            self._set_state(sim, "terminated", now)
        elif sim.state == "stopping" and elapsed >= self.latency.stopping_to_stopped:
            self._set_state(sim, "stopped", now)
        if (
            sim.role == "replacement"
            and sim.state == RUNNING
            and not sim.gate_started
            and elapsed >= self.latency.os_boot
            and sim.az not in self.faults.down_azs | self.silent_gate_azs
        ):
            sim.gate_started = True
            threading.Thread(
                target=self._run_gate, args=(sim,), name=f"boot-gate-{sim.instance_id}", daemon=True
            ).start()
        passing = sim.serving and not sim.hung and sim.az not in self.faults.down_azs | self.unhealthy_azs
        if passing and sim.passing_since is None:
            sim.passing_since = now
        elif not passing:
            sim.passing_since = None

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
        if state != RUNNING:
            sim.workload_up = False
            sim.mounted = False
        moto_bridge.set_instance_state(sim.instance_id, state)
        self.note(f"{sim.instance_id} ({sim.az}) {previous} -> {state}")
        self._publish_ec2_state(sim.instance_id, state)

    def _publish_ec2_state(self, instance_id: str, state: str) -> None:
        detail = {"instance-id": instance_id, "state": state}
        with self.faults.internal():
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

    def _check_invariant(self, now: float) -> None:
        serving = sorted(s.instance_id for s in self.instances.values() if s.serving)
        if len(serving) > 1:
            violation = f"workload started and reachable on {', '.join(serving)}"
            if violation not in self.violations:
                self.violations.append(violation)
                log.error("SAFETY INVARIANT VIOLATED: %s", violation)

    def _track_new(self, instance_id: str) -> None:
        if instance_id in self.instances:
            return  # the primary, seeded before the simulation started
        instance = self._describe(instance_id)
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        sim = SimInstance(
            instance_id,
            instance["Placement"]["AvailabilityZone"],
            int(tags.get("swr:generation", "0")),
            "replacement" if "swr:execution" in tags else "primary",
            "pending",
            self.clock.now(),
        )
        with self._lock:
            self.instances[instance_id] = sim
        self.note(f"{instance_id} launched in {sim.az} (generation {sim.generation})")

    def _az_of(self, instance_id: str) -> str:
        return str(self._describe(instance_id)["Placement"]["AvailabilityZone"])

    def _describe(self, instance_id: str) -> dict[str, Any]:
        with self.faults.internal():
            reservations = self.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
        return dict(reservations[0]["Instances"][0])
