"""The state machine as inline SVG: its states, the path this execution took through it
highlighted, the edges as curves, and their labels where they cover nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from swr.report.graph import Graph, Path, State
from swr.report.layout import BOX_HEADER, START, START_SIZE, Drawing, Placed, lay_out, text_width
from swr.report.routes import Point, Route, _on_curve, _segments
from swr.timeline import Step, readable_cause

HIGHLIGHT = "#cfe4ff"  # fill of a state this execution entered; the browser test looks for it
HIGHLIGHT_STROKE = "#1858c4"
EDGE = "#9aa4b1"
MARGIN = 24.0


def _path_data(points: Sequence[tuple[float, float, str]]) -> str:
    x0, y0, _ = points[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for _, c1, c2, (x2, y2) in _segments(points):
        parts.append(f"C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}")
    return " ".join(parts)


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
            f' data-from="{attr(edge.source) if edge.kind != "start" else ""}" data-to="{attr(edge.target)}"'
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
        f'<g class="{" ".join(classes)}" data-state="{attr(state.name)}" data-type="{attr(state.type)}"'
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


def attr(text: str) -> str:
    """``text`` safe inside a double-quoted attribute."""
    return escape(text, quote=True)
