"""The workflow definition and the handlers agree on names."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from handlers.core import errors, step_names, triggers
from handlers.shell import StepInputInvalid
from rms_hooks import fault_notifier
from swr.deploy import load_template

DEFINITION = Path("statemachine/failover.asl.json")
TEMPLATE = load_template(Path("infra/template.yaml"))
ASL = json.loads(DEFINITION.read_text())
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
AWS_ERRORS = re.compile(r"^(States\.|Lambda\.)")


def _states(machine: dict) -> dict:
    found = dict(machine["States"])
    for state in machine["States"].values():
        for branch in state.get("Branches", []):
            found.update(_states(branch))
    return found


def test_every_error_the_asl_matches_is_a_named_error_class():
    named = {cls.__name__ for cls in vars(errors).values() if isinstance(cls, type)} | {StepInputInvalid.__name__}
    matched = {
        name
        for state in _states(ASL).values()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
        if not AWS_ERRORS.match(name)
    }
    assert matched, "the ASL matches no swr errors at all"
    assert matched <= named, f"ASL matches errors no handler raises: {sorted(matched - named)}"


def test_every_placeholder_is_a_function_of_the_stack_whose_handler_exists():
    resources = TEMPLATE["Resources"]
    substitutions = resources["FailoverStateMachine"]["Properties"]["DefinitionSubstitutions"]
    placeholders = set(PLACEHOLDER.findall(DEFINITION.read_text()))
    assert placeholders == set(substitutions), "the ASL and the template's DefinitionSubstitutions disagree"
    modules = set()
    # Besides the functions, what the Lambda-free paths (not admitted, clean-up failed) need.
    assert {k: v for k, v in substitutions.items() if not k.endswith("FunctionArn")} == {
        "TriggerDeadLetterQueueUrl": {"Ref": "TriggerDeadLetterQueue"},
        "EventBusName": "default",
        "EventSource": "swr.failover",
        "AppName": {"Ref": "AppName"},
    }
    for name, value in substitutions.items():
        if not name.endswith("FunctionArn"):
            continue
        function = resources[value["Fn::GetAtt"][0]]
        assert function["Type"] == "AWS::Serverless::Function", name
        module, _, attr = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), f"{name}: no handler {module}.{attr}"
        modules.add(module.removeprefix("handlers."))
    assert len(modules) == 12
    on_disk = {p.stem for p in Path("handlers").glob("*.py")} - {"__init__", "shell"}
    assert on_disk == modules, "a handler module is not wired into the workflow"


def test_every_state_after_admit_that_can_fail_is_caught():
    # Once the lease is taken, every failure must go through a Catch to a safe end.
    branch_states = {
        name for state in ASL["States"].values() for b in state.get("Branches", []) for name in b["States"]
    }
    for name, state in _states(ASL).items():
        if state["Type"] not in ("Task", "Parallel") or name in branch_states:
            continue  # the branch states are caught by their Parallel state
        catches = [error for rule in state.get("Catch", []) for error in rule["ErrorEquals"]]
        assert "States.ALL" in catches, f"{name} has no catch-all"


def test_the_permit_waits_for_the_boot_gate_with_a_timeout_and_heartbeat():
    permit = ASL["States"]["IssuePermit"]
    assert permit["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert permit["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert permit["TimeoutSeconds"] > permit["HeartbeatSeconds"] > 0


def test_the_rms_event_shape_is_the_one_admit_parses():
    assert fault_notifier.source_of("demo") == triggers.RMS_SOURCE_PREFIX + "demo"
    assert fault_notifier.DETAIL_TYPE == triggers.RMS_DETAIL_TYPE


def test_the_permit_comes_only_after_the_fence_branch_proved_the_cut():
    # FenceAndLaunch ends only when its fence branch ends, and that branch ends only through
    # InstancesFenced, which FenceConfirmed? reaches only on a confirmed fence.
    fence = ASL["States"]["FenceAndLaunch"]["Branches"][0]["States"]
    ends = [name for name, state in fence.items() if state.get("End")]
    assert ends == ["InstancesFenced"]
    assert fence["FenceConfirmed?"]["Choices"] == [
        {"Variable": "$.fence.confirmed", "BooleanEquals": True, "Next": "InstancesFenced"}
    ]
    assert [
        n for n, s in fence.items() if s.get("Next") == "InstancesFenced" or s.get("Default") == "InstancesFenced"
    ] == []
    assert ASL["States"]["FenceAndLaunch"]["Next"] == "WaitForReplacementBoot"
    assert ASL["States"]["RollbackReplacement"]["Next"] == "FenceAndLaunch"


# --- one name per step: handlers/core/step_names.py -----------------------------------------
FUNCTION_ARN = re.compile(r"^\$\{(\w+)FunctionArn\}$")


def _every_state(machine: dict) -> dict:
    """Every state by name, inside Parallel branches and Map iterators too."""
    found = {}
    for name, state in machine["States"].items():
        found[name] = state
        for inner in [*state.get("Branches", []), state.get("Iterator"), state.get("ItemProcessor")]:
            if inner:
                found.update(_every_state(inner))
    return found


def _step_run_by(state: dict) -> str | None:
    """X, for a Task state that calls ${XFunctionArn}: as its Resource, or as the FunctionName
    of a lambda:invoke integration (as IssuePermit does, to wait for a task token)."""
    arguments = state.get("Parameters") or state.get("Arguments") or {}
    for value in (state.get("Resource"), arguments.get("FunctionName")):
        if isinstance(value, str) and (match := FUNCTION_ARN.match(value)):
            return match.group(1)
    return None


def test_every_task_state_runs_a_step_the_table_names_as_the_template_and_the_handlers_do():
    resources = TEMPLATE["Resources"]
    substitutions = resources["FailoverStateMachine"]["Properties"]["DefinitionSubstitutions"]
    runs: dict[str, set[str]] = {}  # step -> the states that run it
    for state_name, state in _every_state(ASL).items():
        if state["Type"] != "Task" or (name := _step_run_by(state)) is None:
            continue
        assert name in step_names.BY_NAME, f"{state_name} calls ${{{name}FunctionArn}}: no step {name} in the table"
        step = step_names.BY_NAME[name]
        assert state_name in step.states, f"{state_name} runs {name} but the table does not say so"
        assert Path(f"handlers/{step.module}.py").is_file(), f"{name}: no handlers/{step.module}.py"
        assert step.function in resources, f"{name}: the template has no {step.function}"
        function = resources[step.function]["Properties"]
        assert function["Handler"] == f"handlers.{step.module}.handler"
        assert function["FunctionName"] == {"Fn::Sub": f"${{NamePrefix}}-{step.deployed_name}"}
        log_group = resources[function["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{NamePrefix}}-{step.deployed_name}"}
        assert substitutions[step.function_arn] == {"Fn::GetAtt": [step.function, "Arn"]}
        runs.setdefault(name, set()).add(state_name)
    # ...and the table names no step, and no state, the workflow does not have.
    assert runs == {step.name: set(step.states) for step in step_names.STEPS}


def test_every_handler_module_with_a_step_is_in_the_table():
    on_disk = {p.stem for p in Path("handlers").glob("*.py")} - {"__init__", "shell"}
    assert on_disk == set(step_names.BY_MODULE)
    for module in on_disk:
        handler = importlib.import_module(f"handlers.{module}").handler
        assert step_names.of_module(handler.__module__).module == module


def test_a_step_is_named_in_pascal_case_and_its_module_in_snake_case():
    assert step_names.BY_MODULE["cut_off_instances"].name == "CutOffInstances"
    assert step_names.of_module("handlers.check_target_health").function == "CheckTargetHealthFunction"
    assert step_names.BY_STATE["ReleaseOldFences"].function_arn == "ReleaseFencesFunctionArn"
    assert step_names.BY_NAME["CheckTargetHealth"].deployed_name == "check-target-health"
    assert all(re.fullmatch(r"(?:[A-Z][a-z]+)+", step.name) for step in step_names.STEPS)
    with pytest.raises(LookupError, match=r"handlers\.nothing runs no step"):
        step_names.of_module("handlers.nothing")
