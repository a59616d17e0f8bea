"""One execution of the failover as a single self-contained HTML page.

The page holds the state machine drawn as a graph (laid out here, as inline SVG), the path
this execution took through it highlighted, and a timeline of its steps. It is built from
what ``DescribeStateMachineForExecution``, ``DescribeExecution`` and ``GetExecutionHistory``
return, nothing else: this package makes no AWS call and the page loads nothing at view time
(a strict Content-Security-Policy says so to the browser).

- ``graph``: the ASL definition as a graph, and the path an execution took through it;
- ``layout``: where each state goes (a small layered drawing, containers holding their branches);
- ``routes``: the route of each edge between the placed states, and the curves through it;
- ``svg``: the drawing as inline SVG, the path taken highlighted, edge labels placed;
- ``page``: the HTML page around it (header, timeline, documents).
"""

from swr.report.graph import DefinitionError, Edge, Graph, Path, State, executed_path, parse_definition
from swr.report.layout import Drawing, Placed, lay_out
from swr.report.page import outcome_text, render_report
from swr.report.routes import Route, _on_curve, _segments
from swr.report.svg import HIGHLIGHT, svg_graph

__all__ = [
    "HIGHLIGHT",
    "DefinitionError",
    "Drawing",
    "Edge",
    "Graph",
    "Path",
    "Placed",
    "Route",
    "State",
    "_on_curve",
    "_segments",
    "executed_path",
    "lay_out",
    "outcome_text",
    "parse_definition",
    "render_report",
    "svg_graph",
]
