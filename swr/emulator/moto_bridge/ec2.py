"""EC2 instances: idempotent RunInstances (patch 6), a lifecycle that is not instant (7, 27),
one set of security groups per instance and primary interface (12), and tagged interfaces
(20). Subnets, network ACLs and interfaces' other settings are in network.py."""

from __future__ import annotations

import json
import threading
from typing import Any, cast

from swr.emulator.moto_bridge import _state
from swr.emulator.moto_bridge._state import _hooks, _lock, _Patches, _require, note_backends_changed
from swr.emulator.moto_bridge.faults import _emulator_error

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
        bridge = _state._bridge
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
    note_backends_changed()
    try:
        _set_instance_state(instance_id, state)
    finally:
        note_backends_changed()


def _set_instance_state(instance_id: str, state: str) -> None:
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
