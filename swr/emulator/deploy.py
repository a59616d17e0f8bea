"""Deploy the workflow into the emulator: one Lambda function per handler module, the
state machine from statemachine/failover.asl.json with its ARNs substituted, and the
EventBridge rules that start it."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "failover.asl.json"
STATE_MACHINE_NAME = "swr-failover"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)FunctionArn\}")

RULES = {
    "swr-alarm-state-change": {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": "swr-"}], "state": {"value": ["ALARM"]}},
    },
    "swr-rms-fault": {"source": ["swr.rms"], "detail-type": ["RMS Fault"]},
    "swr-ec2-state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["stopping", "stopped", "shutting-down", "terminated"]},
    },
}


@dataclass
class Deployment:
    state_machine_arn: str
    function_arns: dict[str, str]
    rule_names: list[str]


def handler_modules(definition: str) -> dict[str, str]:
    """Substitution name -> handler module, e.g. IssuePermit -> issue_permit."""
    names = sorted(set(PLACEHOLDER.findall(definition)))
    return {name: re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in names}


def deploy(client: Any, environment: dict[str, str]) -> Deployment:
    iam, lambda_, sfn, events = (client(s) for s in ("iam", "lambda", "stepfunctions", "events"))
    definition = DEFINITION.read_text()
    role = iam.create_role(RoleName="swr-step-functions", AssumeRolePolicyDocument=_trust())["Role"]["Arn"]
    functions: dict[str, str] = {}
    for name, module in handler_modules(definition).items():
        functions[name] = lambda_.create_function(
            FunctionName=f"swr-{module.replace('_', '-')}",
            Runtime="python3.12",
            Architectures=["arm64"],
            Role=role,
            Handler=f"handlers.{module}.handler",
            Code={"ZipFile": _placeholder_zip()},
            Timeout=60,
            MemorySize=256,
            Environment={"Variables": environment},
        )["FunctionArn"]
    substituted = PLACEHOLDER.sub(lambda m: functions[m.group(1)], definition)
    machine = sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=substituted, roleArn=role, type="STANDARD")
    for rule, pattern in RULES.items():
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, Targets=[{"Id": "failover", "Arn": machine["stateMachineArn"], "RoleArn": role}])
    return Deployment(machine["stateMachineArn"], functions, list(RULES))


def _placeholder_zip() -> bytes:
    # The emulator runs the handlers in-process from this checkout; the zip only has to exist.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "swr handlers run in-process in the emulator\n")
    return buffer.getvalue()


def _trust() -> str:
    principals = ["lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": principals}, "Action": "sts:AssumeRole"}],
        }
    )
