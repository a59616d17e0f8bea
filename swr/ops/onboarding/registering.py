"""``swr register``: validate (``plan_registration``), then protect the application; a step
that fails midway undoes what registration did before it (``RegistrationFailed``), so
nothing is left half-registered. And ``point_rules``, which points the EC2 state-change
rules at the registered application again after a stack update."""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.core import watch
from handlers.core.errors import RecordConflict
from handlers.core.launching import APP_TAG, GENERATION_TAG, LAUNCH_APPS_TAG
from handlers.core.record import AppRecord
from handlers.core.record_store import RecordStore
from swr.ops.common import Client, OnboardingError, count, rules_of
from swr.ops.onboarding._undo import Undo
from swr.ops.onboarding.alarms import create_alarms
from swr.ops.onboarding.ami import create_image, launch_resources, mark_for_launches
from swr.ops.onboarding.tags import ALLOWED, Ec2Tags, EfsTags, ElbTags, subnet_app_tag, tag_resources
from swr.ops.onboarding.validate import Registration, plan_registration
from swr.stack import StackOutputs


class RegistrationFailed(OnboardingError):
    """A registration step failed after validation; what was done before it was undone."""


@dataclass(frozen=True)
class RegistrationResult:
    record: AppRecord
    actions: list[str]  # what was done, one line each
    created_image_id: str | None = None
    warnings: list[str] = field(default_factory=list)  # the fence's findings about the layout


