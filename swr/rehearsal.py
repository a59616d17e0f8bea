"""A rehearsal of a drill (``swr drill APP --dry-run``): what a failover of APP would do now,
and whether anything in the account would stop it, without changing anything.

It reads the application's record and runs the workflow's own decision code on it
(``handlers.core``: admission's refusal rules, the lease's next generation, launch's ordered
candidates and RunInstances request), then checks with read-only calls what the workflow
needs: the AMI, the AZs, instance type offerings and free addresses, EFS mount targets, the
blackhole security group, the target groups, the old instance, and what each step's own IAM
role may do (IAM SimulatePrincipalPolicy with the actions, resources and condition keys the
step's calls carry). No lease is taken, no trigger remembered, nothing launched or tagged.

Like ``swr.onboarding`` it knows nothing of argparse: it takes ``client(service)`` and the
deployed stack's outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from handlers.core import clock, launching, lease
from handlers.core.admission import refusal_of
from handlers.core.aws import error_code
from handlers.core.fence.instances import NOT_FOUND as INSTANCE_NOT_FOUND
from handlers.core.launching import APP_TAG, LAUNCH_APPS_TAG, LaunchCandidate
from handlers.core.record import AppRecord, AppState
from handlers.core.record_store import RecordStore
from handlers.core.settings import Settings
from handlers.core.steps import Decision, FailoverPlan
from handlers.core.triggers import EC2_DETAIL_TYPE, TriggerKind, parse_trigger
from swr import fence_topology
from swr.stack import StackOutputs

Client = Callable[[str], Any]

IMAGE_NOT_FOUND = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"})
GROUP_NOT_FOUND = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.Malformed"})
TARGET_GROUP_NOT_FOUND = frozenset({"TargetGroupNotFound", "ValidationError"})
FILE_SYSTEM_NOT_FOUND = frozenset({"FileSystemNotFound", "ValidationException", "BadRequest"})
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


class NotRegistered(Exception):
    """The application has no record: there is nothing to rehearse."""


# --- what a rehearsal reports ----------------------------------------------------------------
class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"  # worth knowing; a real drill would still proceed
    PROBLEM = "problem"  # a real drill would fail or be refused


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    detail: str


class AdmitVerdict(BaseModel):
    """What Admit would decide for a drill started now."""

    decision: Decision
    reason: str
    force: bool

    @property
    def proceeds(self) -> bool:
        return self.decision is Decision.PROCEED


class Candidate(BaseModel):
    """One choice launch would try, with what the account says about it."""

    az: str
    instance_type: str
    subnet_id: str
    usable: bool
    note: str = ""


class Rehearsal(BaseModel):
    app: str
    force: bool
    admit: AdmitVerdict
    admit_with_force: AdmitVerdict | None  # only when the drill asked without --force is refused
    state: AppState
    generation: int  # the replacement's
    old_instance_id: str
    old_az: str
    old_instance_state: str
    network_interfaces: list[str]
    blackhole_security_group_id: str
    target_group_arns: list[str]
    registered_in: list[str]  # target groups the old instance is in now
    image_id: str
    candidates: list[Candidate]
    run_request: dict[str, Any]  # RunInstances for the first usable candidate (the first one if none is)
    efs_file_system_id: str
    efs_mount_targets: dict[str, str]  # az -> mount target id
    shared_subnet_mount_targets: list[str]  # mount targets in the old instance's subnet
    fence_timeout_seconds: int
    alarm_names: list[str]
    checks: list[Check]

    @property
    def first_choice(self) -> Candidate | None:
        return next((c for c in self.candidates if c.usable), None)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.PROBLEM]

    @property
    def would_proceed(self) -> bool:
        """A real drill would be admitted and nothing found stands in its way."""
        return self.admit.proceeds and not self.problems

    def _shared_subnet_step(self) -> str:
        shared = ", ".join(self.shared_subnet_mount_targets)
        return f"; delete mount target {shared} (it shares the instance's subnet)" if shared else ""

    def steps(self) -> list[str]:
        """What would happen, in the workflow's order, one line each."""
        if not self.admit.proceeds:
            lines = [f"Admit would turn the drill away ({self.admit.decision}): {self.admit.reason}"]
            if self.admit_with_force is not None:
                verdict = self.admit_with_force
                lines.append(
                    "with --force it would proceed"
                    if verdict.proceeds
                    else f"--force would not help ({verdict.decision}): {verdict.reason}"
                )
            return lines
        groups = ", ".join(self.target_group_arns)
        interfaces = ", ".join(self.network_interfaces) or "none found"
        first = self.first_choice
        later = [c for c in self.candidates if c is not first]
        launch = (
            f"Launch a {first.instance_type} in {first.az} (subnet {first.subnet_id}) from {self.image_id}"
            f" as generation {self.generation}"
            if first is not None
            else f"Launch: no candidate can launch ({'; '.join(c.note for c in self.candidates) or 'none'})"
        )
        mount = self.efs_mount_targets.get(first.az, "no mount target") if first else "?"
        alarms = ", ".join(self.alarm_names) or "none"
        return [
            f"Admit: take the lease of {self.app} for generation {self.generation} (state {self.state} -> SWITCHING)",
            f"Cut {self.old_instance_id} in {self.old_az} ({self.old_instance_state}) off: deregister it from"
            f" {groups}; deny its addresses in the network ACLs of the mount targets' subnets"
            f"{self._shared_subnet_step()}; network interfaces {interfaces} into blackhole group"
            f" {self.blackhole_security_group_id}; terminate it (a forced stop if terminate is refused)",
            f"Confirm the cut: every path to {self.efs_file_system_id} and the clients cut, or"
            f" {self.old_instance_id} stopped or terminated; otherwise fail closed after"
            f" {self.fence_timeout_seconds} s",
            launch
            + (
                "; then, if that has no capacity: " + ", ".join(f"{c.instance_type} in {c.az}" for c in later)
                if later
                else ""
            ),
            f"Permit the replacement (generation {self.generation}); its boot gate mounts"
            f" {self.efs_file_system_id} through {mount} and starts RMS",
            f"Register it in {groups} and wait until it is healthy",
            f"Finalise: alarms {alarms} to the replacement, record NORMAL, lease released",
        ]


