"""Where each state of a graph goes, and the route of each edge.

A small layered ("Sugiyama") drawing: back edges found by a depth-first walk from StartAt,
layers by longest path, long edges to one target merged into one rail of dummy slots (so
eight Catch edges to FailFailover make one line, not eight), crossings reduced by
barycentre sweeps, and x positions that keep each node over its neighbours without
overlaps (isotonic regression). Parallel and Map states are boxes with each branch laid
out inside them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from swr.report.graph import Edge, Graph
from swr.report.routes import Route, Slot, route_of, spread_ports

FONT_SIZE = 12.0
EM_PER_CHAR = 0.64  # a character's width in ems: generous for bold sans-serif, labels must fit their boxes
NODE_HEIGHT = 40.0  # two lines: the state's name and its type
NODE_MIN_WIDTH = 104.0  # a short name still gets a box its type line fits in
NODE_PAD = 22.0  # left and right of a state's name
LAYER_GAP = 46.0  # room between layers for curves and edge labels
NODE_GAP = 28.0  # between neighbours in a layer, and between a container's branches
RAIL_WIDTH = 12.0  # a rail slot holds one line: neighbouring rails pack closely
BOX_PAD = 16.0  # inside a Parallel box, around its branches
BOX_HEADER = 30.0  # a container's title strip, above its branches
START = "\x00start"  # the entry marker above StartAt (a name no state can have)
START_SIZE = 14.0
RAIL = "\x00rail"  # how the names of rail slots begin (no state's name can)

# Which edges are "back" depends on the order the depth-first walk takes them: four fixed
# orders and this many shuffles are tried. The graphs are small, and the seed is fixed: the
# same definition is drawn the same on every run.
WALK_SHUFFLES = 24
WALK_SEED = 7
# The normal path first: the order the walk takes edges in when it lists states for the layers.
KIND_PRIORITY = {"start": 0, "next": 1, "default": 2, "choice": 3, "catch": 4}
# What a back edge costs when candidate cuts compete, in layers of edge length: it is drawn
# as a detour around the states it passes, longer than a forward edge over as many layers.
BACK_EDGE_COST = 2.0
# Barycentre sweeps (alternately down and up) over the order within layers; crossings stop
# improving well before on graphs of this size.
ORDER_SWEEPS = 12
# x sweeps: the first ones pull each item towards its neighbours on one side (alternately
# above and below), the last ones towards both, which settles the zigzag the former leave.
X_SWEEPS = 16
X_SWEEPS_ONE_SIDED = 12
# A state outweighs a rail slot (or the start marker) in a crowded layer: rails bend around
# states rather than pushing them off the line of their neighbours.
STATE_WEIGHT = 3.0
# Neighbouring rails hold each other in place: a few rounds of straightening let them move together.
STRAIGHTEN_ROUNDS = 4

Size = tuple[float, float]  # width, height


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
    return len(text) * EM_PER_CHAR * size


def lay_out(graph: Graph, *, entry: bool = False) -> Drawing:
    """Positions for every state of ``graph`` (and, inside containers, of their branches)
    and a route for every edge; ``entry`` adds the start marker above StartAt."""
    sizes, inner = _measure(graph)
    edges = list(graph.edges)
    if entry:
        sizes[START] = (START_SIZE, START_SIZE)
        edges.insert(0, Edge(START, graph.start, "start"))
    root = START if entry else graph.start
    back, layer = _cut_cycles(root, sizes, edges)
    # Within a layer, first seen first with Next edges taken first: the normal path on the left.
    order = _back_edges(root, list(sizes), _next_first(edges))[1]
    rails, hops = _rails(edges, back, layer, sizes)
    above, below = _neighbours(edges, back, hops, sizes)
    layers = _order_layers(order, layer, sizes, above, below)
    centre = _x_positions(graph, layers, sizes, above, below)
    _straighten(rails, layers, centre, sizes)
    left = min(centre[n] - sizes[n][0] / 2 for n in sizes)
    right = max(centre[n] + sizes[n][0] / 2 for n in sizes)
    tops, heights, height = _y_positions(layers, sizes)
    nodes = _place(sizes, inner, layer, tops, centre, left)

    def slot(name: str) -> Slot:
        at = layer[name]
        return centre[name] - left, tops[at], tops[at] + heights[at]

    routes = [
        route_of(edge, nodes, [slot(hop) for hop in hops[id(edge)]], id(edge) in back, slot(edge.source)[2])
        for edge in edges
    ]
    spread_ports(routes, nodes)
    return Drawing(right - left, height, nodes, routes)


# --- the steps of lay_out ---------------------------------------------------------------------
def _measure(graph: Graph) -> tuple[dict[str, Size], dict[str, list[Drawing]]]:
    """Each state's size; a container is as big as its branches, laid out side by side."""
    sizes: dict[str, Size] = {}
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
    return sizes, inner


