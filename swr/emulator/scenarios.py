"""The faults a demo or a test injects, in one place: what each scenario does to the simulated
world, and how the account must be laid out for it.

The first three are the failures swr exists for. The other five are the fence's hard cases:
an old instance that still runs when swr fails it over (hung but alive, slow to shut down,
refusing terminate, sharing its subnet with the EFS mount target, in an AZ whose API does not
answer). Each keeps the old instance's connections as AWS documents them
(swr/emulator/network.py), so that only a fence that cuts them keeps the safety invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swr.emulator.world import WorldOptions

if TYPE_CHECKING:
    from swr.emulator.emulator import Emulator
    from swr.emulator.simulation import SimInstance


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Callable[[Emulator], None]
    world: WorldOptions = field(default_factory=WorldOptions)


def _rms_fault(emu: Emulator) -> None:
    sim, primary = emu.sim, emu.current()
    sim.fault_workload(primary)
    sim.note(f"RMS: userApplication app_demo Faulted on {primary.instance_id}")
    sim.after(emu.latency.rms_fault_report, lambda: emu.report_rms_fault(primary))


def _instance_failure(emu: Emulator) -> None:
    primary = emu.current()
    emu.sim.panic(primary)
    _status_check_alarm(emu)
    _heartbeat_alarm(emu)


def _az_outage(emu: Emulator) -> None:
    primary, sim = emu.current(), emu.sim
    emu.faults.down_azs.add(primary.az)
    sim.note(f"AZ {primary.az} outage: instances there stop answering, launches there fail")
    for instance in list(sim.instances.values()):
        if instance.az == primary.az:
            _hung_host(emu, instance, "its AZ is down")
    _status_check_alarm(emu)
    _heartbeat_alarm(emu)


def _hung_instance(emu: Emulator) -> None:
    _hung_host(emu, emu.current(), "its host misbehaves")
    _status_check_alarm(emu)
    _heartbeat_alarm(emu)


def _slow_shutdown(emu: Emulator) -> None:
    primary = emu.current()
    emu.sim.hang(primary, "RMS half-alive: the application stops answering, the heartbeat stops")
    primary.shutdown_seconds = emu.latency.stuck_termination
    _heartbeat_alarm(emu)


def _terminate_refused(emu: Emulator) -> None:
    primary = emu.current()
    with emu.faults.internal():
        emu.boto3_client("ec2").modify_instance_attribute(
            InstanceId=primary.instance_id, DisableApiTermination={"Value": True}
        )
    emu.sim.note(f"{primary.instance_id} has termination protection on")
    emu.sim.hang(primary, "the application hangs, the heartbeat stops")
    _heartbeat_alarm(emu)


def _az_api_down(emu: Emulator) -> None:
    primary = emu.current()
    emu.faults.api_down_azs.add(primary.az)
    emu.sim.note(f"AZ {primary.az}: the EC2 and EFS APIs stop answering for its resources")
    emu.sim.freeze_network_acls(primary.az)
    emu.sim.hang(primary, "a gray failure of its AZ: the application hangs, the instance stays on the network")
    _heartbeat_alarm(emu)


def _hung_host(emu: Emulator, instance: SimInstance, why: str) -> None:
    emu.sim.hang(instance, why)
    instance.shutdown_seconds = emu.latency.delayed_termination


def _status_check_alarm(emu: Emulator) -> None:
    emu.sim.after(
        emu.latency.status_check_detection,
        lambda: emu.sim.set_alarm(
            emu.alarm("StatusCheckFailed_Instance"), "ALARM", "Threshold Crossed: 1 datapoint [1.0] >= 1.0"
        ),
    )


def _heartbeat_alarm(emu: Emulator) -> None:
    from swr.ops import onboarding

    emu.sim.after(
        emu.latency.heartbeat_detection + 5,
        lambda: emu.sim.set_alarm(
            emu.alarm(onboarding.HEARTBEAT_ALARM_SUFFIX), "ALARM", "Threshold Crossed: no datapoints were received"
        ),
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("rms-fault", "RMS reports the application Faulted", _rms_fault),
        Scenario("instance-failure", "kernel panic: status checks fail, the heartbeat stops", _instance_failure),
        Scenario("az-outage", "the instance's AZ goes down: its instances stop answering", _az_outage),
        Scenario(
            "hung-instance",
            "the instance hangs but stays on the network; EC2 takes minutes to terminate it",
            _hung_instance,
        ),
        Scenario(
            "slow-shutdown",
            "the application hangs; termination stays shutting-down for twenty minutes",
            _slow_shutdown,
        ),
        Scenario("terminate-refused", "the application hangs; termination protection is on", _terminate_refused),
        Scenario(
            "shared-subnet",
            "as hung-instance, with the EFS mount target in the instance's own subnet",
            _hung_instance,
            WorldOptions(mount_targets_in_app_subnets=True),
        ),
        Scenario(
            "az-api-down",
            "the instance's AZ stops answering API calls; the application hangs, the instance runs on",
            _az_api_down,
        ),
    )
}
NAMES = tuple(SCENARIOS)
FAILURES = NAMES[:3]  # what swr exists for; the demo's three
FENCE_CASES = NAMES[3:]  # the old instance still runs


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(NAMES)}")
    return SCENARIOS[name]
