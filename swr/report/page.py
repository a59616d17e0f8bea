"""The HTML page of one execution: a header with its outcome, the state machine drawn with
the path taken (svg.py), a timeline of its steps, and its input, output and error.

Built from what ``DescribeStateMachineForExecution``, ``DescribeExecution`` and
``GetExecutionHistory`` return, nothing else: no AWS call here, and nothing loads at view
time (a strict Content-Security-Policy says so to the browser).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

from swr.report.graph import executed_path, parse_definition
from swr.report.svg import attr, svg_graph
from swr.timeline import StepStatus, Timeline, ToSimulated, build_timeline, readable_cause
from swr.trigger_input import app_of, kind_of

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
            f'<meta http-equiv="Content-Security-Policy" content="{attr(policy)}">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            _header(timeline, described),
            "<main>",
            '<section class="graph"><h2>State machine</h2>',
            _legend(),
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
        f'<header><h1>{escape(timeline.name)} <span class="status {attr(timeline.status)}">'
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


def _legend() -> str:
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
            f'<tr class="step {status}" data-state="{attr(step.name)}" data-status="{status}">'
            f'<td class="num">{step.offset_seconds:.1f}</td>'
            f'<td class="name"><div class="d{min(step.depth, 3)}">{escape(step.name)}'
            f"<small>{escape(step.type)}</small></div></td>"
            f'<td class="bar"><svg class="bar" viewBox="0 0 1000 14" preserveAspectRatio="none"'
            f' role="img" aria-label="{attr(duration)} {clock}">'
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
