"""Whether each step's own IAM role may do what the step would call: the functions the
deployed state machine runs, and an IAM SimulatePrincipalPolicy per need (``needs``)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from handlers.core import step_names
from handlers.core.aws import error_code
from handlers.core.launching import APP_TAG
from swr.ops.common import Client
from swr.ops.rehearsal.facts import Facts
from swr.ops.rehearsal.model import Check, Status
from swr.ops.rehearsal.needs import Need, needs
from swr.stack import StackOutputs

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


def steps_of(client: Client, state_machine_arn: str) -> dict[str, list[str]]:
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


def permission_checks(client: Client, stack: StackOutputs, facts: Facts, request: dict[str, Any]) -> list[Check]:
    """One check per function of the workflow: whether its role may do all its steps need."""
    try:
        steps = steps_of(client, stack.StateMachineArn)
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
        module = str(config.get("Handler", "")).rsplit(".", 1)[0].rsplit(".", 1)[-1]
        step = step_names.BY_MODULE[module].name if module in step_names.BY_MODULE else module
        environment = dict((config.get("Environment") or {}).get("Variables") or {})
        denied: list[str] = []
        asked = 0
        for need in needs(step, facts, request, environment):
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


def _simulate(iam: Any, role: str, need: Need) -> list[dict[str, Any]]:
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


def _denial(result: dict[str, Any], specific: dict[str, Any], need: Need) -> str:
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