# --- the rehearsal ----------------------------------------------------------------------------
def rehearse(client: Client, stack: StackOutputs, app: str, *, force: bool = False) -> Rehearsal:
    """What ``swr drill APP [--force]`` would do now, and what would stop it. Read-only."""
    record = RecordStore(stack.RecordTableName, client("dynamodb")).get(app)
    if record is None:
        raise NotRegistered(f"application {app!r} has no record in table {stack.RecordTableName}")
    name = "rehearsal-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    execution = stack.StateMachineArn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    admit = _admit(client, record, execution, name, force)
    admit_with_force = None if force or admit.proceeds else _admit(client, record, execution, name, True)

    # The plan Admit would make: the lease's next generation, the failed AZ tried already.
    taken = lease.take(record, execution)
    plan = FailoverPlan(
        generation=taken.generation,
        old_instance_id=record.current_instance_id,
        failed_az=record.current_az,
        started_at=clock.now(),
        tried_azs=[record.current_az],
    )
    facts = _Facts.gather(client, stack, record, plan, execution)
    candidates = [facts.assess(candidate) for candidate in facts.candidates]
    first = next((c for c in candidates if c.usable), candidates[0] if candidates else None)
    request = (
        launching.run_request(
            record,
            plan,
            execution,
            _as_launch(first),
            launching.client_token(name, 1, "", ""),
            launching.encrypted_mappings(facts.image or {}),
        )
        if first
        else {}
    )
    request.pop("UserData", None)  # the operator's, possibly secret; the record has it
    checks = [*facts.checks(candidates), *_permission_checks(client, stack, record, facts, request)]
    return Rehearsal(
        app=app,
        force=force,
        admit=admit,
        admit_with_force=admit_with_force,
        state=record.state,
        generation=plan.generation,
        old_instance_id=record.current_instance_id,
        old_az=record.current_az,
        old_instance_state=facts.old_state,
        network_interfaces=list(facts.interfaces),
        blackhole_security_group_id=record.blackhole_security_group_id,
        target_group_arns=list(record.target_group_arns),
        registered_in=facts.registered_in,
        image_id=record.launch_spec.image_id,
        candidates=candidates,
        run_request=request,
        efs_file_system_id=record.efs.file_system_id,
        efs_mount_targets={az: mt["MountTargetId"] for az, mt in facts.mount_targets.items()},
        shared_subnet_mount_targets=[
            mt["MountTargetId"]
            for mt in facts.mount_targets.values()
            if facts.old is not None and mt["SubnetId"] == facts.old.get("SubnetId")
        ],
        fence_timeout_seconds=record.fence_timeout_seconds,
        alarm_names=list(record.alarm_names),
        checks=checks,
    )


def _as_launch(candidate: Candidate) -> LaunchCandidate:
    return LaunchCandidate(az=candidate.az, instance_type=candidate.instance_type, subnet_id=candidate.subnet_id)


def _admit(client: Client, record: AppRecord, execution: str, name: str, force: bool) -> AdmitVerdict:
    trigger = parse_trigger(
        {"kind": TriggerKind.DRILL.value, "app": record.app, "reason": "rehearsal", "force": force}, name
    )
    # The lease as seen through this client; a holder left in it is one that runs.
    refusal = refusal_of(trigger, _lease_as_seen(client, record), execution, still_running=lambda _: True)
    if refusal is None:
        return AdmitVerdict(decision=Decision.PROCEED, reason=trigger.summary, force=force)
    return AdmitVerdict(decision=refusal[0], reason=refusal[1], force=force)


