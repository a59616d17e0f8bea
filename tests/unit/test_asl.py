"""The workflow definition and the handlers agree on names."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from handlers.core import errors, triggers
from handlers.shell import StepInputInvalid
from rms_hooks import fault_notifier
from swr.deployer import load_template

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
