"""How long things take on AWS, in simulated seconds. Defaults are typical figures, not
promises: EC2 launch-to-running 30-60 s, an OS boot before systemd starts the boot gate,
NLB health checks every 10 s with a healthy threshold of 3, status checks each minute."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyProfile:
    pending_to_running: float = 40.0
    os_boot: float = 35.0  # running -> boot gate starts (systemd, before RMS)
    efs_mount: float = 2.0
    workload_start: float = 20.0  # RMS brings the userApplication Online
    shutting_down_to_terminated: float = 45.0
    # EC2 troubleshooting guide, "Delayed instance termination": an instance can stay shutting-down
    # longer than a few minutes when "there's a problem with the underlying host computer", and is
    # forcibly terminated "after several hours". A hung host's instance takes the first; one the
    # slow-shutdown scenario leaves stuck, the second (short of hours, so a run can watch it end).
    delayed_termination: float = 180.0
    stuck_termination: float = 1200.0
    stopping_to_stopped: float = 30.0
    # EFS DeleteMountTarget returns while the mount target is "deleting"; gone some seconds later.
    mount_target_deletion: float = 20.0
    health_check_interval: float = 10.0
    healthy_threshold: int = 3
    unhealthy_threshold: int = 3
    status_check_detection: float = 60.0  # failed status check -> alarm (period 60 s, 1 datapoint)
    heartbeat_detection: float = 60.0  # heartbeat missing -> alarm
    rms_fault_report: float = 1.0  # RMS notices the fault and runs the notifier
    # A Lambda step with its API calls (warm start, a few EC2/ELB/DynamoDB calls). The clock
    # stands still while the emulator runs the step and charges this instead.
    step_invocation: float = 1.0

    @property
    def time_to_healthy(self) -> float:
        return self.health_check_interval * self.healthy_threshold

    @property
    def time_to_unhealthy(self) -> float:
        return self.health_check_interval * self.unhealthy_threshold