def _cut_cycles(root: str, sizes: Mapping[str, Size], edges: list[Edge]) -> tuple[set[int], dict[str, int]]:
    """The back edges (by id: those that close a cycle in a depth-first walk from ``root``)
    and each state's layer (longest path over the other edges). A Choice that jumps ahead (a
    resumed failover) must not turn the normal path's edges into back edges: of the walk
    orders tried, the one whose drawing has the shortest edges in total wins."""
    best: tuple[float, set[int], dict[str, int]] | None = None
    for walk_order in _walk_orders(edges):
        back, order = _back_edges(root, list(sizes), walk_order)
        forward = [e for e in edges if id(e) not in back and e.source != e.target]
        layer = _longest_path_layers(list(sizes), order, forward)
        span = sum(abs(layer[e.target] - layer[e.source]) for e in edges) + BACK_EDGE_COST * len(back)
        if best is None or span < best[0]:
            best = (span, back, layer)
    assert best is not None
    return best[1], best[2]


def _rails(
    edges: list[Edge], back: set[int], layer: dict[str, int], sizes: dict[str, Size]
) -> tuple[dict[tuple[str, bool], dict[int, str]], dict[int, list[str]]]:
    """Long edges run through rails: one dummy slot per layer crossed, shared by the edges
    that go to the same state in the same direction. The slots join ``layer`` and ``sizes``;
    returns the rails (by target and direction: their slots by layer) and, by edge id, the
    slots its route passes, in layer order."""
    rails: dict[tuple[str, bool], dict[int, str]] = {}
    hops: dict[int, list[str]] = {}

    def rail(target: str, upward: bool, at: int) -> str:
        slots = rails.setdefault((target, upward), {})
        if at not in slots:
            slots[at] = f"{RAIL}:{'up' if upward else 'down'}:{target}:{at}"
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
    return rails, hops


