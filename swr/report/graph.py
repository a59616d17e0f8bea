"""The state machine definition as a graph, and the path one execution took through it.

``parse_definition`` reads the ASL JSON ``DescribeStateMachineForExecution`` returns into a
``Graph`` (states, and the Next/Choice/Default/Catch edges between them; a Parallel or Map
state holds its branches as graphs of their own); ``executed_path`` lays an execution's
timeline over it: the states entered and the transitions taken.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swr.timeline import Step, StepStatus, Timeline

# Longest edge labels drawn in full; longer ones end in "…" (the tooltip has them whole).
CATCH_LABEL_LIMIT = 26
CHOICE_LABEL_LIMIT = 30


class DefinitionError(ValueError):
    """The state machine definition is not one this page can draw."""


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch
    label: str = ""  # shown on the drawing, short
    title: str = ""  # shown on hover, whole
    errors: tuple[str, ...] = ()  # a Catch's ErrorEquals


@dataclass
class State:
    name: str
    type: str
    comment: str = ""
    branches: list[Graph] = field(default_factory=list)  # Parallel branches, a Map's iterator


@dataclass
class Graph:
    start: str
    states: dict[str, State]
    edges: list[Edge]


def parse_definition(definition: str | Mapping[str, Any]) -> Graph:
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError as error:
            raise DefinitionError(f"the state machine definition is not JSON: {error}") from None
    if not isinstance(definition, Mapping):
        raise DefinitionError("the state machine definition is not a JSON object")
    return _graph(definition, "the state machine")


def _graph(body: Mapping[str, Any], where: str) -> Graph:
    states = body.get("States")
    start = body.get("StartAt")
    if not isinstance(states, Mapping) or not states or not isinstance(start, str) or start not in states:
        raise DefinitionError(f"{where} has no States or no valid StartAt")
    graph = Graph(start=start, states={}, edges=[])
    for name, spec in states.items():
        if not isinstance(spec, Mapping):
            raise DefinitionError(f"state {name!r} is not an object")
        state = State(name=str(name), type=str(spec.get("Type", "?")), comment=str(spec.get("Comment", "")))
        if state.type == "Parallel":
            state.branches = [_graph(b, f"a branch of {name}") for b in spec.get("Branches") or []]
        elif state.type == "Map":
            iterator = spec.get("ItemProcessor") or spec.get("Iterator")
            if isinstance(iterator, Mapping):
                state.branches = [_graph(iterator, f"the iterator of {name}")]
        graph.states[state.name] = state
        if isinstance(spec.get("Next"), str):
            graph.edges.append(Edge(state.name, spec["Next"], "next"))
        for rule in spec.get("Choices") or []:
            if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
                label, title = _rule_text(rule)
                graph.edges.append(Edge(state.name, rule["Next"], "choice", label, title))
        if isinstance(spec.get("Default"), str):
            graph.edges.append(Edge(state.name, spec["Default"], "default", "default", "Default"))
        for catcher in spec.get("Catch") or []:
            if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
                errors = tuple(str(e) for e in catcher.get("ErrorEquals") or [])
                named = [e for e in errors if e != "States.ALL"]
                label = _shorten(", ".join(named), CATCH_LABEL_LIMIT) if named else ""
                title = "Catch " + ", ".join(errors)
                graph.edges.append(Edge(state.name, catcher["Next"], "catch", label, title, errors))
    graph.edges = [e for e in graph.edges if e.target in graph.states]
    return graph


_OPERATORS = {
    "Equals": "=",
    "GreaterThanEquals": "≥",
    "LessThanEquals": "≤",
    "GreaterThan": ">",
    "LessThan": "<",
    "Matches": "~",
}


def _rule_text(rule: Mapping[str, Any]) -> tuple[str, str]:
    """A Choice rule as a short label (``= running``) and a whole one for the tooltip."""
    whole = json.dumps({k: v for k, v in rule.items() if k != "Next"}, separators=(", ", ": "))
    return _shorten(_condition(rule), CHOICE_LABEL_LIMIT), whole


def _condition(rule: Mapping[str, Any]) -> str:
    for combinator in ("And", "Or"):
        if isinstance(rule.get(combinator), list):
            return f" {'&' if combinator == 'And' else 'or'} ".join(_condition(r) for r in rule[combinator])
    if isinstance(rule.get("Not"), Mapping):
        return f"not ({_condition(rule['Not'])})"
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment"):
            continue
        if key.startswith("Is"):
            return f"{key[2:].lower()}: {json.dumps(value)}"
        symbol = next((s for suffix, s in _OPERATORS.items() if key.endswith(suffix)), key)
        shown = value if isinstance(value, str) else json.dumps(value)
        # "= proceed" for the usual equality, the operator only when it says something.
        return shown if symbol == "=" else f"{symbol} {shown}"
    return "?"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- what the execution did -------------------------------------------------------------------
@dataclass
class Path:
    """The states entered (with how they ended) and the transitions taken."""

    entered: dict[str, list[Step]] = field(default_factory=dict)
    taken: set[tuple[str, str, str]] = field(default_factory=set)  # (source, target, edge kind)

    def status(self, name: str) -> str:
        steps = self.entered.get(name, [])
        for status in (StepStatus.FAILED, StepStatus.RUNNING, StepStatus.ABORTED, StepStatus.CAUGHT):
            if any(s.status is status for s in steps):
                return status.value
        return StepStatus.OK.value if steps else "not-entered"


def executed_path(timeline: Timeline, graph: Graph) -> Path:
    path = Path()
    for step in timeline.steps:
        path.entered.setdefault(step.name, []).append(step)
    edges = _all_edges(graph)
    # Consecutive steps of one branch of one container instance are the transitions taken;
    # a container's instance is the latest of that name entered before the step.
    scopes: dict[tuple[int, int], list[Step]] = {}
    branch_of = _branch_index(graph)
    for index, step in enumerate(timeline.steps):
        container = -1
        if step.parent is not None:
            container = max(
                (i for i, s in enumerate(timeline.steps[:index]) if s.name == step.parent),
                default=-1,
            )
        scopes.setdefault((container, branch_of.get(step.name, 0)), []).append(step)
    for steps in scopes.values():
        for before, after in itertools.pairwise(steps):
            candidates = [e for e in edges.get(before.name, []) if e.target == after.name]
            caught = before.status is StepStatus.CAUGHT
            chosen = [e for e in candidates if (e.kind == "catch") == caught]
            if caught and before.error:
                matching = [e for e in chosen if _catches(e, before.error)]
                chosen = matching[:1] or chosen[:1]
            for edge in chosen or candidates:
                path.taken.add((edge.source, edge.target, edge.kind))
    return path


def _catches(edge: Edge, error: str) -> bool:
    return (
        error in edge.errors
        or "States.ALL" in edge.errors
        or ("States.TaskFailed" in edge.errors and not error.startswith("States."))
    )


def _all_edges(graph: Graph) -> dict[str, list[Edge]]:
    found: dict[str, list[Edge]] = {}
    for edge in graph.edges:
        found.setdefault(edge.source, []).append(edge)
    for state in graph.states.values():
        for branch in state.branches:
            for source, edges in _all_edges(branch).items():
                found.setdefault(source, []).extend(edges)
    return found


def _branch_index(graph: Graph) -> dict[str, int]:
    found: dict[str, int] = {}
    for state in graph.states.values():
        for number, branch in enumerate(state.branches):
            for name in branch.states:
                found[name] = number
            found.update({k: v for k, v in _branch_index(branch).items() if k not in branch.states})
    return found
