"""Elastic Load Balancing: target health comes from the simulation (patch 8), and deregistered
targets drain for the target group's deregistration delay (patch 28)."""

from __future__ import annotations

from typing import Any, cast

from swr.emulator.moto_bridge._state import _hooks, _Patches, _require
from swr.emulator.moto_bridge.timing import _sim_time

# A read-only view for the simulation's tick (see ec2.security_groups_by_instance).


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
