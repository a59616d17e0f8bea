"""The clients' path to the fenced instance: the application's target groups.

ELB guides, "Deregistration delay": a deregistering target gets no new connections and is
"draining" until the delay (deregistration_delay.timeout_seconds, default 300 s) has passed,
then "unused". An Application Load Balancer has then completed the deregistration and sends it
nothing more. A Network Load Balancer closes the connections left only when the target group's
deregistration_delay.connection_termination.enabled is true ("Indicates whether the load
balancer terminates connections at the end of the deregistration timeout"; false by default for
TCP and TLS, ELB API reference, TargetGroupAttribute); otherwise, NLB guide: "If the
deregistered target stays healthy and an existing connection is not idle, the load balancer can
continue to send traffic to the target". Network ACLs are no help on this path: an NLB node may
share the target's subnet, and with client IP preservation its packets carry clients' addresses.
"""

from __future__ import annotations

from typing import NamedTuple

from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client, error_code

APPLICATION_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
CONNECTION_TERMINATION = "deregistration_delay.connection_termination.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
OUT = frozenset({"unused", "draining"})


def name_of(arn: str) -> str:
    return arn.rsplit("/", 2)[-2]


def health_state(instance_id: str, arn: str) -> str:
    """The instance's target state in the group; "unused" when it is not a target of it."""
    with api_call(f"read health of {instance_id} in {name_of(arn)}"):
        try:
            found = client("elbv2").describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
        except ClientError as error:
            if error_code(error) == "InvalidTarget":
                return "unused"
            raise
    descriptions = found.get("TargetHealthDescriptions") or [{}]
    return str(descriptions[0].get("TargetHealth", {}).get("State", "unused"))


def serving_in(instance_id: str, arns: list[str]) -> list[str]:
    """The target groups through which clients may hold connections to the instance now."""
    return [arn for arn in arns if health_state(instance_id, arn) != "unused"]


def deregister(instance_id: str, arns: list[str]) -> None:
    elb = client("elbv2")
    for arn in arns:
        with api_call(f"deregister {instance_id} from {name_of(arn)}"):
            try:
                elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
            except ClientError as error:
                if error_code(error) != "InvalidTarget":
                    raise


class ClientsPath(NamedTuple):
    cut: bool
    how: str
    settling: bool = False  # the load balancer is completing the cut (draining): only time is needed


def clients_cut(instance_id: str, arn: str) -> ClientsPath:
    """Whether the clients' connections to the instance through ``arn`` are over, and why."""
    name = name_of(arn)
    state = health_state(instance_id, arn)
    elb = client("elbv2")
    with api_call(f"read the attributes of {name}"):
        attributes = {
            a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        }
    delay = attributes.get(DEREGISTRATION_DELAY, "300")
    if state == "draining":
        how = f"draining from {name}: clients' connections may go on until its {delay} s delay ends"
        return ClientsPath(False, how, settling=True)
    if state not in OUT:
        return ClientsPath(False, f"still a target of {name} ({state})")
    with api_call(f"read target group {name}"):
        protocol = str(elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0].get("Protocol", ""))
    if protocol in APPLICATION_PROTOCOLS:
        return ClientsPath(True, f"deregistered from {name}: the load balancer completed it and sends it nothing more")
    if str(attributes.get(CONNECTION_TERMINATION, "false")).lower() == "true":
        return ClientsPath(
            True, f"deregistered from {name}, which closed its connections when the {delay} s delay ended"
        )
    return ClientsPath(
        False,
        f"deregistered from {name}, but its Network Load Balancer keeps the established connections of a"
        f" deregistered target ({CONNECTION_TERMINATION} is false)",
    )
