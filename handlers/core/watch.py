"""The two EC2 state-change rules follow the record, so that EC2 events start work only for the
instances swr cares about:

- the instance watch (a state-change trigger of the workflow) matches the current instance
  while nobody fails it over: an unrelated instance that stops starts nothing, and neither does
  swr's own terminate of the instance it replaces (a failover holds the lease by then, and the
  watch is off until the failover names the next current instance);
- the fence release (the ReleaseFences function, invoked directly, no execution) matches the
  instances whose fences still hold something, when EC2 reports them terminated or stopped.

Both are rewritten whole with PutRule: "If you are updating an existing rule, the rule is
replaced with what you specify ... If you omit arguments in PutRule, the old values for those
arguments are not kept" (EventBridge API Reference, PutRule), so every call names the pattern,
state and description. A rule with no instance to match is DISABLED (a pattern cannot list
nothing). Following is best effort: a step that cannot rewrite a rule says so in its log and
goes on (the failover matters more), and `swr status` shows a watch that does not follow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client
from handlers.core.errors import AwsThrottled, AwsUnavailable
from handlers.core.record import AppRecord, AppState
from handlers.core.settings import get_settings
from handlers.core.triggers import EC2_DETAIL_TYPE, EC2_FAULT_STATES

logger = logging.getLogger(__name__)

EC2_SOURCE = "aws.ec2"
FAULT_STATES = tuple(sorted(EC2_FAULT_STATES))
RELEASE_STATES = ("stopped", "terminated")  # a fence's deny entries go with the terminated instance
# A DISABLED rule still needs a pattern; this one names no instance EC2 can have.
NO_INSTANCE = "i-none"


@dataclass(frozen=True)
class Rules:
    """The names of a deployment's two rules ("" where it has none)."""

    instance_watch: str = ""
    fence_release: str = ""


@dataclass(frozen=True)
class Watch:
    """What one rule should match: these instances in these states (none: the rule is off)."""

    rule: str
    instance_ids: tuple[str, ...]
    states: tuple[str, ...]
    description: str

    def pattern(self) -> dict[str, object]:
        return {
            "source": [EC2_SOURCE],
            "detail-type": [EC2_DETAIL_TYPE],
            "detail": {"instance-id": list(self.instance_ids or (NO_INSTANCE,)), "state": list(self.states)},
        }

    @property
    def state(self) -> str:
        return "ENABLED" if self.instance_ids else "DISABLED"


def instance_watch(record: AppRecord, rule: str) -> Watch:
    # NORMAL only: while a failover holds the lease its own terminate must start nothing, and a
    # FAILED application waits for an operator (Admit would refuse every trigger).
    normal = record.state is AppState.NORMAL and record.lease is None and bool(record.current_instance_id)
    watched = (record.current_instance_id,) if normal else ()
    why = f"the current instance of {record.app}" if watched else f"no instance of {record.app} ({record.state})"
    return Watch(rule, watched, FAULT_STATES, f"swr: an instance state change of {why}")


def fence_release(record: AppRecord, rule: str) -> Watch:
    held = tuple(sorted(f.instance_id for f in record.fences if f.holds_anything))
    return Watch(rule, held, RELEASE_STATES, f"swr: release the fences of {record.app} once their instances are off")


def watches(record: AppRecord, rules: Rules | None = None) -> list[Watch]:
    """The rules of this deployment (by default those named in the functions' environment), as
    the record wants them."""
    if rules is None:
        settings = get_settings()
        rules = Rules(settings.instance_watch_rule, settings.fence_release_rule)
    wanted = []
    if rules.instance_watch:
        wanted.append(instance_watch(record, rules.instance_watch))
    if rules.fence_release:
        wanted.append(fence_release(record, rules.fence_release))
    return wanted


def follow(record: AppRecord, rules: Rules | None = None, events: Any = None) -> list[str]:
    """Point the rules at what the record names now (with the step's client, or ``events``);
    what could not be done, as sentences."""
    problems = []
    for watch in watches(record, rules):
        try:
            put(watch, events or client("events"))
        except (AwsThrottled, AwsUnavailable, ClientError) as error:
            problems.append(f"rule {watch.rule} still matches what it did: {error}")
    for problem in problems:
        logger.warning("watch not followed: %s", problem)
    return problems


def put(watch: Watch, events: Any) -> None:
    with api_call(f"point rule {watch.rule} at {', '.join(watch.instance_ids) or 'nothing'}"):
        events.put_rule(
            Name=watch.rule,
            EventPattern=json.dumps(watch.pattern()),
            State=watch.state,
            Description=watch.description,
            EventBusName="default",  # EC2's events arrive on the default bus only
        )


def watched(pattern: str | None, state: str | None) -> list[str]:
    """The instances a rule matches now, read back from DescribeRule's pattern and state."""
    if state != "ENABLED" or not pattern:
        return []
    ids = json.loads(pattern).get("detail", {}).get("instance-id", [])
    return [str(i) for i in ids if i != NO_INSTANCE]