def _lease_as_seen(client: Client, record: AppRecord) -> AppRecord:
    """The record with its lease settled here, through ``client``: admission asks whether the
    lease's holder still runs with the handlers' own client, which is not this one."""
    if record.state is not AppState.SWITCHING or record.lease is None:
        return record
    try:
        status = client("stepfunctions").describe_execution(executionArn=record.lease.holder)["status"]
    except ClientError as error:
        if error_code(error) != "ExecutionDoesNotExist":
            raise
        status = "GONE"
    if status == "RUNNING":  # the holder is alive: its lease keeps others out
        return record
    return record.model_copy(update={"lease": None})  # continued by the next trigger, as Admit would


# --- facts, read once --------------------------------------------------------------------------
@dataclass
class _Facts:
    client: Client
    stack: StackOutputs
    record: AppRecord
    candidates: list[LaunchCandidate]
    partition: str
    region: str
    account: str
    old: dict[str, Any] | None = None
    interfaces: dict[str, dict[str, str]] = field(default_factory=dict)  # eni -> tags
    target_groups: dict[str, dict[str, str] | None] = field(default_factory=dict)  # arn -> tags (None: gone)
    registered_in: list[str] = field(default_factory=list)
    image: dict[str, Any] | None = None
    az_states: dict[str, str] = field(default_factory=dict)
    offered: set[tuple[str, str]] = field(default_factory=set)  # (az, type)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    mount_targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # az -> mount target
    file_system_tags: dict[str, str] = field(default_factory=dict)
    network_acls: dict[str, str] = field(default_factory=dict)  # subnet of a mount target -> its network ACL
    vpc_id: str = ""
    file_system_problem: str | None = None
    instance_role_arn: str | None = None
    instance_profile_problem: str | None = None

    @property
    def old_state(self) -> str:
        return str(self.old["State"]["Name"]) if self.old else "gone"

    def arn(self, service: str, resource: str, *, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account if account else ''}:{resource}"

    @classmethod
    def gather(
        cls, client: Client, stack: StackOutputs, record: AppRecord, plan: FailoverPlan, execution: str
    ) -> _Facts:
        partition, _, region, account = stack.StateMachineArn.split(":")[1:5]
        facts = cls(client, stack, record, launching.launch_candidates(record, plan), partition, region, account)
        facts._read_ec2()
        facts._read_target_groups()
        facts._read_efs()
        facts._read_instance_profile()
        return facts

    def _read_ec2(self) -> None:
        ec2, record = self.client("ec2"), self.record
        try:
            found = ec2.describe_instances(InstanceIds=[record.current_instance_id])["Reservations"]
            self.old = next((i for r in found for i in r.get("Instances", [])), None)
        except ClientError as error:
            if error_code(error) not in INSTANCE_NOT_FOUND:
                raise
        eni_ids = [n["NetworkInterfaceId"] for n in (self.old or {}).get("NetworkInterfaces", [])]
        if eni_ids:
            for eni in ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]:
                self.interfaces[eni["NetworkInterfaceId"]] = _tags(eni.get("TagSet"))
        try:
            self.image = next(iter(ec2.describe_images(ImageIds=[record.launch_spec.image_id])["Images"]), None)
        except ClientError as error:
            if error_code(error) not in IMAGE_NOT_FOUND:
                raise
        azs = sorted({c.az for c in self.candidates} | {record.current_az})
        for zone in ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": azs}])[
            "AvailabilityZones"
        ]:
            self.az_states[zone["ZoneName"]] = zone["State"]
        types = sorted({c.instance_type for c in self.candidates})
        if types:
            pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": azs}],
            )
            for page in pages:
                for offer in page.get("InstanceTypeOfferings", []):
                    self.offered.add((offer["Location"], offer["InstanceType"]))
        subnet_ids = sorted({c.subnet_id for c in self.candidates})
        if subnet_ids:
            found_subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnet_ids}])["Subnets"]
            self.subnets = {s["SubnetId"]: s for s in found_subnets}
        group_ids = sorted({*record.launch_spec.security_group_ids, record.blackhole_security_group_id})
        found_groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": group_ids}])
        self.groups = {g["GroupId"]: g for g in found_groups["SecurityGroups"]}

    def _read_target_groups(self) -> None:
        elb = self.client("elbv2")
        for arn in self.record.target_group_arns:
            try:
                elb.describe_target_groups(TargetGroupArns=[arn])
            except ClientError as error:
                if error_code(error) not in TARGET_GROUP_NOT_FOUND:
                    raise
                self.target_groups[arn] = None
                continue
            described = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"]
            self.target_groups[arn] = _tags(described[0].get("Tags") if described else [])
            health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if any(h["Target"]["Id"] == self.record.current_instance_id for h in health):
                self.registered_in.append(arn)

    def _read_efs(self) -> None:
        try:
            found = self.client("efs").describe_mount_targets(FileSystemId=self.record.efs.file_system_id)
        except ClientError as error:
            if error_code(error) not in FILE_SYSTEM_NOT_FOUND:
                raise
            self.file_system_problem = (
                f"EFS file system {self.record.efs.file_system_id} not found ({error_code(error)})"
            )
            return
        subnet_azs = {s["SubnetId"]: s["AvailabilityZone"] for s in self.subnets.values()}
        for target in found.get("MountTargets", []):
            az = target.get("AvailabilityZoneName") or subnet_azs.get(target["SubnetId"])
            if az:
                self.mount_targets[az] = target
            self.vpc_id = self.vpc_id or str(target.get("VpcId", ""))
        described = self.client("efs").describe_file_systems(FileSystemId=self.record.efs.file_system_id)
        self.file_system_tags = _tags(described["FileSystems"][0].get("Tags"))
        subnet_ids = sorted({t["SubnetId"] for t in self.mount_targets.values()})
        if subnet_ids:
            acls = self.client("ec2").describe_network_acls(
                Filters=[{"Name": "association.subnet-id", "Values": subnet_ids}]
            )["NetworkAcls"]
            for acl in acls:
                for association in acl.get("Associations", []):
                    if association.get("SubnetId") in subnet_ids:
                        self.network_acls[association["SubnetId"]] = acl["NetworkAclId"]

    def _read_instance_profile(self) -> None:
        arn = self.record.launch_spec.instance_profile_arn
        if not arn:
            return
        try:
            profile = self.client("iam").get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[-1])
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            self.instance_profile_problem = f"instance profile {arn} not found"
            return
        roles = profile["InstanceProfile"].get("Roles", [])
        if not roles:
            self.instance_profile_problem = f"instance profile {arn} has no role"
        else:
            self.instance_role_arn = str(roles[0]["Arn"])

    # --- assessments ---
    def assess(self, candidate: LaunchCandidate) -> Candidate:
        reasons: list[str] = []
        az_state = self.az_states.get(candidate.az, "unknown")
        if az_state != "available":
            reasons.append(f"AZ {candidate.az} is {az_state}")
        if (candidate.az, candidate.instance_type) not in self.offered:
            reasons.append(f"{candidate.instance_type} is not offered in {candidate.az}")
        subnet = self.subnets.get(candidate.subnet_id)
        if subnet is None:
            reasons.append(f"subnet {candidate.subnet_id} not found")
        elif int(subnet.get("AvailableIpAddressCount", 0)) < 1:
            reasons.append(f"subnet {candidate.subnet_id} has no free IP address")
        return Candidate(
            az=candidate.az,
            instance_type=candidate.instance_type,
            subnet_id=candidate.subnet_id,
            usable=not reasons,
            note="; ".join(reasons),
        )

    def checks(self, candidates: list[Candidate]) -> list[Check]:
        return [
            self._image_check(),
            *self._launch_checks(candidates),
            *self._efs_checks(candidates),
            *self._group_checks(),
            *self._target_group_checks(),
            self._old_instance_check(),
            *self._fence_checks(),
        ]

    def _fence_checks(self) -> list[Check]:
        if self.old is None or self.file_system_problem:
            return []
        found = fence_topology.check(
            self.client, self.old, self.record.efs.file_system_id, self.record.target_group_arns
        )
        return [Check(name=f"fence: {f.subject}", status=Status.WARNING, detail=f.detail) for f in found]

    def _image_check(self) -> Check:
        image_id = self.record.launch_spec.image_id
        if self.image is None:
            return Check(
                name="ami",
                status=Status.PROBLEM,
                detail=f"AMI {image_id} does not exist (deregistered?): make a new one with"
                f" `swr ami refresh {self.record.app}`",
            )
        state = self.image.get("State", "unknown")
        if state != "available":
            return Check(name="ami", status=Status.PROBLEM, detail=f"AMI {image_id} is {state}, not available")
        return Check(name="ami", status=Status.OK, detail=f"AMI {image_id} ({self.image.get('Name', '')}) is available")

    def _launch_checks(self, candidates: list[Candidate]) -> list[Check]:
        if not candidates:
            return [
                Check(
                    name="launch candidates",
                    status=Status.PROBLEM,
                    detail=f"no AZ other than {self.record.current_az} among the registered subnets",
                )
            ]
        usable = [c for c in candidates if c.usable]
        skipped = [f"{c.instance_type} in {c.az}: {c.note}" for c in candidates if not c.usable]
        if not usable:
            return [
                Check(
                    name="launch candidates",
                    status=Status.PROBLEM,
                    detail="no candidate can launch: " + "; ".join(skipped),
                )
            ]
        first = usable[0]
        subnet = self.subnets[first.subnet_id]
        detail = (
            f"{first.instance_type} is offered in {first.az} (available); subnet {first.subnet_id} has"
            f" {subnet.get('AvailableIpAddressCount')} free IP addresses"
        )
        if candidates[0] is not first:
            return [
                Check(
                    name="launch candidates",
                    status=Status.WARNING,
                    detail=f"first choice skipped ({'; '.join(skipped[: candidates.index(first)])}); {detail}",
                )
            ]
        return [Check(name="launch candidates", status=Status.OK, detail=detail)]

    def _efs_checks(self, candidates: list[Candidate]) -> list[Check]:
        file_system = self.record.efs.file_system_id
        if self.file_system_problem:
            return [Check(name="efs", status=Status.PROBLEM, detail=self.file_system_problem)]
        checks = []
        for az in dict.fromkeys(c.az for c in candidates):
            target = self.mount_targets.get(az)
            if target is None:
                checks.append(
                    Check(
                        name=f"efs mount target {az}",
                        status=Status.PROBLEM,
                        detail=f"{file_system} has no mount target in {az}: a replacement there cannot mount"
                        f" its data; create one (aws efs create-mount-target) or remove {az}'s subnet",
                    )
                )
            elif target.get("LifeCycleState") != "available":
                checks.append(
                    Check(
                        name=f"efs mount target {az}",
                        status=Status.PROBLEM,
                        detail=f"{target['MountTargetId']} of {file_system} in {az} is {target.get('LifeCycleState')}",
                    )
                )
            else:
                checks.append(
                    Check(
                        name=f"efs mount target {az}",
                        status=Status.OK,
                        detail=f"{target['MountTargetId']} ({target.get('IpAddress', '?')}) is available",
                    )
                )
        return checks

    def _group_checks(self) -> list[Check]:
        checks = []
        blackhole = self.record.blackhole_security_group_id
        if blackhole not in self.groups:
            checks.append(
                Check(name="blackhole group", status=Status.PROBLEM, detail=f"security group {blackhole} not found")
            )
        elif blackhole != self.stack.BlackholeSecurityGroupId:
            checks.append(
                Check(
                    name="blackhole group",
                    status=Status.PROBLEM,
                    detail=f"the record names {blackhole}, the stack's is {self.stack.BlackholeSecurityGroupId}:"
                    " the fence may only use the stack's; register the application again",
                )
            )
        else:
            checks.append(Check(name="blackhole group", status=Status.OK, detail=f"{blackhole} exists"))
        missing = [g for g in self.record.launch_spec.security_group_ids if g not in self.groups]
        checks.append(
            Check(name="launch security groups", status=Status.PROBLEM, detail=f"not found: {', '.join(missing)}")
            if missing
            else Check(
                name="launch security groups",
                status=Status.OK,
                detail=", ".join(self.record.launch_spec.security_group_ids) + " exist",
            )
        )
        if self.instance_profile_problem:
            checks.append(Check(name="instance profile", status=Status.PROBLEM, detail=self.instance_profile_problem))
        return checks

    def _target_group_checks(self) -> list[Check]:
        checks = []
        for arn, tags in self.target_groups.items():
            short = arn.rsplit(":", 1)[-1]
            if tags is None:
                checks.append(Check(name=f"target group {short}", status=Status.PROBLEM, detail=f"{arn} not found"))
            else:
                where = "registered" if arn in self.registered_in else "not registered"
                checks.append(
                    Check(name=f"target group {short}", status=Status.OK, detail=f"exists; the old instance is {where}")
                )
        return checks

    def _old_instance_check(self) -> Check:
        instance_id = self.record.current_instance_id
        if self.old is None:
            return Check(
                name="old instance",
                status=Status.WARNING,
                detail=f"{instance_id} does not exist: the fence would find nothing to isolate",
            )
        return Check(
            name="old instance",
            status=Status.OK,
            detail=f"{instance_id} is {self.old_state} in {self.record.current_az} with"
            f" {len(self.interfaces)} network interface(s)",
        )


