"""One execution of the failover as a single self-contained HTML page.

The page holds the state machine drawn as a graph (laid out here, as inline SVG), the path
this execution took through it highlighted, and a timeline of its steps. It is built from
what ``DescribeStateMachineForExecution``, ``DescribeExecution`` and ``GetExecutionHistory``
return, nothing else: this module makes no AWS call and loads nothing at view time (a
strict Content-Security-Policy says so to the browser).

The layout is a small layered ("Sugiyama") drawing: back edges found by a depth-first walk
from StartAt, layers by longest path, long edges to one target merged into one rail of
dummy slots (so eight Catch edges to FailFailover make one line, not eight), crossings
reduced by barycentre sweeps, and x positions that keep each node over its neighbours
without overlaps (isotonic regression). Parallel and Map states are drawn as boxes with
each branch laid out inside them.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from swr.timeline import Step, StepStatus, Timeline, ToSimulated, build_timeline, readable_cause
from swr.trigger_input import app_of, kind_of

CONTAINERS = frozenset({"Parallel", "Map"})


class DefinitionError(ValueError):
    """The state machine definition is not one this page can draw."""


# --- the definition as a graph ----------------------------------------------------------------
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
                label = _shorten(", ".join(named), 26) if named else ""
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
    return _shorten(_condition(rule), 30), whole


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


# --- layout -----------------------------------------------------------------------------------
FONT_SIZE = 12.0
CHAR_WIDTH = 0.64 * FONT_SIZE  # generous for bold sans-serif: labels must fit their boxes
NODE_HEIGHT = 40.0
NODE_MIN_WIDTH = 104.0
NODE_PAD = 22.0
LAYER_GAP = 46.0  # room between layers for curves and edge labels
NODE_GAP = 28.0
RAIL_WIDTH = 12.0
BOX_PAD = 16.0  # inside a Parallel box, around its branches
BOX_HEADER = 30.0
START = "\x00start"  # the entry marker above StartAt (a name no state can have)
START_SIZE = 14.0


@dataclass
class Placed:
    name: str
    x: float  # left
    y: float  # top
    w: float
    h: float
    inner: list[Drawing] = field(default_factory=list)  # a container's branches

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Route:
    edge: Edge
    points: list[tuple[float, float, str]]  # x, y, tangent ("v" vertical, "h" horizontal)
    back: bool
    drop: bool = False  # leaves a state shorter than its layer: straight down to the layer's bottom first


@dataclass
class Drawing:
    width: float
    height: float
    nodes: dict[str, Placed]
    routes: list[Route]

    def shifted(self, dx: float, dy: float) -> Drawing:
        return Drawing(
            self.width,
            self.height,
            {
                n: Placed(p.name, p.x + dx, p.y + dy, p.w, p.h, [d.shifted(dx, dy) for d in p.inner])
                for n, p in self.nodes.items()
            },
            [Route(r.edge, [(x + dx, y + dy, t) for x, y, t in r.points], r.back) for r in self.routes],
        )


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * 0.64 * size


def lay_out(graph: Graph, *, entry: bool = False) -> Drawing:
    """Positions for every state of ``graph`` (and, inside containers, of their branches)
    and a route for every edge; ``entry`` adds the start marker above StartAt."""
    sizes: dict[str, tuple[float, float]] = {}
    inner: dict[str, list[Drawing]] = {}
    for name, state in graph.states.items():
        if state.branches:
            drawings = [lay_out(branch) for branch in state.branches]
            inner[name] = drawings
            width = sum(d.width for d in drawings) + NODE_GAP * (len(drawings) - 1) + 2 * BOX_PAD
            width = max(width, text_width(name) + 2 * NODE_PAD)
            height = BOX_HEADER + max(d.height for d in drawings) + BOX_PAD
            sizes[name] = (width, height)
        else:
            sizes[name] = (max(NODE_MIN_WIDTH, text_width(name) + 2 * NODE_PAD), NODE_HEIGHT)
    edges = list(graph.edges)
    if entry:
        sizes[START] = (START_SIZE, START_SIZE)
        edges.insert(0, Edge(START, graph.start, "start"))

    # 1-2. Back edges (those that close a cycle in a depth-first walk from the entry) and
    #      layers (longest path over the other edges). Which edges end up "back" depends on
    #      the order the walk takes them: a Choice that jumps ahead (a resumed failover) must
    #      not turn the normal path's edges into back edges. Several orders are tried and the
    #      drawing with the shortest edges in total wins.
    root = START if entry else graph.start
    best_cut: tuple[float, set[int], dict[str, int], list[str]] | None = None
    for order_edges in _walk_orders(edges):
        back, order = _back_edges(root, list(sizes), order_edges)
        forward = [e for e in edges if id(e) not in back and e.source != e.target]
        candidate = _longest_path_layers(list(sizes), order, forward)
        span = sum(abs(candidate[e.target] - candidate[e.source]) for e in edges) + 2.0 * len(back)
        if best_cut is None or span < best_cut[0]:
            best_cut = (span, back, candidate, order)
    assert best_cut is not None
    _, back, layer, _ = best_cut
    # Within a layer, first seen first with Next edges taken first: the normal path on the left.
    order = _back_edges(root, list(sizes), list(_walk_orders(edges))[2])[1]
    depth = max(layer.values()) + 1

    # 3. Long edges run through rails: one dummy slot per layer crossed, shared by the edges
    #    that go to the same state in the same direction.
    rails: dict[tuple[str, bool], dict[int, str]] = {}
    hops: dict[int, list[str]] = {}  # edge -> the items its route passes, in layer order

    def rail(target: str, upward: bool, at: int) -> str:
        slots = rails.setdefault((target, upward), {})
        if at not in slots:
            slots[at] = f"\x00rail:{'up' if upward else 'down'}:{target}:{at}"
            layer[slots[at]] = at
            sizes[slots[at]] = (RAIL_WIDTH, 0.0)
        return slots[at]

    for edge in edges:
        if edge.source == edge.target:
            hops[id(edge)] = []
            continue
        upward = id(edge) in back
        first, last = sorted((layer[edge.source], layer[edge.target]))
        hops[id(edge)] = [rail(edge.target, upward, at) for at in range(first + 1, last)]

    # Links between items of adjacent layers, for ordering and positioning.
    links: set[tuple[str, str]] = set()
    for edge in edges:
        if edge.source == edge.target:
            continue
        upper, lower = (edge.target, edge.source) if id(edge) in back else (edge.source, edge.target)
        chain = [upper, *hops[id(edge)], lower]
        links.update(itertools.pairwise(chain))
    above: dict[str, list[str]] = {n: [] for n in sizes}
    below: dict[str, list[str]] = {n: [] for n in sizes}
    for upper, lower in links:
        above[lower].append(upper)
        below[upper].append(lower)

    # 4. Order within layers: first seen first (the Next chain on the left), then barycentre
    #    sweeps; the order with the fewest crossings wins.
    rank = {n: i for i, n in enumerate(order)}
    layers: list[list[str]] = [[] for _ in range(depth)]
    for name in sorted(sizes, key=lambda n: (rank.get(n, len(rank)), n)):
        layers[layer[name]].append(name)
    best = [list(row) for row in layers]
    best_crossings = _crossings(best, below)
    for sweep in range(12):
        downward = sweep % 2 == 0
        rows = list(range(1, depth)) if downward else list(range(depth - 2, -1, -1))
        for index in rows:
            neighbours = above if downward else below
            reference = {n: i for i, n in enumerate(layers[index - 1 if downward else index + 1])}
            current = {n: i for i, n in enumerate(layers[index])}
            keys = {n: (_barycentre(n, neighbours, reference, current), current[n]) for n in layers[index]}
            layers[index].sort(key=keys.__getitem__)
        crossings = _crossings(layers, below)
        if crossings < best_crossings:
            best, best_crossings = [list(row) for row in layers], crossings
    layers = best

    # 5. x: each item over the mean of its neighbours, in order, without overlaps.
    centre: dict[str, float] = {}
    for row in layers:
        x = 0.0
        for name in row:
            centre[name] = x + sizes[name][0] / 2
            x += sizes[name][0] + NODE_GAP
    for sweep in range(16):
        downward = sweep % 2 == 0
        for index in range(depth) if downward else range(depth - 1, -1, -1):
            row = layers[index]
            wanted = []
            for name in row:
                linked = above[name] + below[name] if sweep >= 12 else (above if downward else below)[name]
                linked = linked or above[name] + below[name]
                wanted.append(sum(centre[n] for n in linked) / len(linked) if linked else centre[name])
            weights = [3.0 if name in graph.states and len(row) > 1 else 1.0 for name in row]
            gaps = [_gap(a, b, sizes) for a, b in itertools.pairwise(row)]
            for name, x in zip(row, _spread(wanted, gaps, weights), strict=True):
                centre[name] = x
    _straighten(rails, layers, centre, sizes)
    left = min(centre[n] - sizes[n][0] / 2 for n in sizes)
    right = max(centre[n] + sizes[n][0] / 2 for n in sizes)

    # 6. y: each layer as tall as its tallest item, items centred in their layer.
    tops: list[float] = []
    y = 0.0
    for row in layers:
        tops.append(y)
        y += max((sizes[n][1] for n in row), default=0.0) + LAYER_GAP
    heights = [max((sizes[n][1] for n in row), default=0.0) for row in layers]
    height = y - LAYER_GAP

    nodes: dict[str, Placed] = {}
    for name, (w, h) in sizes.items():
        if name.startswith("\x00rail"):
            continue
        # Top-aligned: an edge to a short state beside a tall container stays above it.
        top = tops[layer[name]]
        placed = Placed(name, centre[name] - w / 2 - left, top, w, h)
        for drawing, branch_left in zip(inner.get(name, []), _branch_lefts(placed, inner.get(name, [])), strict=True):
            placed.inner.append(drawing.shifted(branch_left, placed.y + BOX_HEADER))
        nodes[name] = placed

    def slot(name: str) -> tuple[float, float, float]:
        """x, top and bottom of a rail slot: the height of its whole layer."""
        at = layer[name]
        return centre[name] - left, tops[at], tops[at] + heights[at]

    routes = [
        _route(edge, nodes, [slot(h) for h in hops[id(edge)]], id(edge) in back, slot(edge.source)[2]) for edge in edges
    ]
    _spread_ports(routes, nodes)
    return Drawing(right - left, height, nodes, routes)


def _walk_orders(edges: list[Edge]) -> Iterable[list[Edge]]:
    """Edge orders for the depth-first walk: as written, reversed, Next edges first, and a
    few seeded shuffles (the graphs are small; the result is the same on every run)."""
    import random

    yield edges
    yield list(reversed(edges))
    priority = {"start": 0, "next": 1, "default": 2, "choice": 3, "catch": 4}
    yield sorted(edges, key=lambda e: priority.get(e.kind, 5))
    yield sorted(reversed(edges), key=lambda e: priority.get(e.kind, 5))
    shuffler = random.Random(7)
    for _ in range(24):
        shuffled = list(edges)
        shuffler.shuffle(shuffled)
        yield shuffled


def _back_edges(root: str, names: list[str], edges: list[Edge]) -> tuple[set[int], list[str]]:
    out: dict[str, list[Edge]] = {n: [] for n in names}
    for edge in edges:
        out[edge.source].append(edge)
    back: set[int] = set()
    order: list[str] = []
    seen: dict[str, int] = {}  # 1 on the walk's stack, 2 done

    def walk(node: str) -> None:
        seen[node] = 1
        order.append(node)
        for edge in out[node]:
            if seen.get(edge.target) == 1:
                back.add(id(edge))
            elif edge.target not in seen:
                walk(edge.target)
        seen[node] = 2

    walk(root)
    for name in names:  # states nothing leads to still get drawn
        if name not in seen:
            walk(name)
    return back, order


def _longest_path_layers(names: list[str], order: list[str], forward: list[Edge]) -> dict[str, int]:
    layer = {n: 0 for n in names}
    for name in _topological(order, forward):
        for edge in forward:
            if edge.source == name:
                layer[edge.target] = max(layer[edge.target], layer[name] + 1)
    return layer


def _barycentre(
    name: str, neighbours: Mapping[str, list[str]], reference: Mapping[str, int], current: Mapping[str, int]
) -> float:
    linked = [reference[n] for n in neighbours[name] if n in reference]
    return sum(linked) / len(linked) if linked else current[name]


def _straighten(
    rails: Mapping[Any, Mapping[int, str]],
    layers: list[list[str]],
    centre: dict[str, float],
    sizes: Mapping[str, tuple[float, float]],
) -> None:
    """A rail runs straight down where its layers leave room: one x for all its slots."""
    position = {n: (index, i) for index, row in enumerate(layers) for i, n in enumerate(row)}
    # Neighbouring rails hold each other in place: a few rounds let them move together.
    for slots in [s for _ in range(4) for s in rails.values()]:
        names = list(slots.values())
        low, high = -float("inf"), float("inf")
        for name in names:
            index, i = position[name]
            row = layers[index]
            if i > 0:
                low = max(low, centre[row[i - 1]] + _gap(row[i - 1], name, sizes))
            if i < len(row) - 1:
                high = min(high, centre[row[i + 1]] - _gap(name, row[i + 1], sizes))
        if low <= high:
            middle = sorted(centre[n] for n in names)[len(names) // 2]
            for name in names:
                centre[name] = min(max(middle, low), high)


def _gap(a: str, b: str, sizes: Mapping[str, tuple[float, float]]) -> float:
    rails = a.startswith("\x00rail") + b.startswith("\x00rail")
    spacing = NODE_GAP if rails == 0 else (NODE_GAP / 2 if rails == 1 else RAIL_WIDTH / 2)
    return sizes[a][0] / 2 + sizes[b][0] / 2 + spacing


def _branch_lefts(box: Placed, drawings: Sequence[Drawing]) -> list[float]:
    used = sum(d.width for d in drawings) + NODE_GAP * (len(drawings) - 1)
    x = box.x + (box.w - used) / 2
    lefts = []
    for drawing in drawings:
        lefts.append(x)
        x += drawing.width + NODE_GAP
    return lefts


def _topological(order: list[str], forward: list[Edge]) -> list[str]:
    incoming = {n: 0 for n in order}
    for edge in forward:
        incoming[edge.target] = incoming.get(edge.target, 0) + 1
    ready = [n for n in order if incoming[n] == 0]
    result: list[str] = []
    while ready:
        name = ready.pop(0)
        result.append(name)
        for edge in forward:
            if edge.source == name:
                incoming[edge.target] -= 1
                if incoming[edge.target] == 0:
                    ready.append(edge.target)
    return result


def _crossings(layers: list[list[str]], below: Mapping[str, list[str]]) -> int:
    total = 0
    for upper, lower in itertools.pairwise(layers):
        position = {n: i for i, n in enumerate(lower)}
        pairs = [(i, position[t]) for i, n in enumerate(upper) for t in below[n] if t in position]
        total += sum(1 for a in pairs for b in pairs if a[0] < b[0] and a[1] > b[1])
    return total


def _spread(wanted: list[float], gaps: list[float], weights: list[float]) -> list[float]:
    """Positions closest to ``wanted`` (weighted least squares) that keep the order and at
    least ``gaps`` between neighbours: pool-adjacent-violators on the gap-shifted values."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for value, offset, weight in zip(wanted, offsets, weights, strict=True):
        blocks.append([(value - offset) * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight_sum, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight_sum
            blocks[-1][2] += count
    shifted: list[float] = []
    for total, weight_sum, count in blocks:
        shifted += [total / weight_sum] * int(count)
    return [s + o for s, o in zip(shifted, offsets, strict=True)]


def _route(
    edge: Edge, nodes: Mapping[str, Placed], slots: list[tuple[float, float, float]], back: bool, layer_bottom: float
) -> Route:
    source, target = nodes[edge.source], nodes[edge.target]
    if edge.source == edge.target:  # a state that loops on itself: a bulge on its right
        right = source.x + source.w
        points = [(right, source.cy - 8, "h"), (right + 28, source.cy, "v"), (right, source.cy + 8, "h")]
        return Route(edge, points, True)
    if not back:
        points = [(source.cx, source.y + source.h, "v")]
        # A state beside a taller one (a container) leaves straight down to the bottom of its
        # layer: heading for the next layer at once would cut through its neighbour.
        drop = layer_bottom > source.y + source.h + 1
        if drop:
            points.append((source.cx, layer_bottom, "v"))
        for x, top, bottom in slots:
            points += [(x, top, "v"), (x, bottom, "v")]
        points.append((target.cx, target.y, "v"))
        return Route(edge, points, False, drop)
    # A back edge leaves the lower state by the side facing its rail and comes back up to the
    # upper state's side: it never runs through the states between them.
    rail_x = slots[0][0] if slots else max(source.x + source.w, target.x + target.w) + 30
    side = source.x + source.w if rail_x >= source.cx else source.x
    points = [(side, source.cy, "h")]
    for x, top, bottom in reversed(slots):
        points += [(x, bottom, "v"), (x, top, "v")]
    if not slots:
        points.append((rail_x, (source.cy + target.cy) / 2, "v"))
    end_side = target.x + target.w if rail_x >= target.cx else target.x
    points.append((end_side, target.cy, "h"))
    return Route(edge, points, True)


def _spread_ports(routes: list[Route], nodes: Mapping[str, Placed]) -> None:
    """Edges leaving a state's bottom (or entering its top) get their own point along it,
    in the order of where they go (or come from), so arrowheads do not pile up; edges that
    arrive along the same rail share one."""
    ends: dict[tuple[str, str], dict[float, list[tuple[Route, int]]]] = {}
    for route in routes:
        if route.back:
            continue
        first = 2 if route.drop else 1  # the first point past the state (and its drop)
        ends.setdefault((route.edge.source, "out"), {}).setdefault(route.points[first][0], []).append((route, 0))
        ends.setdefault((route.edge.target, "in"), {}).setdefault(route.points[-2][0], []).append((route, -1))
    for (name, _), by_x in ends.items():
        if len(by_x) < 2:
            continue
        node = nodes[name]
        span = min(node.w * 0.6, 18.0 * (len(by_x) - 1))
        for number, far_x in enumerate(sorted(by_x)):
            x = node.cx - span / 2 + span * number / (len(by_x) - 1)
            for route, index in by_x[far_x]:
                moved = [index, 1] if index == 0 and route.drop else [index]
                for at in moved:
                    _, y, tangent = route.points[at]
                    route.points[at] = (x, y, tangent)


# --- drawing ----------------------------------------------------------------------------------
HIGHLIGHT = "#cfe4ff"  # fill of a state this execution entered; the browser test looks for it
HIGHLIGHT_STROKE = "#1858c4"
EDGE = "#9aa4b1"
FAILED_FILL, FAILED_STROKE = "#ffd6d2", "#c62828"
CAUGHT_STROKE = "#d97706"
MARGIN = 24.0


Point = tuple[float, float]


def _segments(points: Sequence[tuple[float, float, str]]) -> list[tuple[Point, Point, Point, Point]]:
    """A route as cubic Béziers: straight runs along a rail, curves with vertical tangents
    between layers and horizontal ones at the side of a state."""
    segments = []
    for (x1, y1, t1), (x2, y2, t2) in itertools.pairwise(points):
        if (x1 == x2 and t1 == t2 == "v") or (y1 == y2 and t1 == t2 == "h"):
            c1, c2 = (x1, y1), (x2, y2)
        else:
            c1 = (x1 + (x2 - x1) * 0.7, y1) if t1 == "h" else (x1, y1 + (y2 - y1) * 0.5)
            c2 = (x2 - (x2 - x1) * 0.7, y2) if t2 == "h" else (x2, y2 - (y2 - y1) * 0.5)
        segments.append(((x1, y1), c1, c2, (x2, y2)))
    return segments


def _path_data(points: Sequence[tuple[float, float, str]]) -> str:
    x0, y0, _ = points[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for _, c1, c2, (x2, y2) in _segments(points):
        parts.append(f"C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}")
    return " ".join(parts)


def _on_curve(segment: tuple[Point, Point, Point, Point], t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = segment
    u = 1 - t
    return (
        u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
        u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
    )


Box = tuple[float, float, float, float]  # left, top, right, bottom
LABEL_SIZE = 10.5


def _place_label(route: Route, text: str, taken: list[Box]) -> Point:
    """A point on the edge for its label, as near its source as it can be without covering
    a state or another label; where nothing is free, the first choice."""
    width, height = text_width(text, LABEL_SIZE) * 0.92 + 6, LABEL_SIZE + 4
    first: Point | None = None
    for segment in _segments(route.points):
        for t in (0.5, 0.35, 0.65, 0.2, 0.8):
            x, y = _on_curve(segment, t)
            box = (x - width / 2, y - height / 2, x + width / 2, y + height / 2)
            first = first or (x, y)
            if not any(_overlap(box, other) for other in taken):
                taken.append(box)
                return x, y
    assert first is not None
    return first


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def svg_graph(graph: Graph, path: Path) -> str:
    drawing = lay_out(graph, entry=True)
    width, height = drawing.width + 2 * MARGIN, drawing.height + 2 * MARGIN
    drawing = drawing.shifted(MARGIN, MARGIN)
    boxes: list[str] = []
    lines: list[str] = []
    wanted: list[tuple[bool, Route, str]] = []  # (taken, route, class) of each labelled edge
    _draw(drawing, graph, path, boxes, lines, wanted)
    taken = _obstacles(drawing)
    labels = []
    # Labels of the path taken first: they get the best places.
    for _, route, classes in sorted(wanted, key=lambda item: not item[0]):
        x, y = _place_label(route, route.edge.label, taken)
        labels.append(
            f'<text class="{classes}" x="{x:.1f}" y="{y + LABEL_SIZE * 0.35:.1f}">{escape(route.edge.label)}</text>'
        )
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="the state machine">'
        "<defs>"
        + "".join(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse"'
            f' markerWidth="{9 if name == "plain" else 11}" markerHeight="{9 if name == "plain" else 11}"'
            f' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour in (("plain", EDGE), ("taken", HIGHLIGHT_STROKE))
        )
        + "</defs>"
        + "".join(boxes)
        + '<g class="edges">'
        + "".join(lines)
        + "</g>"
        + '<g class="labels">'
        + "".join(labels)
        + "</g></svg>"
    )


def _obstacles(drawing: Drawing) -> list[Box]:
    """What an edge label must not cover: every state, and a container's title strip."""
    found: list[Box] = []
    for placed in drawing.nodes.values():
        bottom = placed.y + (BOX_HEADER if placed.inner else placed.h)
        found.append((placed.x, placed.y, placed.x + placed.w, bottom))
        for inner in placed.inner:
            found += _obstacles(inner)
    return found


def _draw(
    drawing: Drawing,
    graph: Graph,
    path: Path,
    boxes: list[str],
    lines: list[str],
    labels: list[tuple[bool, Route, str]],
) -> None:
    # Containers first (their branches on top of them), plain edges under taken ones.
    routes = sorted(drawing.routes, key=lambda r: (r.edge.source, r.edge.target, r.edge.kind) in path.taken)
    for route in routes:
        edge = route.edge
        taken = (edge.source, edge.target, edge.kind) in path.taken or (
            edge.kind == "start" and graph.start in path.entered
        )
        edge_classes = " ".join(["edge", edge.kind] + (["taken"] if taken else []))
        title = f"{edge.source if edge.kind != 'start' else 'start'} → {edge.target}"
        if edge.title:
            title += f" ({edge.title})"
        lines.append(
            f'<path class="{edge_classes}" d="{_path_data(route.points)}"'
            f' data-from="{_attr(edge.source) if edge.kind != "start" else ""}" data-to="{_attr(edge.target)}"'
            f' marker-end="url(#arrow-{"taken" if taken else "plain"})"><title>{escape(title)}</title></path>'
        )
        if edge.label:
            classes = "edge-label" + (" taken" if taken else "") + (" catch" if edge.kind == "catch" else "")
            labels.append((taken, route, classes))
    for name, placed in drawing.nodes.items():
        if name == START:
            entered = graph.start in path.entered
            boxes.append(
                f'<circle class="start{" taken" if entered else ""}" cx="{placed.cx:.1f}" cy="{placed.cy:.1f}"'
                f' r="{START_SIZE / 2:.1f}"><title>start</title></circle>'
            )
            continue
        boxes.append(_node(graph.states[name], placed, path))
        for branch, inner in zip(graph.states[name].branches, placed.inner, strict=True):
            _draw(inner, branch, path, boxes, lines, labels)


def _node(state: State, placed: Placed, path: Path) -> str:
    steps = path.entered.get(state.name, [])
    status = path.status(state.name)
    classes = ["state", state.type.lower(), status] + (["executed"] if steps else [])
    x, y, w, h = placed.x, placed.y, placed.w, placed.h
    tooltip = [f"{state.name} ({state.type})"]
    if state.comment:
        tooltip.append(state.comment)
    if steps:
        tooltip.append(f"entered {len(steps)}\u00d7, {status}")
    for step in steps:
        if step.error:
            tooltip.append(f"{step.error}: {readable_cause(step.cause)}")
    head = (
        f'<g class="{" ".join(classes)}" data-state="{_attr(state.name)}" data-type="{_attr(state.type)}"'
        f' data-executed="{"true" if steps else "false"}" data-status="{status}">'
        f"<title>{escape(chr(10).join(tooltip))}</title>"
    )
    if state.branches:
        body = (
            f'<rect class="shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="10"/>'
            f'<text class="name" x="{x + 12:.1f}" y="{y + 19:.1f}">{escape(state.name)}</text>'
            f'<text class="kind" x="{x + w - 12:.1f}" y="{y + 19:.1f}" text-anchor="end">{escape(state.type)}'
            f"{_badge(steps)}</text>"
        )
        return head + body + "</g>"
    if state.type == "Choice":
        inset = 12.0
        shape = (
            f'<polygon class="shape" points="{x:.1f},{y + h / 2:.1f} {x + inset:.1f},{y:.1f}'
            f" {x + w - inset:.1f},{y:.1f} {x + w:.1f},{y + h / 2:.1f}"
            f' {x + w - inset:.1f},{y + h:.1f} {x + inset:.1f},{y + h:.1f}"/>'
        )
    else:
        radius = {"Wait": h / 2, "Succeed": 4.0, "Fail": 4.0, "Pass": 4.0}.get(state.type, 8.0)
        shape = f'<rect class="shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{radius:.1f}"/>'
        if state.type in ("Succeed", "Fail"):  # ends: a double border
            shape += (
                f'<rect class="end-ring" x="{x + 3:.1f}" y="{y + 3:.1f}" width="{w - 6:.1f}" height="{h - 6:.1f}"'
                ' rx="2"/>'
            )
    body = (
        shape
        + f'<text class="name" x="{x + w / 2:.1f}" y="{y + 17:.1f}" text-anchor="middle">{escape(state.name)}</text>'
        + f'<text class="kind" x="{x + w / 2:.1f}" y="{y + 31:.1f}" text-anchor="middle">{escape(state.type)}'
        + f"{_badge(steps)}</text>"
    )
    return head + body + "</g>"


def _badge(steps: list[Step]) -> str:
    parts = []
    if len(steps) > 1:
        parts.append(f"\u00d7{len(steps)}")
    retries = sum(s.retries for s in steps)
    if retries:
        parts.append(f"{retries} {'retry' if retries == 1 else 'retries'}")
    return escape(" · " + ", ".join(parts)) if parts else ""


def _attr(text: str) -> str:
    return escape(text, quote=True)


# --- the page ---------------------------------------------------------------------------------
STYLE = """
:root { color-scheme: light; }
body { font: 13px/1.45 "Liberation Sans", Arial, Helvetica, sans-serif; color: #1f2933; margin: 0;
  background: #f4f6f8; }
header { background: #fff; border-bottom: 1px solid #d8dee4; padding: 14px 24px; }
h1 { font-size: 18px; margin: 0 0 6px; }
h2 { font-size: 15px; margin: 0 0 8px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: bold;
  vertical-align: 2px; color: #fff; background: #607080; }
.status.SUCCEEDED { background: #2e7d32; } .status.FAILED, .status.TIMED_OUT { background: #c62828; }
.status.RUNNING { background: #1858c4; } .status.ABORTED { background: #6b7280; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0 0; }
dl.facts dt { color: #5b6670; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
main { display: flex; flex-wrap: wrap; gap: 18px; padding: 18px 24px; align-items: flex-start; }
section { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 12px 14px; }
section.graph { flex: 0 1 auto; min-width: 0; max-width: 100%; box-sizing: border-box; }
section.timeline { flex: 1 1 480px; min-width: 0; }
.legend { font-size: 12px; color: #5b6670; margin: 0 0 6px; }
.legend span { margin-right: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; vertical-align: -1px;
  margin-right: 4px; border: 1.5px solid #9aa4b1; background: #fff; }
.legend i.executed { background: #cfe4ff; border-color: #1858c4; }
.legend i.failed { background: #ffd6d2; border-color: #c62828; }
.legend i.caught { background: #cfe4ff; border-color: #d97706; }
.legend i.catch { border-style: dashed; border-width: 0 0 2px; border-radius: 0; height: 6px; }
svg.graph { max-width: 100%; height: auto; }
svg.graph text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; }
.state .shape { fill: #fff; stroke: #9aa4b1; stroke-width: 1.3; }
.state .name { font-size: 12px; font-weight: bold; fill: #66717d; }
.state .kind { font-size: 10px; fill: #8a949e; }
.state .end-ring { fill: none; stroke: #c3c9cf; stroke-width: 1; }
.state.executed .shape { fill: #cfe4ff; stroke: #1858c4; stroke-width: 2.4; }
.state.executed .name { fill: #0b2a5b; } .state.executed .kind { fill: #33527f; }
.state.executed .end-ring { stroke: #1858c4; }
.state.parallel .shape, .state.map .shape { fill: #fafbfc; stroke-dasharray: 6 3; }
.state.parallel.executed .shape, .state.map.executed .shape { fill: #eef5ff; }
.state.caught .shape { stroke: #d97706; }
.state.failed .shape { fill: #ffd6d2; stroke: #c62828; stroke-width: 2.6; }
.state.failed .name { fill: #7f1010; }
.state.running .shape { stroke-dasharray: 5 3; }
.state.aborted .shape { fill: #e5e7eb; stroke: #6b7280; }
.start { fill: #9aa4b1; } .start.taken { fill: #1858c4; }
.edge { fill: none; stroke: #9aa4b1; stroke-width: 1.3; }
.edge.catch { stroke-dasharray: 5 4; }
.edge.taken { stroke: #1858c4; stroke-width: 3; }
.edge-label { font-size: 10.5px; fill: #5b6670; text-anchor: middle; paint-order: stroke;
  stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.edge-label.catch { fill: #9a5a07; font-style: italic; }
.edge-label.taken { fill: #0b3d91; font-weight: bold; }
table.steps { border-collapse: collapse; width: 100%; }
table.steps th { text-align: left; font-size: 12px; color: #5b6670; border-bottom: 1px solid #d8dee4;
  padding: 4px 6px; }
table.steps td { padding: 3px 6px; border-bottom: 1px solid #eef1f4; vertical-align: top; }
td.num { width: 1%; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.name { white-space: nowrap; font-weight: bold; }
td.name .d1 { padding-left: 14px; } td.name .d2 { padding-left: 28px; } td.name .d3 { padding-left: 42px; }
td.name small { font-weight: normal; color: #7a8591; margin-left: 4px; }
td.bar { width: 30%; min-width: 120px; }
td.bar svg { display: block; width: 100%; height: 14px; }
.bar rect.track { fill: #eef1f4; }
.bar rect.ok { fill: #1858c4; } .bar rect.caught { fill: #d97706; } .bar rect.failed { fill: #c62828; }
.bar rect.running { fill: #60a5fa; } .bar rect.aborted { fill: #9ca3af; }
.st { font-size: 12px; white-space: nowrap; }
.st.failed { color: #c62828; font-weight: bold; } .st.caught { color: #b45309; font-weight: bold; }
.st.aborted { color: #6b7280; } .st.running { color: #1858c4; }
.error { color: #7f1010; font-size: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }
.retried { color: #92400e; font-size: 12px; }
details { margin-top: 10px; } details pre { background: #f4f6f8; padding: 8px; overflow-x: auto;
  font-size: 12px; max-height: 360px; white-space: pre-wrap; overflow-wrap: anywhere; }
footer { color: #7a8591; font-size: 11px; padding: 0 24px 18px; }
"""


def render_report(
    definition: str | Mapping[str, Any],
    described: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    to_simulated: ToSimulated | None = None,
    *,
    generated_at: datetime | None = None,
) -> str:
    """The HTML page of one execution: ``definition`` as DescribeStateMachineForExecution
    gives it, ``described`` as DescribeExecution, ``events`` its whole history."""
    graph = parse_definition(definition)
    timeline = build_timeline(described, events, to_simulated)
    path = executed_path(timeline, graph)
    style_hash = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    # Nothing may load: no scripts, fonts, images, frames or connections; only this page's
    # own style element (by its hash), so even injected markup could not fetch anything.
    policy = f"default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'"
    title = f"swr execution {timeline.name}: {timeline.status}"
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_attr(policy)}">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            _header(timeline, described),
            "<main>",
            '<section class="graph"><h2>State machine</h2>',
            _legend(timeline),
            svg_graph(graph, path),
            "</section>",
            '<section class="timeline"><h2>Timeline</h2>',
            _timeline_table(timeline),
            _documents(timeline),
            "</section></main>",
            f"<footer>generated by swr report at {escape(generated)} from DescribeExecution and"
            " GetExecutionHistory; self-contained: it loads nothing.</footer>",
            "</body></html>\n",
        ]
    )