def _neighbours(
    edges: list[Edge], back: set[int], hops: Mapping[int, list[str]], sizes: Mapping[str, Size]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The links between items (states and rail slots) of adjacent layers: for each item,
    the ones above it and the ones below it."""
    links: set[tuple[str, str]] = set()
    for edge in edges:
        if edge.source == edge.target:
            continue
        upper, lower = (edge.target, edge.source) if id(edge) in back else (edge.source, edge.target)
        links.update(itertools.pairwise([upper, *hops[id(edge)], lower]))
    above: dict[str, list[str]] = {n: [] for n in sizes}
    below: dict[str, list[str]] = {n: [] for n in sizes}
    for upper, lower in links:
        above[lower].append(upper)
        below[upper].append(lower)
    return above, below


def _order_layers(
    order: list[str],
    layer: Mapping[str, int],
    sizes: Mapping[str, Size],
    above: Mapping[str, list[str]],
    below: Mapping[str, list[str]],
) -> list[list[str]]:
    """Each layer's items, left to right: first seen first (the Next chain on the left),
    then barycentre sweeps; the order with the fewest crossings wins."""
    rank = {n: i for i, n in enumerate(order)}
    depth = max(layer.values()) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for name in sorted(sizes, key=lambda n: (rank.get(n, len(rank)), n)):
        layers[layer[name]].append(name)
    best = [list(row) for row in layers]
    best_crossings = _crossings(best, below)
    for sweep in range(ORDER_SWEEPS):
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
    return best


def _x_positions(
    graph: Graph,
    layers: list[list[str]],
    sizes: Mapping[str, Size],
    above: Mapping[str, list[str]],
    below: Mapping[str, list[str]],
) -> dict[str, float]:
    """The centre x of each item: over the mean of its neighbours, in order, without overlaps."""
    centre: dict[str, float] = {}
    for row in layers:
        x = 0.0
        for name in row:
            centre[name] = x + sizes[name][0] / 2
            x += sizes[name][0] + NODE_GAP
    for sweep in range(X_SWEEPS):
        downward = sweep % 2 == 0
        for index in range(len(layers)) if downward else range(len(layers) - 1, -1, -1):
            row = layers[index]
            wanted = []
            for name in row:
                both = above[name] + below[name]
                linked = both if sweep >= X_SWEEPS_ONE_SIDED else (above if downward else below)[name]
                linked = linked or both
                wanted.append(sum(centre[n] for n in linked) / len(linked) if linked else centre[name])
            weights = [STATE_WEIGHT if name in graph.states and len(row) > 1 else 1.0 for name in row]
            gaps = [_gap(a, b, sizes) for a, b in itertools.pairwise(row)]
            for name, x in zip(row, _spread(wanted, gaps, weights), strict=True):
                centre[name] = x
    return centre


def _y_positions(layers: list[list[str]], sizes: Mapping[str, Size]) -> tuple[list[float], list[float], float]:
    """Each layer's top and height (that of its tallest item), and the height of them all."""
    tops: list[float] = []
    heights = [max((sizes[n][1] for n in row), default=0.0) for row in layers]
    y = 0.0
    for height in heights:
        tops.append(y)
        y += height + LAYER_GAP
    return tops, heights, y - LAYER_GAP


def _place(
    sizes: Mapping[str, Size],
    inner: Mapping[str, list[Drawing]],
    layer: Mapping[str, int],
    tops: Sequence[float],
    centre: Mapping[str, float],
    left: float,
) -> dict[str, Placed]:
    """The states (not the rail slots) where they go, a container's branches inside it,
    under its title strip."""
    nodes: dict[str, Placed] = {}
    for name, (w, h) in sizes.items():
        if name.startswith(RAIL):
            continue
        # Top-aligned: an edge to a short state beside a tall container stays above it.
        placed = Placed(name, centre[name] - w / 2 - left, tops[layer[name]], w, h)
        drawings = inner.get(name, [])
        for drawing, branch_left in zip(drawings, _branch_lefts(placed, drawings), strict=True):
            placed.inner.append(drawing.shifted(branch_left, placed.y + BOX_HEADER))
        nodes[name] = placed
    return nodes


# --- helpers ----------------------------------------------------------------------------------
def _next_first(edges: list[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda e: KIND_PRIORITY.get(e.kind, len(KIND_PRIORITY)))


def _walk_orders(edges: list[Edge]) -> Iterable[list[Edge]]:
    """Edge orders for the depth-first walk: as written, reversed, Next edges first (as
    written and reversed), and a few seeded shuffles."""
    yield edges
    yield list(reversed(edges))
    yield _next_first(edges)
    yield _next_first(list(reversed(edges)))
    shuffler = random.Random(WALK_SEED)
    for _ in range(WALK_SHUFFLES):
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


def _barycentre(
    name: str, neighbours: Mapping[str, list[str]], reference: Mapping[str, int], current: Mapping[str, int]
) -> float:
    linked = [reference[n] for n in neighbours[name] if n in reference]
    return sum(linked) / len(linked) if linked else current[name]


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


def _straighten(
    rails: Mapping[tuple[str, bool], Mapping[int, str]],
    layers: list[list[str]],
    centre: dict[str, float],
    sizes: Mapping[str, Size],
) -> None:
    """A rail runs straight down where its layers leave room: one x for all its slots."""
    position = {n: (index, i) for index, row in enumerate(layers) for i, n in enumerate(row)}
    for slots in [s for _ in range(STRAIGHTEN_ROUNDS) for s in rails.values()]:
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


def _gap(a: str, b: str, sizes: Mapping[str, Size]) -> float:
    """The least distance between the centres of neighbours ``a`` and ``b``: rails keep
    closer to each other (and to states) than states do."""
    rails = a.startswith(RAIL) + b.startswith(RAIL)
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
