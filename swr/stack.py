"""What a deployed swr stack tells its users: the outputs of ``infra/template.yaml``.

``swr register`` and the instance-side hooks read these instead of guessing names, so a
stack deployed with another ``NamePrefix`` works the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

DEFAULT_STACK_NAME = "swr"
# The served emulator tags its stack with its time warp, so the read commands show its
# simulated seconds without being told (a stack on AWS has no such tag: real time).
TIME_WARP_TAG = "swr:emulator-time-warp"


class StackNotReady(Exception):
    """The stack does not exist, is not in a usable state, or lacks an output swr needs."""


class StackOutputs(BaseModel):
    """The template's Outputs, by key. Extra outputs are allowed (a newer template)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    AppName: str
    StateMachineArn: str
    StateMachineName: str
    RecordTableName: str
    BlackholeSecurityGroupId: str
    ProtectedInstanceSecurityGroupId: str
    InstanceRoleArn: str
    InstanceProfileArn: str
    InstanceProfileName: str
    RmsEventSource: str
    MetricNamespace: str
    AlarmNamePrefix: str
    EventBusName: str
    TriggerDeadLetterQueueUrl: str
    # Stacks deployed before swr pointed its EC2 rules at the record's instances have neither.
    InstanceWatchRuleName: str = ""
    FenceReleaseRuleName: str = ""
    OperatorPolicyArn: str = ""  # stacks deployed before it have none


USABLE_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}


def read_outputs(cloudformation: Any, stack_name: str = DEFAULT_STACK_NAME) -> StackOutputs:
    """The outputs of a deployed stack; StackNotReady when there is none an operator could use."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            raise StackNotReady(f"no stack named {stack_name}: deploy it first with `swr deploy`") from None
        raise
    stack = stacks[0]
    if stack["StackStatus"] not in USABLE_STATUSES:
        raise StackNotReady(f"stack {stack_name} is {stack['StackStatus']}, not deployed")
    values = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    try:
        return StackOutputs.model_validate(values)
    except ValidationError as error:
        missing = sorted(str(e["loc"][0]) for e in error.errors())
        raise StackNotReady(f"stack {stack_name} lacks outputs {', '.join(missing)}: redeploy it") from None
