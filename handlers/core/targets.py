"""Put the replacement behind the application's target groups and watch its health."""

from __future__ import annotations

from datetime import timedelta

from handlers.core import clock
from handlers.core.aws import api_call, client
from handlers.core.errors import ReplacementUnhealthy
from handlers.core.record import AppRecord
from handlers.core.steps import HealthCheck, Replacement


def register(record: AppRecord, replacement: Replacement) -> HealthCheck:
    elb = client("elbv2")
    for arn in record.target_group_arns:
        with api_call(f"register {replacement.instance_id} in {arn}"):
            elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": replacement.instance_id}])
    now = clock.now()
    return HealthCheck(
        instance_id=replacement.instance_id,
        target_group_arns=list(record.target_group_arns),
        registered_at=now,
        deadline=now + timedelta(seconds=record.health_timeout_seconds),
    )


def check(health: HealthCheck) -> HealthCheck:
    elb = client("elbv2")
    states: dict[str, str] = {}
    reasons: list[str] = []
    for arn in health.target_group_arns:
        with api_call(f"read target health in {arn}"):
            found = elb.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": health.instance_id}])
        description = (found.get("TargetHealthDescriptions") or [{}])[0].get("TargetHealth", {})
        states[arn] = str(description.get("State", "unknown"))
        if states[arn] != "healthy":
            reasons.append(f"{arn.rsplit('/', 2)[-2]}: {states[arn]} ({description.get('Description', '')})")
    healthy = all(state == "healthy" for state in states.values())
    now = clock.now()
    if not healthy and now > health.deadline:
        waited = int((now - health.registered_at).total_seconds())
        raise ReplacementUnhealthy(
            f"{health.instance_id} not healthy {waited} s after registration: {'; '.join(reasons)}"
        )
    return health.model_copy(
        update={
            "healthy": healthy,
            "healthy_at": health.healthy_at or (now if healthy else None),
            "target_states": states,
            "checks": health.checks + 1,
        }
    )