def _tags(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


# --- permissions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Need:
    """Actions a step calls on resources, with the condition keys its requests carry."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    context: tuple[tuple[str, str], ...] = ()
    about: str = ""  # what the resources are, for the operator


def _launch_apps_tag(tags: list[dict[str, str]] | None) -> tuple[tuple[str, str], ...]:
    value = _tags(tags or []).get(LAUNCH_APPS_TAG)
    return ((f"aws:ResourceTag/{LAUNCH_APPS_TAG}", value),) if value is not None else ()


def _resource_tag(tags: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    # An untagged resource gives no aws:ResourceTag key: the simulation says what is missing.
    value = (tags or {}).get(APP_TAG)
    return ((f"aws:ResourceTag/{APP_TAG}", value),) if value is not None else ()


def _needs(step: str, facts: _Facts, request: dict[str, Any], environment: dict[str, str]) -> list[_Need]:
    """What ``step`` (the handler module's name) calls, on what, for this failover."""
    record = facts.record
    table = _Need(("dynamodb:GetItem",), (facts.arn("dynamodb", f"table/{facts.stack.RecordTableName}"),))
    write = _Need(("dynamodb:PutItem",), table.resources)
    defaults = Settings.model_fields
    bus = environment.get("SWR_EVENT_BUS_NAME", str(defaults["event_bus_name"].default))
    publish = _Need(
        ("events:PutEvents",),
        (facts.arn("events", f"event-bus/{bus}"),),
        (("events:source", environment.get("SWR_EVENT_SOURCE", str(defaults["event_source"].default))),),
    )
    # The steps that change what the record names point the EC2 state-change rules at it.
    rules = tuple(
        facts.arn("events", f"rule/{environment[variable]}")
        for variable in ("SWR_INSTANCE_WATCH_RULE", "SWR_FENCE_RELEASE_RULE")
        if environment.get(variable)
    )
    ec2_changes = (("events:source", "aws.ec2"), ("events:detail-type", EC2_DETAIL_TYPE))
    watch = [_Need(("events:PutRule",), rules, ec2_changes, "EC2 state-change rules")] if rules else []
    instance = facts.arn("ec2", f"instance/{record.current_instance_id}")
    blackhole = facts.arn("ec2", f"security-group/{record.blackhole_security_group_id}")
    old_tags = _tags((facts.old or {}).get("Tags"))
    deregister = [
        _Need(("elasticloadbalancing:DeregisterTargets",), (arn,), _resource_tag(tags), "target group")
        for arn, tags in facts.target_groups.items()
    ]
    # The replacement carries the launch request's tags: what its permissions are judged by.
    new_tags = _tags(
        next((s["Tags"] for s in request.get("TagSpecifications", []) if s["ResourceType"] == "instance"), [])
    )
    if step == "admit":
        admit = [
            _Need(("ec2:DescribeTags",), ("*",)),
            _Need(
                ("states:DescribeExecution",),
                (facts.stack.StateMachineArn.replace(":stateMachine:", ":execution:", 1) + ":*",),
            ),
        ]
        return [table, write, publish, *admit, *watch]
    efs_resource = facts.arn("elasticfilesystem", f"file-system/{record.efs.file_system_id}")
    efs_tag = _resource_tag(facts.file_system_tags)
    vpc = (("ec2:Vpc", facts.arn("ec2", f"vpc/{facts.vpc_id}")),) if facts.vpc_id else ()
    acls = tuple(facts.arn("ec2", f"network-acl/{acl}") for acl in sorted(set(facts.network_acls.values())))
    read_efs = _Need(("elasticfilesystem:DescribeMountTargets",), (efs_resource,), (), "file system")
    if step == "cut_off_instances":
        interfaces = [
            _Need(
                ("ec2:ModifyNetworkInterfaceAttribute",),
                (facts.arn("ec2", f"network-interface/{eni}"),),
                _resource_tag(tags),
                "network interface",
            )
            for eni, tags in facts.interfaces.items()
        ]
        old = (
            [
                _Need(
                    ("ec2:CreateTags", "ec2:TerminateInstances", "ec2:StopInstances"),
                    (instance,),
                    _resource_tag(old_tags),
                    "old instance",
                )
            ]
            if facts.old
            else []
        )
        shared = [t for t in facts.mount_targets.values() if facts.old and t["SubnetId"] == facts.old.get("SubnetId")]
        delete = (
            [
                _Need(("elasticfilesystem:DeleteMountTarget",), (efs_resource,), efs_tag, "file system"),
                _Need(
                    ("ec2:DeleteNetworkInterface",),
                    tuple(facts.arn("ec2", f"network-interface/{t.get('NetworkInterfaceId', '*')}") for t in shared),
                    vpc,
                    "mount target's interface",
                ),
            ]
            if shared
            else []
        )
        return [
            table,
            write,
            _Need(
                (
                    "ec2:DescribeInstances",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeNetworkAcls",
                    "elasticloadbalancing:DescribeTargetHealth",
                ),
                ("*",),
            ),
            _Need(
                ("elasticfilesystem:DescribeMountTargets", "elasticfilesystem:DescribeMountTargetSecurityGroups"),
                (efs_resource,),
                (),
                "file system",
            ),
            *interfaces,
            _Need(("ec2:ModifyNetworkInterfaceAttribute",), (blackhole,), (), "blackhole group"),
            *old,
            *deregister,
            *(
                [_Need(("ec2:CreateNetworkAclEntry",), acls, vpc, "network ACLs of the mount targets' subnets")]
                if acls
                else []
            ),
            *delete,
        ]
    if step == "confirm_fence":
        describe = (
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkAcls",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
        )
        return [table, write, _Need(describe, ("*",)), read_efs]
    if step == "release_fences":
        subnets = tuple(
            facts.arn("ec2", f"subnet/{t['SubnetId']}") for t in facts.mount_targets.values() if t.get("SubnetId")
        )
        return [
            table,
            write,
            _Need(
                (
                    "ec2:DescribeInstances",
                    "ec2:DescribeNetworkAcls",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeNetworkInterfaces",
                ),
                ("*",),
            ),
            *(
                [_Need(("ec2:DeleteNetworkAclEntry",), acls, vpc, "network ACLs of the mount targets' subnets")]
                if acls
                else []
            ),
            read_efs,
            _Need(("elasticfilesystem:CreateMountTarget",), (efs_resource,), efs_tag, "file system"),
            _Need(
                ("ec2:CreateNetworkInterface",),
                (facts.arn("ec2", "network-interface/*"), *subnets),
                vpc,
                "a mount target's interface",
            ),
            *watch,
            # The fence release rule invokes it asynchronously; what fails every attempt goes here.
            _Need(
                ("sqs:SendMessage",),
                (facts.arn("sqs", facts.stack.TriggerDeadLetterQueueUrl.rsplit("/", 1)[-1]),),
                (),
                "its dead-letter queue",
            ),
        ]
    if step == "launch_replacement":
        return [table, _Need(("ec2:DescribeInstances",), ("*",)), *_launch_needs(facts, request)]
    if step == "check_replacement":
        return [table, _Need(("ec2:DescribeInstances",), ("*",))]
    if step == "issue_permit":
        return [table, write]
    if step == "register_targets":
        register = [
            _Need(("elasticloadbalancing:RegisterTargets",), (arn,), _resource_tag(tags), "target group")
            for arn, tags in facts.target_groups.items()
        ]
        return [table, _Need(("elasticloadbalancing:DescribeTargetHealth",), ("*",)), *register]
    if step == "check_target_health":
        return [table, _Need(("elasticloadbalancing:DescribeTargetHealth",), ("*",))]
    if step == "finalise_failover":
        alarms = tuple(facts.arn("cloudwatch", f"alarm:{name}") for name in record.alarm_names)
        retarget = [_Need(("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"), alarms)] if alarms else []
        return [table, write, publish, _Need(("ec2:DescribeInstances",), ("*",)), *retarget, *watch]
    if step == "rollback_replacement":
        return [table, write]
    if step == "fail_failover":
        return [
            table,
            write,
            publish,
            _Need(("ec2:DescribeInstances",), ("*",)),
            _Need(
                ("ec2:TerminateInstances",), (facts.arn("ec2", "instance/*"),), _resource_tag(new_tags), "replacement"
            ),
            *watch,
        ]
    return [table]


def _launch_needs(facts: _Facts, request: dict[str, Any]) -> list[_Need]:
    if not request:
        return []
    request_tag = (f"aws:RequestTag/{APP_TAG}", _tags(request["TagSpecifications"][0]["Tags"]).get(APP_TAG, ""))
    created = tuple(facts.arn("ec2", f"{kind}/*") for kind in ("instance", "volume", "network-interface"))
    imds = ("ec2:MetadataHttpTokens", str(request.get("MetadataOptions", {}).get("HttpTokens", "optional")))
    devices = request.get("BlockDeviceMappings") or []
    encrypted = ("ec2:Encrypted", "true" if devices and all(d["Ebs"].get("Encrypted") for d in devices) else "false")
    needs = [
        _Need(("ec2:RunInstances",), created[:1], (request_tag, imds), "new instance (IMDSv2)"),
        _Need(("ec2:RunInstances",), created[1:2], (request_tag, encrypted), "its volumes, encrypted"),
        _Need(("ec2:RunInstances",), created[2:], (request_tag,), "its network interfaces"),
        _Need(
            ("ec2:RunInstances",),
            (facts.arn("ec2", f"image/{request['ImageId']}", account=False),),
            _launch_apps_tag((facts.image or {}).get("Tags")),
            "AMI, marked for the application",
        ),
        _Need(("ec2:CreateTags",), created, (("ec2:CreateAction", "RunInstances"),), "tags at launch"),
    ]
    for subnet_id in dict.fromkeys(c.subnet_id for c in facts.candidates):
        subnet = facts.subnets.get(subnet_id)
        if subnet is None:
            continue
        vpc = ("ec2:Vpc", facts.arn("ec2", f"vpc/{subnet['VpcId']}"))
        needs.append(_Need(("ec2:RunInstances",), (facts.arn("ec2", f"subnet/{subnet_id}"),), (vpc,), "subnet"))
    for group in dict.fromkeys(request["SecurityGroupIds"]):
        found = facts.groups.get(group) or {}
        context = (("ec2:Vpc", facts.arn("ec2", f"vpc/{found.get('VpcId', '')}")), *_launch_apps_tag(found.get("Tags")))
        needs.append(
            _Need(
                ("ec2:RunInstances",),
                (facts.arn("ec2", f"security-group/{group}"),),
                context,
                "security group, marked for the application",
            )
        )
    if request.get("KeyName"):
        needs.append(_Need(("ec2:RunInstances",), (facts.arn("ec2", f"key-pair/{request['KeyName']}"),), (), "key"))
    if facts.instance_role_arn:
        needs.append(
            _Need(
                ("iam:PassRole",),
                (facts.instance_role_arn,),
                (("iam:PassedToService", "ec2.amazonaws.com"),),
                "instance role",
            )
        )
    return needs


def _steps_of(client: Client, state_machine_arn: str) -> dict[str, list[str]]:
    """Function ARN -> the workflow's states that run it, from the deployed definition."""
    definition = json.loads(
        client("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)["definition"]
    )
    found: dict[str, list[str]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            if state.get("Type") == "Task":
                resource = str(state.get("Resource", ""))
                function = (
                    str((state.get("Parameters") or {}).get("FunctionName", ""))
                    if resource.startswith(LAMBDA_INVOKE)
                    else resource
                )
                if ":function:" in function:
                    found.setdefault(function, []).append(name)
            for branch in state.get("Branches", []):
                walk(branch.get("States", {}))
            for key in ("Iterator", "ItemProcessor"):
                if key in state:
                    walk(state[key].get("States", {}))

    walk(definition.get("States", {}))
    return found


def _permission_checks(
    client: Client, stack: StackOutputs, record: AppRecord, facts: _Facts, request: dict[str, Any]
) -> list[Check]:
    try:
        steps = _steps_of(client, stack.StateMachineArn)
    except ClientError as error:
        return [
            Check(
                name="permissions",
                status=Status.PROBLEM,
                detail=f"cannot read state machine {stack.StateMachineArn}: {error_code(error)}",
            )
        ]
    lambda_, iam = client("lambda"), client("iam")
    checks: list[Check] = []
    for function, states in steps.items():
        label = "/".join(states)
        try:
            config = lambda_.get_function_configuration(FunctionName=function)
        except ClientError as error:
            checks.append(
                Check(
                    name=f"permissions {label}",
                    status=Status.PROBLEM,
                    detail=f"function {function} unreadable: {error_code(error)}",
                )
            )
            continue
        role = str(config["Role"])
        step = str(config.get("Handler", "")).rsplit(".", 1)[0].rsplit(".", 1)[-1]
        environment = dict((config.get("Environment") or {}).get("Variables") or {})
        denied: list[str] = []
        asked = 0
        for need in _needs(step, facts, request, environment):
            try:
                results = _simulate(iam, role, need)
            except ClientError as error:
                denied.append(f"cannot simulate {', '.join(need.actions)}: {error_code(error)}")
                continue
            asked += len(need.actions)
            for result in results:
                for specific in result.get("ResourceSpecificResults") or [
                    {"EvalResourceName": result.get("EvalResourceName"), "EvalResourceDecision": result["EvalDecision"]}
                ]:
                    if specific["EvalResourceDecision"] != "allowed":
                        denied.append(_denial(result, specific, need))
        role_name = role.rsplit("/", 1)[-1]
        if denied:
            checks.append(
                Check(
                    name=f"permissions {label}",
                    status=Status.PROBLEM,
                    detail=f"role {role_name} may not: " + "; ".join(denied),
                )
            )
        else:
            checks.append(
                Check(
                    name=f"permissions {label}", status=Status.OK, detail=f"role {role_name}: {asked} action(s) allowed"
                )
            )
    return checks


def _simulate(iam: Any, role: str, need: _Need) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "PolicySourceArn": role,
        "ActionNames": list(need.actions),
        "ResourceArns": list(need.resources),
    }
    # AWS puts aws:RequestedRegion in every request's context; the simulator needs it given
    # (the instance role denies every other region).
    context = [("aws:RequestedRegion", str(iam.meta.region_name)), *need.context]
    kwargs["ContextEntries"] = [
        {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"} for key, value in context
    ]
    return list(iam.simulate_principal_policy(**kwargs)["EvaluationResults"])


def _denial(result: dict[str, Any], specific: dict[str, Any], need: _Need) -> str:
    resource = str(specific.get("EvalResourceName") or "*")
    text = f"{result['EvalActionName']} on {resource}"
    if need.about:
        text += f" ({need.about})"
    text += f": {specific['EvalResourceDecision']}"
    missing = result.get("MissingContextValues") or []
    if any(key.startswith("aws:ResourceTag/") for key in missing):
        text += f" (it has no {APP_TAG} tag; swr register tags it)"
    elif missing:
        text += f" (condition keys not known: {', '.join(missing)})"
    return text
