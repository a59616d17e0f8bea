"""A seeded fault campaign: one plan per seed (a scenario, API errors, Lambda crashes, capacity,
AZs down, duplicate and concurrent triggers, stop and resume, faults on the replacement), run
in virtual time, then judged from the emulator's backends and simulated world, not from swr's
own summary.

A seed is a plan and, in virtual time, a replay: ``python bench/campaign.py --seed N`` runs the
same plan to the same histories.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from handlers.core import step_names
from handlers.core.record import AppState
from swr.emulator import scenarios
from swr.emulator.emulator import FAULTABLE_ACTIONS, PRE_FAULT_RECORDS, Emulator
from swr.emulator.faults import NO_CAPACITY, SERVER_ERROR, THROTTLING
from swr.emulator.world import AZS

log = logging.getLogger("swr-campaign")

FAULT_BANDS = (0.0, 0.05, 0.10, 0.20, 0.30)
LAMBDA_STEPS = ("Admit", "CutOffInstances", "ConfirmFence", "LaunchReplacement", "CheckReplacement", "RegisterTargets")
REPLACEMENT_FAULTS = ("unhealthy", "efs-unreachable", "silent-gate")
SETTLE_LIMIT = 4 * 3600.0  # simulated seconds a seed may take before it counts as stuck
DETECTION_LIMIT = 900.0  # the slowest detection (alarms) is about a minute
QUIET_FOR = 600.0  # no execution running or started for this long: what follows is the end state
LIVE = ("pending", "running", "stopping", "shutting-down")


@dataclass(frozen=True)
class Plan:
    seed: int
    scenario: str
    fault_rate: float  # API errors on the chosen actions (throttling, a 5xx at half the rate)
    faulted_actions: tuple[tuple[str, str], ...]
    lambda_crashes: tuple[str, int] | None  # (step, how many invocations of its function fail)
    replacement_fault: tuple[str, str] | None  # (fault, AZ): replacements there are broken
    no_capacity_az: str | None
    az_down: tuple[str, float] | None  # (AZ, simulated seconds after the fault)
    duplicates: int  # the fault's trigger delivered again
    concurrent_drill_after: float | None
    stop_and_resume: tuple[float, float] | None  # (stop after, resume that much later)

    @classmethod
    def from_seed(cls, seed: int) -> Plan:
        pick = random.Random(seed)
        scenario = pick.choice(scenarios.NAMES)
        home = "ap-northeast-1a"  # where the world puts the application
        others = [az for az in AZS if az != home]
        rate = pick.choice(FAULT_BANDS)
        actions = tuple(sorted(pick.sample(FAULTABLE_ACTIONS, pick.randint(1, len(FAULTABLE_ACTIONS)))))
        return cls(
            seed=seed,
            scenario=scenario,
            fault_rate=rate,
            faulted_actions=actions if rate else (),
            # Up to 8 failed invokes in a row: past the ASL's 6 retries now and then.
            lambda_crashes=(pick.choice(LAMBDA_STEPS), pick.randint(1, 8)) if pick.random() < 0.2 else None,
            replacement_fault=(pick.choice(REPLACEMENT_FAULTS), pick.choice(others)) if pick.random() < 0.2 else None,
            no_capacity_az=pick.choice(others) if pick.random() < 0.15 else None,
            az_down=(pick.choice(others), round(pick.uniform(0, 300))) if pick.random() < 0.1 else None,
            duplicates=pick.choice((0, 0, 0, 1, 3)),
            concurrent_drill_after=round(pick.uniform(0, 200)) if pick.random() < 0.15 else None,
            stop_and_resume=(round(pick.uniform(20, 200)), round(pick.uniform(10, 900)))
            if pick.random() < 0.15
            else None,
        )

    def describe(self) -> str:
        parts = [self.scenario, f"api errors {self.fault_rate:.0%}"]
        if self.faulted_actions:
            parts.append("on " + ",".join(a for _, a in self.faulted_actions))
        if self.lambda_crashes:
            parts.append(f"{self.lambda_crashes[0]} crashes x{self.lambda_crashes[1]}")
        if self.replacement_fault:
            parts.append(f"replacements in {self.replacement_fault[1]} {self.replacement_fault[0]}")
        if self.no_capacity_az:
            parts.append(f"no capacity in {self.no_capacity_az}")
        if self.az_down:
            parts.append(f"{self.az_down[0]} down at +{self.az_down[1]:.0f}s")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate trigger(s)")
        if self.concurrent_drill_after is not None:
            parts.append(f"drill at +{self.concurrent_drill_after:.0f}s")
        if self.stop_and_resume:
            parts.append(f"stopped at +{self.stop_and_resume[0]:.0f}s, resumed {self.stop_and_resume[1]:.0f}s later")
        return "; ".join(parts)

    @property
    def recoverable(self) -> bool:
        """An AZ is left where a replacement can run, and the old instance's AZ answers (in
        az-api-down nothing can prove it cut off: failing closed is the right end)."""
        home = "ap-northeast-1a"
        broken = {self.no_capacity_az, self.az_down[0] if self.az_down else None}
        broken.add(self.replacement_fault[1] if self.replacement_fault else None)
        return self.scenario != "az-api-down" and bool(set(AZS) - {home} - broken)

    @property
    def band(self) -> str:
        return f"{self.fault_rate:.0%}" + (" +lambda" if self.lambda_crashes else "")


@dataclass
class SeedResult:
    seed: int
    plan: str
    scenario: str
    band: str
    recoverable: bool = True
    outcomes: list[str] = field(default_factory=list)  # per admitted failover: recovered / failed-closed
    errors: list[str] = field(default_factory=list)  # each failed-closed failover: error: cause
    violations: list[str] = field(default_factory=list)
    histories: dict[str, list[str]] = field(default_factory=dict)  # execution -> its events, for replays

    @property
    def outcome(self) -> str:
        if self.violations:
            return "VIOLATION"
        admitted = [o for o in self.outcomes if o != "not admitted"]
        return admitted[-1] if admitted else self.outcomes[-1] if self.outcomes else "no failover"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"outcome": self.outcome}


def replay_command(seed: int) -> str:
    return f"python bench/campaign.py --seed {seed} --verbose"


def run_seed(seed: int, histories: bool = True) -> SeedResult:
    """Run one seed's plan and judge it; ``histories=False`` skips keeping the execution
    histories (only a replay reads them)."""
    plan = Plan.from_seed(seed)
    result = SeedResult(seed, plan.describe(), plan.scenario, plan.band, plan.recoverable)
    try:
        _run(seed, plan, result, histories)
    except Exception as error:  # a broken run is a finding with its replay command, not the end of the campaign
        result.violations.append(f"the run raised {type(error).__name__}: {str(error)[:300]}")
    return result


def _run(seed: int, plan: Plan, result: SeedResult, histories: bool) -> None:
    with Emulator.for_scenario(plan.scenario, seed=seed) as emu:
        mailbox = _subscribe_mailbox(emu)
        triggers = _Triggers(emu)
        _arm(emu, plan, triggers)
        with emu.faults.internal():  # the harness's own reads (the current instance) are not swr's
            emu.inject(plan.scenario)
        _drive(emu, plan, triggers)
        if not emu.wait_until(lambda: bool(emu.executions()), DETECTION_LIMIT, poll=5.0):
            result.violations.append(f"the fault started no execution within {DETECTION_LIMIT:.0f} s")
        try:
            emu.wait_until_settled(SETTLE_LIMIT, quiet_for=QUIET_FOR, poll=30.0)
        except TimeoutError:
            result.violations.append(f"not settled {SETTLE_LIMIT:.0f} s after the fault: executions still run")
        with emu.faults.internal():
            _judge(emu, plan, result, _drain(emu, mailbox))
        if histories:
            result.histories = _histories(emu)


# --- arming the plan -------------------------------------------------------------------------
class _Triggers:
    """Triggers the campaign sends itself (beyond the scenario's), to account for each."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.sent: list[str] = []


def _arm(emu: Emulator, plan: Plan, triggers: _Triggers) -> None:
    faults = emu.faults
    for service, action in plan.faulted_actions:
        faults.add(service, action, THROTTLING, rate=plan.fault_rate)
        faults.add(service, action, SERVER_ERROR, rate=plan.fault_rate / 2)
    if plan.lambda_crashes is not None:
        step, count = plan.lambda_crashes
        faults.add(
            "lambda",
            "Invoke",
            ("ServiceException", "The Lambda service encountered an internal error.", 500),
            count=count,
            where=_function_of_step(emu, step),
        )
    if plan.no_capacity_az is not None:
        subnet = emu.world.subnets[plan.no_capacity_az]  # type: ignore[union-attr]
        faults.add("ec2", "RunInstances", NO_CAPACITY, where=lambda params: params.get("SubnetId") == subnet)
    if plan.replacement_fault is not None:
        fault, az = plan.replacement_fault
        broken = {
            "unhealthy": emu.sim.unhealthy_azs,
            "efs-unreachable": emu.sim.efs_unreachable_azs,
            "silent-gate": emu.sim.silent_gate_azs,
        }[fault]
        broken.add(az)
    if plan.az_down is not None:
        az, after = plan.az_down
        emu.sim.after(after, lambda: _az_down(emu, az))


def _function_of_step(emu: Emulator, step: str) -> Callable[[dict[str, Any]], bool]:
    # The template names each function after its step: CutOffInstances -> swr-cut-off-instances.
    name = "-" + step_names.BY_NAME[step].deployed_name

    def matches(params: dict[str, Any]) -> bool:
        return str(params.get("FunctionName", "")).endswith(name)

    return matches


def _az_down(emu: Emulator, az: str) -> None:
    emu.faults.down_azs.add(az)
    emu.sim.note(f"campaign: AZ {az} goes down")
    for instance in list(emu.sim.instances.values()):
        if instance.az == az and instance.state in ("pending", "running"):
            emu.sim.hang(instance, "its AZ is down")
            instance.shutdown_seconds = emu.latency.delayed_termination


def _drive(emu: Emulator, plan: Plan, triggers: _Triggers) -> None:
    """What happens after the fault, in the order the plan has it."""
    moments: list[tuple[float, str]] = []
    for n in range(plan.duplicates):
        moments.append((5.0 + 20.0 * n, "duplicate"))
    if plan.concurrent_drill_after is not None:
        moments.append((plan.concurrent_drill_after, "drill"))
    if plan.stop_and_resume is not None:
        stop_at, later = plan.stop_and_resume
        moments += [(stop_at, "stop"), (stop_at + later, "resume")]
    start = emu.clock.now()
    stopped: str | None = None
    for at, what in sorted(moments):
        emu.sleep(max(0.0, start + at - emu.clock.now()))
        with emu.faults.internal():
            if what == "duplicate":
                _redeliver_first_trigger(emu, triggers)
            elif what == "drill":
                triggers.sent.append(_start(emu, {"kind": "drill", "app": emu.app, "reason": "campaign drill"}))
            elif what == "stop":
                stopped = _stop_running_failover(emu)
            elif what == "resume" and stopped is not None:
                _resume(emu)


def _start(emu: Emulator, payload: dict[str, Any]) -> str:
    sfn = emu.boto3_client("stepfunctions")
    name = f"campaign-{len(emu.executions()) + 1}"
    return str(
        sfn.start_execution(stateMachineArn=emu.state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    )


def _redeliver_first_trigger(emu: Emulator, triggers: _Triggers) -> None:
    """EventBridge delivers at least once: the first execution's input, started again."""
    sfn = emu.boto3_client("stepfunctions")
    executions = sorted(emu.executions(), key=lambda e: e["startDate"])
    if not executions:
        return
    first = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    triggers.sent.append(_start(emu, json.loads(first["input"])))


def _stop_running_failover(emu: Emulator) -> str | None:
    record = emu.store.get(emu.app)
    if record is None or record.lease is None:
        return None
    sfn = emu.boto3_client("stepfunctions")
    if sfn.describe_execution(executionArn=record.lease.holder)["status"] != "RUNNING":
        return None
    sfn.stop_execution(executionArn=record.lease.holder, error="Campaign.Stopped", cause="the campaign stopped it")
    emu.sim.note(f"campaign: stopped {record.lease.holder.rsplit(':', 1)[-1]}")
    return record.lease.holder


def _resume(emu: Emulator) -> None:
    from swr.ops import resume

    assert emu.stack is not None
    try:
        moment = datetime.fromtimestamp(emu.clock.now(), tz=UTC)
        done = resume.resume(emu.boto3_client, emu.stack, emu.app, "campaign", now=lambda: moment)
        emu.sim.note(f"campaign: resume by {done.how}: {done.note}")
    except Exception as error:  # an operator would read the refusal; the checks judge the world
        emu.sim.note(f"campaign: resume refused: {error}")


# --- judging -----------------------------------------------------------------------------------
def _subscribe_mailbox(emu: Emulator) -> str:
    """A queue subscribed to the stack's notification topic: what the on-call people get."""
    sns, sqs = emu.boto3_client("sns"), emu.boto3_client("sqs")
    (target,) = emu.boto3_client("events").list_targets_by_rule(Rule="swr-notify-started")["Targets"]
    url = str(sqs.create_queue(QueueName="campaign-mailbox")["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=target["Arn"], Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return url


def _drain(emu: Emulator, url: str) -> list[str]:
    sqs = emu.boto3_client("sqs")
    found: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(str(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _judge(emu: Emulator, plan: Plan, result: SeedResult, mail: list[str]) -> None:
    sfn, ec2 = emu.boto3_client("stepfunctions"), emu.boto3_client("ec2")
    violations = result.violations
    violations += [f"safety: {v}" for v in emu.sim.violations]
    record = emu.store.require(emu.app)
    # The on-call text of a Failover Failed (or Trigger Not Admitted) event names the execution.
    failed_mail, not_admitted_mail = _told(mail, " FAILED"), _told(mail, " NOT ADMITTED")
    kept = _dead_letter_executions(emu)
    unadmitted_kept = False  # a trigger no execution could admit waits in the DLQ, on-call told

    # Each admitted failover ends recovered, or FAILED with a cause and a Failed event.
    for execution in sorted(emu.executions(), key=lambda e: e["startDate"]):
        arn = execution["executionArn"]
        described = sfn.describe_execution(executionArn=arn)
        name = execution["name"]
        if described["status"] == "RUNNING":
            continue  # already reported as not settled
        admitted = emu._is_failover(arn)
        if not admitted:
            if described["status"] == "SUCCEEDED":
                continue  # decided: ignored or deferred, with its reason in the output
            result.outcomes.append("not admitted")
            unadmitted_kept |= arn in kept and arn in not_admitted_mail
            if arn not in kept or arn not in not_admitted_mail:
                violations.append(
                    f"trigger lost: {name} ended {described['status']} before admission"
                    f" ({described.get('error')}: {str(described.get('cause'))[:200]})"
                    + ("" if arn in kept else "; not in the dead-letter queue")
                    + ("" if arn in not_admitted_mail else "; on-call not told")
                )
            continue
        if described["status"] == "SUCCEEDED":
            result.outcomes.append("recovered")
        elif described["status"] == "ABORTED":
            result.outcomes.append("stopped")
        else:
            result.outcomes.append("failed-closed")
            result.errors.append(f"{name}: {described.get('error')}: {str(described.get('cause'))[:300]}")
            if not described.get("error") or not described.get("cause"):
                violations.append(f"{name} ended {described['status']} without an error and a cause")
            if arn not in failed_mail:
                violations.append(f"{name} ended {described['status']} ({described.get('error')}) with no Failed event")

    # No lease held at the end; the record matches the world.
    if record.lease is not None:
        violations.append(f"lease still held by {record.lease.holder.rsplit(':', 1)[-1]} ({record.state.value})")
    reservations = ec2.describe_instances()["Reservations"]
    instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    live = {i: d for i, d in instances.items() if d["State"]["Name"] in LIVE}
    current = instances.get(record.current_instance_id)
    if record.state is AppState.NORMAL:
        if current is None or current["State"]["Name"] != "running":
            state = current["State"]["Name"] if current else "gone"
            violations.append(f"record NORMAL on {record.current_instance_id}, which is {state}")
        elif record.current_instance_id not in emu.serving_instances() and not unadmitted_kept:
            # (With the trigger not admitted, kept and announced, the workload stays down by
            # design until an operator acts: swr never took the application over.)
            violations.append(f"record NORMAL on {record.current_instance_id}, whose workload does not serve")
    # No instance left running that no record names, unless the outcome reports it as a leftover.
    named = {record.current_instance_id} | {f.instance_id for f in record.fences}
    for instance_id, described_instance in live.items():
        if instance_id in named:
            continue
        sim = emu.sim.instances.get(instance_id)
        if sim is not None and sim.serving:
            violations.append(f"{instance_id} serves the workload and no record names it")
        elif described_instance["State"]["Name"] == "running":
            violations.append(f"{instance_id} left running and no record names it")
    # At most one replacement per launch attempt of a failover (a retried or duplicated step
    # never launches a second), and at most one replacement alive per failover at the end.
    launches: dict[tuple[str, str], list[str]] = {}
    alive: dict[str, list[str]] = {}
    for instance_id, described_instance in instances.items():
        tags = {t["Key"]: t["Value"] for t in described_instance.get("Tags", [])}
        if "swr:execution" not in tags:
            continue
        launches.setdefault((tags["swr:execution"], tags.get("swr:attempt", "?")), []).append(instance_id)
        if instance_id in live:
            alive.setdefault(tags["swr:execution"], []).append(instance_id)
    for (execution_name, attempt), launched in sorted(launches.items()):
        if len(launched) > 1:
            violations.append(f"{execution_name} attempt {attempt} launched {len(launched)}: {', '.join(launched)}")
    # A fenced instance EC2 never powered off is allowed only as a reported leftover.
    reported = {text.split(" ", 1)[0] for summary in record.history for text in summary.leftovers}
    for execution_name, running in sorted(alive.items()):
        running = [i for i in running if i not in reported]
        if len(running) > 1:
            violations.append(f"{execution_name} left {len(running)} replacements alive: {', '.join(running)}")
    # At most one instance serving; the data written before the fault is there after it.
    serving = emu.serving_instances()
    if len(serving) > 1:
        violations.append(f"{len(serving)} instances serve: {', '.join(serving)}")
    if record.state is AppState.NORMAL and record.current_instance_id != emu.primary_instance_id:
        sim = emu.sim.instances.get(record.current_instance_id)
        if sim is None or sim.seen_records < PRE_FAULT_RECORDS:
            violations.append(f"EFS data written before the fault not seen by {record.current_instance_id}")
    # Every trigger admitted, refused with a reason, or kept in the dead-letter queue: judged
    # per execution above; a trigger that never started an execution is in the queue.
    _judge_dead_letters(emu, violations)


def _told(mail: list[str], headline: str) -> set[str]:
    return {
        line.removeprefix("Execution: ").strip()
        for body in mail
        if headline in body.splitlines()[0]
        for line in body.splitlines()
        if line.startswith("Execution: ")
    }


def _dead_letter_executions(emu: Emulator) -> set[str]:
    """The executions whose triggers the workflow kept in the dead-letter queue (peeked at: the
    messages stay, and their count is judged below)."""
    sqs = emu.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName="swr-trigger-dead-letters")["QueueUrl"]
    found: set[str] = set()
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []):
        try:
            body = json.loads(message["Body"])
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("execution"):
            found.add(str(body["execution"]))
    return found


def _judge_dead_letters(emu: Emulator, violations: list[str]) -> None:
    """What waits in the dead-letter queue has an alarm watching it. (moto evaluates no alarm
    from metrics: that the alarm goes off is AWS's part, checked here as its configuration.)"""
    sqs = emu.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName="swr-trigger-dead-letters")["QueueUrl"]
    depth = int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    if not depth:
        return
    alarms = emu.boto3_client("cloudwatch").describe_alarms(AlarmNamePrefix="ops.swr.trigger-dead-letters")
    watching = [
        a
        for a in alarms["MetricAlarms"]
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and {"Name": "QueueName", "Value": "swr-trigger-dead-letters"} in a.get("Dimensions", [])
    ]
    if not watching:
        violations.append(f"{depth} trigger(s) in the dead-letter queue and no alarm watches it")


def _histories(emu: Emulator) -> dict[str, list[str]]:
    sfn = emu.boto3_client("stepfunctions")
    found: dict[str, list[str]] = {}
    for execution in sorted(emu.executions(), key=lambda e: e["name"]):
        events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        found[execution["name"]] = [
            f"{e['timestamp'].isoformat()} {e['type']} "
            + json.dumps({k: v for k, v in e.items() if k.endswith("EventDetails")}, sort_keys=True, default=str)
            for e in events
        ]
    return found