def _header(timeline: Timeline, described: Mapping[str, Any]) -> str:
    trigger = timeline.input if isinstance(timeline.input, dict) else {}
    output = timeline.output if isinstance(timeline.output, dict) else {}
    admitted = _admit_output(timeline)
    app = app_of(trigger) or output.get("app") or admitted.get("app")
    facts: list[tuple[str, str]] = [
        ("outcome", outcome_text(timeline)),
        ("trigger", _trigger_text(trigger, admitted)),
        ("application", str(app) if app else "unknown"),
        ("started", _when(described.get("startDate"))),
        ("stopped", _when(described.get("stopDate")) if described.get("stopDate") else "not yet (still running)"),
    ]
    clock = "simulated seconds" if timeline.clock == "simulated" else "seconds"
    if timeline.duration_seconds is not None:
        facts.append(("duration", f"{timeline.duration_seconds:.1f} {clock}"))
    if timeline.retries:
        facts.append(("retries", str(timeline.retries)))
    facts.append(("execution", timeline.execution_arn))
    if timeline.state_machine_arn:
        facts.append(("state machine", timeline.state_machine_arn))
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return (
        f'<header><h1>{escape(timeline.name)} <span class="status {_attr(timeline.status)}">'
        f"{escape(timeline.status)}</span></h1>"
        f'<dl class="facts">{rows}</dl></header>'
    )


