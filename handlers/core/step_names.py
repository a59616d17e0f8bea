"""The failover's Lambda steps, each named once.

A step's name is the PascalCase name all its pieces share: the template's function
``<Name>Function`` (infra/template.yaml), the ASL's placeholder ``${<Name>FunctionArn}``
(statemachine/failover.asl.json, via the template's DefinitionSubstitutions) and the handler
module ``handlers/<name_in_snake_case>.py``; the deployed function and its log group are
``<NamePrefix>-<name-in-kebab-case>``. The handlers' logs and metrics use that name: the
log key ``step`` and the ``step`` dimension of ``StepInvocations`` and ``StepErrors``
(handlers/shell.py).

The ASL states that run a step are named as the step, except where a step runs in more than
one place: ``STEPS`` below is the table, and its ``states`` lists every state that runs each
step. The execution history, the timeline (swr/timeline.py) and the report show states; the
logs and metrics show steps.

The failover's phases (detect, fence, launch_to_running, boot_gate, healthy) are not steps:
they are the ``PhaseDuration`` metric's ``Phase`` (handlers/core/failover_metrics.py).
tests/unit/test_asl.py holds this table, the ASL, the template and the modules together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class Step:
    name: str  # PascalCase
    states: tuple[str, ...]  # the ASL states that run it

    @property
    def module(self) -> str:
        """The handler module's name: ``CutOffInstances`` -> ``cut_off_instances``."""
        return _WORD.sub("_", self.name).lower()

    @property
    def deployed_name(self) -> str:
        """The deployed function's name after the stack's NamePrefix and a hyphen: function
        ``<prefix>-cut-off-instances``, log group ``/aws/lambda/<prefix>-cut-off-instances``."""
        return _WORD.sub("-", self.name).lower()

    @property
    def function(self) -> str:
        """The template's function resource."""
        return f"{self.name}Function"

    @property
    def function_arn(self) -> str:
        """The ASL's placeholder for the function (a DefinitionSubstitutions key)."""
        return f"{self.name}FunctionArn"


# In the order a failover runs them; the clean-up steps last.
STEPS: tuple[Step, ...] = (
    Step("Admit", ("Admit",)),
    Step("CutOffInstances", ("CutOffInstances",)),  # these three in FenceAndLaunch's branches
    Step("ConfirmFence", ("ConfirmFence",)),
    Step("LaunchReplacement", ("LaunchReplacement",)),
    Step("CheckReplacement", ("CheckReplacement",)),
    Step("IssuePermit", ("IssuePermit",)),
    Step("RegisterTargets", ("RegisterTargets",)),
    Step("CheckTargetHealth", ("CheckTargetHealth",)),
    Step("FinaliseFailover", ("FinaliseFailover",)),
    # ReleaseFences: a release trigger (a fenced instance is gone); ReleaseOldFences: a recovery's end.
    Step("ReleaseFences", ("ReleaseFences", "ReleaseOldFences")),
    Step("RollbackReplacement", ("RollbackReplacement",)),
    Step("FailFailover", ("FailFailover",)),
)

BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
BY_MODULE: dict[str, Step] = {step.module: step for step in STEPS}
BY_STATE: dict[str, Step] = {state: step for step in STEPS for state in step.states}


def of_module(module: str) -> Step:
    """The step a handler module runs, by its dotted or bare name (``handlers.admit``, ``admit``)."""
    bare = module.rsplit(".", 1)[-1]
    try:
        return BY_MODULE[bare]
    except KeyError:
        raise LookupError(f"{module} runs no step named in handlers/core/step_names.py") from None
