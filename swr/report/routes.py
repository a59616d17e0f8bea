"""The route of each edge between placed states, and the curves through its points.

A route is a list of points, each with the direction the line passes it in: down through
the rail slots of the layers it crosses for a forward edge, around the side for a back edge.
The curves through them are cubic Béziers: straight along a rail, vertical tangents between
layers, horizontal ones at the side of a state.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swr.report.graph import Edge

if TYPE_CHECKING:
    from swr.report.layout import Placed

# A state's own loop: a bulge on its right, its ends this far above and below the middle.
SELF_LOOP_SPREAD = 8.0
SELF_LOOP_REACH = 28.0
BACK_EDGE_CLEARANCE = 30.0  # a back edge with no rail of its own passes this far right of both states
DROP_TOLERANCE = 1.0  # a state less than this shorter than its layer counts as filling it (rounding)
# Edges leaving (or entering) one side of a state spread over at most this share of its width
# (its rounded corners stay clear) and this far apart (an arrowhead is 11 wide).
PORT_SHARE = 0.6
PORT_SPACING = 18.0

Point = tuple[float, float]
Slot = tuple[float, float, float]  # x, top and bottom of a rail slot (its whole layer)


@dataclass
class Route:
    edge: Edge
    points: list[tuple[float, float, str]]  # x, y, tangent ("v" vertical, "h" horizontal)
    back: bool
    drop: bool = False  # leaves a state shorter than its layer: straight down to the layer's bottom first


def route_of(edge: Edge, nodes: Mapping[str, Placed], slots: list[Slot], back: bool, layer_bottom: float) -> Route:
    source, target = nodes[edge.source], nodes[edge.target]
    if edge.source == edge.target:  # a state that loops on itself: a bulge on its right
        right = source.x + source.w
        points = [
            (right, source.cy - SELF_LOOP_SPREAD, "h"),
            (right + SELF_LOOP_REACH, source.cy, "v"),
            (right, source.cy + SELF_LOOP_SPREAD, "h"),
        ]
        return Route(edge, points, True)
    if not back:
        points = [(source.cx, source.y + source.h, "v")]
        # A state beside a taller one (a container) leaves straight down to the bottom of its
        # layer: heading for the next layer at once would cut through its neighbour.
        drop = layer_bottom > source.y + source.h + DROP_TOLERANCE
        if drop:
            points.append((source.cx, layer_bottom, "v"))
        for x, top, bottom in slots:
            points += [(x, top, "v"), (x, bottom, "v")]
        points.append((target.cx, target.y, "v"))
        return Route(edge, points, False, drop)
    # A back edge leaves the lower state by the side facing its rail and comes back up to the
    # upper state's side: it never runs through the states between them.
    rail_x = slots[0][0] if slots else max(source.x + source.w, target.x + target.w) + BACK_EDGE_CLEARANCE
    side = source.x + source.w if rail_x >= source.cx else source.x
    points = [(side, source.cy, "h")]
    for x, top, bottom in reversed(slots):
        points += [(x, bottom, "v"), (x, top, "v")]
    if not slots:
        points.append((rail_x, (source.cy + target.cy) / 2, "v"))
    end_side = target.x + target.w if rail_x >= target.cx else target.x
    points.append((end_side, target.cy, "h"))
    return Route(edge, points, True)


def spread_ports(routes: list[Route], nodes: Mapping[str, Placed]) -> None:
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
        span = min(node.w * PORT_SHARE, PORT_SPACING * (len(by_x) - 1))
        for number, far_x in enumerate(sorted(by_x)):
            x = node.cx - span / 2 + span * number / (len(by_x) - 1)
            for route, index in by_x[far_x]:
                moved = [index, 1] if index == 0 and route.drop else [index]
                for at in moved:
                    _, y, tangent = route.points[at]
                    route.points[at] = (x, y, tangent)


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


def _on_curve(segment: tuple[Point, Point, Point, Point], t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = segment
    u = 1 - t
    return (
        u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
        u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
    )