def outcome_text(timeline: Timeline) -> str:
    """What became of the failover, in one line an operator reads first."""
    output = timeline.output if isinstance(timeline.output, dict) else {}
    if timeline.status == "SUCCEEDED":
        if output.get("outcome") == "recovered":
            return (
                f"recovered: {output.get('old_instance_id')} ({output.get('old_az')})"
                f" → {output.get('new_instance_id')} ({output.get('new_az')}), generation {output.get('generation')}"
            )
        if output.get("decision"):
            return f"{output['decision']}: {output.get('reason', '')}".rstrip(": ")
        return "succeeded"
    if timeline.status == "RUNNING":
        current = [s.name for s in timeline.steps if s.status is StepStatus.RUNNING]
        return "still running" + (f", in {', '.join(current)}" if current else "")
    if timeline.status == "ABORTED":
        where = [s.name for s in timeline.steps if s.status is StepStatus.ABORTED]
        return "aborted (stopped by an operator or the API)" + (f" in {', '.join(where)}" if where else "")
    message = readable_cause(timeline.cause)
    return f"{timeline.status.lower()}: {timeline.error or 'no error recorded'}" + (f": {message}" if message else "")


def _admit_output(timeline: Timeline) -> dict[str, Any]:
    # An execution Admit turned away ends with Admit's result: the app and the trigger's summary.
    output = timeline.output if isinstance(timeline.output, dict) else {}
    trigger = output.get("trigger")
    return {"app": output.get("app"), "trigger": trigger if isinstance(trigger, dict) else {}}


