"""Fault injection: API errors at a configurable rate, whole-AZ outages, and AZs whose API
does not answer."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from swr.emulator import moto_bridge
from swr.emulator.moto_bridge import ApiFault

_internal = threading.local()

THROTTLING = ("RequestLimitExceeded", "Request limit exceeded.", 400)
SERVER_ERROR = ("ServiceUnavailable", "The service is unavailable. Please try again shortly.", 503)
AZ_NOT_ANSWERING = ("Unavailable", "The service is unavailable. Please try again shortly.", 503)
# The calls that act on one AZ's resources, and the request field naming them. An AZ whose
# control plane does not answer fails these; regional calls (describes, network ACLs, ELB,
# DynamoDB) still answer.
AZ_SCOPED_CALLS: dict[tuple[str, str], str] = {
    ("ec2", "TerminateInstances"): "InstanceIds",
    ("ec2", "StopInstances"): "InstanceIds",
    ("ec2", "ModifyInstanceAttribute"): "InstanceId",
    ("ec2", "CreateTags"): "Resources",
    ("ec2", "ModifyNetworkInterfaceAttribute"): "NetworkInterfaceId",
    ("ec2", "RunInstances"): "SubnetId",
    ("efs", "DeleteMountTarget"): "MountTargetId",
    ("efs", "CreateMountTarget"): "SubnetId",
}
NO_CAPACITY = (
    "InsufficientInstanceCapacity",
    "We currently do not have sufficient capacity in the Availability Zone you requested.",
    500,
)


@dataclass
class ApiFaultRule:
    service: str
    action: str
    code: str
    message: str
    status: int = 400
    rate: float = 1.0
    remaining: int | None = None  # None: for as long as the rule stands
    where: Callable[[dict[str, Any]], bool] | None = None
    hits: int = 0


@dataclass
class FaultPlan:
    seed: int = 7
    rules: list[ApiFaultRule] = field(default_factory=list)
    down_azs: set[str] = field(default_factory=set)
    api_down_azs: set[str] = field(default_factory=set)  # AZs whose resources' API calls fail
    subnet_az: dict[str, str] = field(default_factory=dict)  # filled by the world
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def add(
        self,
        service: str,
        action: str,
        fault: tuple[str, str, int],
        *,
        rate: float = 1.0,
        count: int | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> ApiFaultRule:
        code, message, status = fault
        rule = ApiFaultRule(service, action, code, message, status, rate, count, where)
        with self._lock:
            self.rules.append(rule)
        return rule

    @contextmanager
    def internal(self) -> Iterator[None]:
        """The emulator's own bookkeeping calls are never faulted, nor authorized as a caller."""
        previous = getattr(_internal, "active", False)
        _internal.active = True
        try:
            with moto_bridge.as_emulator():
                yield
        finally:
            _internal.active = previous

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.down_azs.clear()
            self.api_down_azs.clear()

    def fault_for(self, service: str, action: str, params: dict[str, Any]) -> ApiFault | None:
        if getattr(_internal, "active", False):
            return None
        with self._lock:
            unanswered = self._unanswered_az(service, action, params)
            if unanswered is not None:
                code, message, status = AZ_NOT_ANSWERING
                return ApiFault(code, f"{message} ({unanswered} is not answering)", status)
            if service == "ec2" and action == "RunInstances" and self._az_of(params) in self.down_azs:
                code, message, status = NO_CAPACITY
                return ApiFault(code, f"{message} ({self._az_of(params)} is impaired)", status)
            for rule in self.rules:
                if rule.service != service or rule.action != action:
                    continue
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if rule.where is not None and not rule.where(params):
                    continue
                if self._random.random() >= rule.rate:
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                return ApiFault(rule.code, rule.message, rule.status)
        return None

    def _az_of(self, params: dict[str, Any]) -> str | None:
        subnet = params.get("SubnetId")
        return self.subnet_az.get(str(subnet)) if subnet else None

    def _unanswered_az(self, service: str, action: str, params: dict[str, Any]) -> str | None:
        field_name = AZ_SCOPED_CALLS.get((service, action))
        if not self.api_down_azs or field_name is None:
            return None
        named = params.get(field_name)
        for resource in named if isinstance(named, list) else [named]:
            az = moto_bridge.availability_zone_of(str(resource)) if resource else None
            if az in self.api_down_azs:
                return az
        return None
