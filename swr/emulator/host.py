"""The boot gate's view of a simulated instance: identity, EFS mount and workload start
happen in the simulation instead of on a Linux machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rms_hooks.host import Identity
from swr.emulator.network import PathKind

if TYPE_CHECKING:
    from swr.emulator.simulation import SimInstance, Simulation


class SimulatedHost:
    def __init__(self, simulation: Simulation, instance: SimInstance) -> None:
        self.simulation = simulation
        self.instance = instance

    def identity(self) -> Identity:
        world = self.simulation.world
        return Identity(
            instance_id=self.instance.instance_id,
            az=self.instance.az,
            region=world.region,
            app_tag=world.app,
            generation=self.instance.generation,
        )

    def mount_efs(self, file_system_id: str, mount_point: str, region: str) -> None:
        self.simulation.sleep(self.simulation.latency.efs_mount)
        self.simulation.mounting(self.instance)  # OSError when no NFS session can be opened
        self.simulation.efs.directory(file_system_id)

    def start_workload(self) -> None:
        self.simulation.sleep(self.simulation.latency.workload_start)
        if not self.instance.live(PathKind.EFS) or self.instance.hung or self.instance.state != "running":
            raise RuntimeError("RMS: userApplication could not come Online (shared data unreachable)")
        world = self.simulation.world
        self.instance.seen_records = len(self.simulation.efs.read(world.file_system_id, "orders.log"))
        self.instance.workload_up = True
        self.simulation.workload_write(
            self.instance, f"generation {self.instance.generation} Online in {self.instance.az}"
        )
        self.simulation.note(
            f"workload Online on {self.instance.instance_id}: found {self.instance.seen_records} records on EFS"
        )

    def self_fence(self, reason: str) -> None:
        self.simulation.note(f"{self.instance.instance_id} fences itself: {reason}")
        self.simulation.self_fence(self.instance)