def _trigger_text(trigger: Mapping[str, Any], admitted: Mapping[str, Any]) -> str:
    kind = kind_of(trigger, unknown="unrecognised input")
    if kind == "drill":
        detail = f"by {trigger.get('requested_by') or 'an operator'}: {trigger.get('reason') or 'no reason given'}"
    else:
        detail = str(admitted.get("trigger", {}).get("summary") or trigger.get("source") or "")
    return f"{kind}" + (f" ({detail})" if detail else "")


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value) if value else "-"


def _legend(timeline: Timeline) -> str:
    return (
        '<p class="legend"><span><i class="executed"></i>entered by this execution</span>'
        "<span><i></i>not entered</span>"
        '<span><i class="caught"></i>failed, caught</span><span><i class="failed"></i>failed here</span>'
        '<span><i class="catch"></i>Catch</span><span>\u00d7N entered N times</span></p>'
    )


def _timeline_table(timeline: Timeline) -> str:
    clock = "simulated s" if timeline.clock == "simulated" else "s"
    if not timeline.steps:
        return '<p class="empty">No state entered yet.</p>'
    end = max(
        [timeline.duration_seconds or 0.0] + [s.offset_seconds + (s.duration_seconds or 0.0) for s in timeline.steps]
    )
    scale = 1000.0 / end if end > 0 else 0.0
    rows = []
    for step in timeline.steps:
        left = step.offset_seconds * scale
        width = max((step.duration_seconds or 0.0) * scale, 3.0)
        duration = "-" if step.duration_seconds is None else f"{step.duration_seconds:.1f}"
        status = step.status.value
        notes = []
        if step.retries:
            errors = ", ".join(dict.fromkeys(step.retried_errors))
            notes.append(
                f'<div class="retried">{step.retries} {"retry" if step.retries == 1 else "retries"}'
                f" after {escape(errors)}</div>"
            )
        if step.error:
            message = readable_cause(step.cause)
            notes.append(f'<div class="error">{escape(step.error)}{": " + escape(message) if message else ""}</div>')
        rows.append(
            f'<tr class="step {status}" data-state="{_attr(step.name)}" data-status="{status}">'
            f'<td class="num">{step.offset_seconds:.1f}</td>'
            f'<td class="name"><div class="d{min(step.depth, 3)}">{escape(step.name)}'
            f"<small>{escape(step.type)}</small></div></td>"
            f'<td class="bar"><svg class="bar" viewBox="0 0 1000 14" preserveAspectRatio="none"'
            f' role="img" aria-label="{_attr(duration)} {clock}">'
            f'<rect class="track" x="0" y="0" width="1000" height="14"/>'
            f'<rect class="{status}" x="{left:.1f}" y="1" width="{width:.1f}" height="12"/></svg></td>'
            f'<td class="num">{duration}</td>'
            f'<td><span class="st {status}">{status}</span>{"".join(notes)}</td></tr>'
        )
    return (
        f'<table class="steps"><thead><tr><th>start ({clock})</th><th>state</th><th>'
        f"0 to {end:.1f} {clock}</th><th>took</th><th>result</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _documents(timeline: Timeline) -> str:
    parts = []
    if timeline.error or timeline.cause:
        parts.append(
            f"<details open><summary>error and cause</summary><pre>{escape(timeline.error or '')}\n"
            f"{escape(_pretty(timeline.cause))}</pre></details>"
        )
    parts.append(f"<details><summary>input</summary><pre>{escape(_pretty(timeline.input))}</pre></details>")
    if timeline.output is not None:
        parts.append(f"<details><summary>output</summary><pre>{escape(_pretty(timeline.output))}</pre></details>")
    return "".join(parts)


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, default=str) if value is not None else ""


def warped(start: datetime, warp: float) -> Callable[[datetime], float] | None:
    """An emulator endpoint runs ``warp`` times faster than the wall clock: anchored at the
    execution's start, its history reads in simulated seconds. None on AWS (warp 1)."""
    if warp == 1.0:
        return None
    anchor = start.timestamp()

    def to_simulated(wall: datetime) -> float:
        return anchor + (wall.timestamp() - anchor) * warp

    return to_simulated