def register(client: Client, stack: StackOutputs, registration: Registration) -> RegistrationResult:
    """Validate (``plan_registration``), then protect the application: optionally create its
    AMI, tag the instance, its interfaces, volumes and the subnets, give it the stack's
    security group and instance profile, create its alarms and write its record."""
    plan = plan_registration(client, stack, registration)
    ec2, app, instance_id = client("ec2"), plan.app, plan.instance_id
    undo, actions = Undo(), []
    record = plan.record
    created_image: str | None = None
    step = "start"
    try:
        if registration.create_ami:
            step = "create the AMI"
            created_image = create_image(ec2, app, instance_id, undo)
            record = record.model_copy(
                update={"launch_spec": record.launch_spec.model_copy(update={"image_id": created_image})}
            )
            actions.append(f"created image {created_image} from {instance_id}")

        step = "tag the instance"
        resources = [instance_id, *plan.network_interface_ids, *plan.volume_ids]
        ec2_tags = Ec2Tags(ec2)
        tag_resources(
            ec2_tags, resources, {APP_TAG: app, GENERATION_TAG: str(record.generation)}, plan.previous_tags, undo
        )
        actions.append(
            f"tagged {instance_id}, {count(plan.network_interface_ids, 'network interface')} and "
            f"{count(plan.volume_ids, 'volume')} ({APP_TAG}={app}, {GENERATION_TAG}={record.generation})"
        )

        step = "mark the AMI and security groups for launches"
        # The launch role launches only from an AMI and with groups whose swr:apps lists the
        # application.
        marked = mark_for_launches(ec2, app, launch_resources(record, stack), undo)
        if marked:
            actions.append(f"marked {', '.join(marked)} for launches of {app} ({LAUNCH_APPS_TAG})")

        step = "tag the subnets"
        subnet_ids = [c.subnet_id for c in record.subnets]
        tag_resources(ec2_tags, subnet_ids, {subnet_app_tag(app): ALLOWED}, plan.previous_tags, undo)
        actions.append(f"tagged {count(subnet_ids, 'subnet')} ({subnet_app_tag(app)}={ALLOWED})")

        step = "tag the target groups"
        # The stack lets the fence deregister targets only from groups tagged with its application.
        tag_resources(ElbTags(client("elbv2")), record.target_group_arns, {APP_TAG: app}, plan.previous_tags, undo)
        actions.append(f"tagged {count(record.target_group_arns, 'target group')} ({APP_TAG}={app})")

        step = "tag the file system"
        # The stack lets the fence delete (and create again) a mount target only of a file system
        # tagged with its application.
        file_system = record.efs.file_system_id
        tag_resources(EfsTags(client("efs")), [file_system], {APP_TAG: app}, plan.previous_tags, undo)
        actions.append(f"tagged file system {file_system} ({APP_TAG}={app})")

        if plan.protected_group_missing:
            step = "add the protected-instance security group"
            groups = record.launch_spec.security_group_ids
            ec2.modify_network_interface_attribute(NetworkInterfaceId=plan.primary_interface_id, Groups=groups)
            undo.add(
                f"restore the security groups of {plan.primary_interface_id}",
                lambda: ec2.modify_network_interface_attribute(
                    NetworkInterfaceId=plan.primary_interface_id, Groups=plan.primary_interface_groups
                ),
            )
            actions.append(
                f"added security group {stack.ProtectedInstanceSecurityGroupId} to {plan.primary_interface_id}"
            )

        if plan.associate_profile:
            step = "associate the instance profile"
            association = ec2.associate_iam_instance_profile(
                InstanceId=instance_id, IamInstanceProfile={"Arn": stack.InstanceProfileArn}
            )["IamInstanceProfileAssociation"]["AssociationId"]
            undo.add(
                f"disassociate the instance profile from {instance_id}",
                lambda: ec2.disassociate_iam_instance_profile(AssociationId=association),
            )
            actions.append(f"associated instance profile {stack.InstanceProfileArn} with {instance_id}")

        step = "create the alarms"
        cloudwatch = client("cloudwatch")
        # Registered for undo before the calls: a failure after the first alarm still removes it.
        undo.add("delete the alarms", lambda: cloudwatch.delete_alarms(AlarmNames=record.alarm_names))
        create_alarms(cloudwatch, app, instance_id, prefix=stack.AlarmNamePrefix, namespace=stack.MetricNamespace)
        actions += [f"created alarm {name}" for name in record.alarm_names]

        step = "write the record"
        stored = RecordStore(stack.RecordTableName, client("dynamodb")).create(record)
        actions.append(f"wrote record {app} (generation {stored.generation}, AZ {stored.current_az})")
    except Exception as error:
        failed = undo.run()
        if isinstance(error, RecordConflict):
            cause = f"{app!r} was registered by someone else meanwhile"
        else:
            cause = f"{type(error).__name__}: {error}"
        if failed:
            left = "; ".join(failed)
            raise RegistrationFailed(
                f"registration of {app} failed at '{step}' ({cause}); could NOT undo: {left}"
            ) from error
        raise RegistrationFailed(
            f"registration of {app} failed at '{step}' ({cause}); what it had done was undone, "
            "nothing is left half-registered"
        ) from error
    except BaseException:  # interrupted: undo, then let the interruption through
        undo.run()
        raise
    # After the record, outside the undo: the application is protected by its alarms and RMS
    # already; a rule that could not be pointed is a warning, and the next failover points it.
    warnings = list(plan.fence_findings)
    problems = watch.follow(stored, rules_of(stack), client("events"))
    warnings += problems
    if not problems and stack.InstanceWatchRuleName:
        actions.append(f"pointed rule {stack.InstanceWatchRuleName} at {instance_id}")
    return RegistrationResult(record=stored, actions=actions, created_image_id=created_image, warnings=warnings)


def point_rules(client: Client, stack: StackOutputs) -> list[str]:
    """After a stack update: point the EC2 state-change rules at the registered application's
    instances again (an update that changed a rule's definition reset it to match nothing).
    What was done or could not be, as sentences."""
    record = RecordStore(stack.RecordTableName, client("dynamodb")).get(stack.AppName)
    if record is None or not (stack.InstanceWatchRuleName or stack.FenceReleaseRuleName):
        return []
    problems = watch.follow(record, rules_of(stack), client("events"))
    return problems or [f"EC2 state-change rules point at what the record of {record.app} names"]
