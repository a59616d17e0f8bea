"""The HTML report of one execution, rendered from real executions of the failover on the
emulator (recorded once for the module): every outcome an operator may open it for."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from swr.emulator import Emulator
from swr.report import (
    Drawing,
    _on_curve,
    _segments,
    lay_out,
    parse_definition,
    render_report,
)
from swr.timeline import build_timeline, fetch_history, warped
from tests.helpers.scenarios import fence_cannot_be_proven, finished, output, start

SCRIPT = "<script>alert(1)</script>"


@dataclass
class Recorded:
    definition: str
    described: dict[str, Any]
    events: list[dict[str, Any]]

    def page(self) -> str:
        # Virtual time: the recorded timestamps are simulated already, so the warp is 1.
        return render_report(self.definition, self.described, self.events, warped(self.described["startDate"], 1.0))

    def timeline_names(self) -> list[str]:
        return [s.name for s in build_timeline(self.described, self.events).steps]


def _record(emu: Emulator, arn: str) -> Recorded:
    sfn = emu.boto3_client("stepfunctions")
    return Recorded(
        definition=sfn.describe_state_machine_for_execution(executionArn=arn)["definition"],
        described=dict(sfn.describe_execution(executionArn=arn)),
        events=fetch_history(sfn, arn),
    )


def _entered(emu: Emulator, arn: str, state: str, timeout: float = 600.0) -> None:
    sfn = emu.boto3_client("stepfunctions")

    def entered() -> bool:
        return any((e.get("stateEnteredEventDetails") or {}).get("name") == state for e in fetch_history(sfn, arn))

    if not emu.wait_until(entered, timeout):
        raise TimeoutError(f"{arn} never entered {state}")


@pytest.fixture(scope="module")
def executions() -> Iterator[dict[str, Recorded]]:
    """One emulator, the failover's outcomes in the order an operator's bad day has them."""
    recorded: dict[str, Recorded] = {}
    with Emulator() as emu:
        # The old instance cannot be proven cut off: the fence fails closed, the failover ends FAILED.
        fence_cannot_be_proven(emu)
        emu.inject("rms-fault")
        recorded["failed"] = _record(emu, emu.wait_for_failover())
        # A FAILED application: Admit turns a later trigger away.
        late = {"kind": "drill", "app": "demo", "reason": "late", "force": False}
        record = emu.store.require("demo")
        rms_fault = {
            "id": "late-rms-fault",
            "source": "swr.rms.demo",
            "detail-type": "RMS Fault",
            "detail": {"app": "demo", "instance_id": record.current_instance_id, "user_application": "app_demo"},
        }
        ignored = start(emu, rms_fault, "late-rms-fault")
        assert output(finished(emu, ignored))["decision"] == "ignore"
        recorded["ignored"] = _record(emu, ignored)
        # A trigger no one could parse, whose keys end up in the cause.
        malformed = start(emu, {SCRIPT: "<img src=x onerror=alert(2)>"}, "malformed")
        assert finished(emu, malformed)["status"] == "FAILED"
        recorded["malformed"] = _record(emu, malformed)
        # The cause fixed, a drill recovers.
        emu.faults.clear()
        recovered = start(emu, dict(late, reason="cause fixed"), "after-fix")
        assert output(finished(emu, recovered))["outcome"] == "recovered"
        recorded["recovered"] = _record(emu, recovered)
        # Another drill, looked at while it runs, then stopped by an operator.
        stopped = start(emu, dict(late, reason="stopped by an operator"), "stopped")
        _entered(emu, stopped, "WaitForReplacementBoot")
        recorded["running"] = _record(emu, stopped)
        # While it runs, a second drill is turned away as already in progress.
        second = start(emu, dict(late, reason="a second drill"), "second-drill")
        assert output(finished(emu, second))["decision"] == "in_progress"
        recorded["in_progress"] = _record(emu, second)
        emu.boto3_client("stepfunctions").stop_execution(executionArn=stopped, error="Operator", cause="stopped")
        assert finished(emu, stopped)["status"] == "ABORTED"
        recorded["aborted"] = _record(emu, stopped)
        yield recorded


class Page(HTMLParser):
    """What the report shows: its graph's states and edges, its timeline rows, its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.states: dict[str, dict[str, str]] = {}
        self.edges: list[dict[str, str]] = []
        self.rows: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.meta: dict[str, str] = {}
        self.style = ""
        self.text: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        classes = found.get("class", "").split()
        if tag == "g" and "state" in classes:
            self.states[found["data-state"]] = found
        elif tag == "path" and "edge" in classes:
            self.edges.append(found)
        elif tag == "tr" and "step" in classes:
            self.rows.append(found)
        elif tag == "meta" and "http-equiv" in found:
            self.meta[found["http-equiv"]] = found["content"]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)

    def executed(self) -> set[str]:
        return {name for name, attrs in self.states.items() if attrs["data-executed"] == "true"}

    def taken(self) -> set[tuple[str, str]]:
        return {(e["data-from"], e["data-to"]) for e in self.edges if "taken" in e["class"].split()}

    def edge(self, source: str, target: str) -> dict[str, str]:
        return next(e for e in self.edges if (e["data-from"], e["data-to"]) == (source, target))

    def status(self, state: str) -> str:
        return self.states[state]["data-status"]

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _all_states(definition: str) -> set[str]:
    found: set[str] = set()

    def walk(body: dict[str, Any]) -> None:
        for name, spec in body["States"].items():
            found.add(name)
            for branch in spec.get("Branches", []):
                walk(branch)

    walk(json.loads(definition))
    return found


def test_a_recovered_failover_shows_every_state_and_highlights_only_the_path_it_took(executions):
    recovered = executions["recovered"]
    page = Page(recovered.page())
    assert set(page.states) == _all_states(recovered.definition)
    assert page.executed() == set(recovered.timeline_names())
    assert {"Admit", "FenceAndLaunch", "CutOffInstances", "ConfirmFence", "LaunchReplacement", "Recovered"} <= (
        page.executed()
    )
    assert not {"Ignored", "AdmissionFailed", "FailFailover", "RollbackReplacement"} & page.executed()
    assert {("Admit", "Decide"), ("Decide", "FenceAndLaunch"), ("FinaliseFailover", "ReleaseOldFences")} <= page.taken()
    assert ("ReleaseOldFences", "Recovered") in page.taken()
    assert ("Decide", "Ignored") not in page.taken()
    assert not [name for name, attrs in page.states.items() if attrs["data-status"] in ("failed", "caught")]
    assert "recovered:" in page.all_text() and "SUCCEEDED" in page.all_text()
    # The timeline: a row per step, in the order they were entered.
    assert [row["data-state"] for row in page.rows] == recovered.timeline_names()


def test_a_failed_failover_marks_the_failed_state_and_the_catch_that_led_there(executions):
    failed = executions["failed"]
    page = Page(failed.page())
    assert failed.described["status"] == "FAILED"
    assert page.status("FailoverFailed") == "failed"
    # The fence failed inside the Parallel state; its Catch took the failover to FailFailover.
    assert page.status("ConfirmFence") in ("failed", "caught")
    assert page.status("FenceAndLaunch") == "caught"
    assert {"catch", "taken"} <= set(page.edge("FenceAndLaunch", "FailFailover")["class"].split())
    assert ("FailFailover", "FailoverFailed") in page.taken()
    assert not {"IssuePermit", "Recovered", "WaitForReplacementBoot"} & page.executed()
    assert "FenceNotConfirmed" in page.all_text()
    # Its rounds are on the timeline, the last one failed.
    confirms = [row for row in page.rows if row["data-state"] == "ConfirmFence"]
    assert len(confirms) > 1 and confirms[-1]["data-status"] in ("failed", "caught")


def test_a_trigger_turned_away_by_admit_shows_the_ignored_path_and_why(executions):
    page = Page(executions["ignored"].page())
    assert page.executed() == {"Admit", "Decide", "Ignored"}
    assert page.taken() == {("", "Admit"), ("Admit", "Decide"), ("Decide", "Ignored")}  # "": the start
    assert "operator action required" in page.all_text()


def test_a_second_trigger_during_a_failover_shows_it_already_in_progress(executions):
    page = Page(executions["in_progress"].page())
    assert page.executed() == {"Admit", "Decide", "AlreadyInProgress"}
    assert ("Decide", "AlreadyInProgress") in page.taken()


def test_a_failover_still_running_shows_the_state_it_is_in(executions):
    running = executions["running"]
    page = Page(running.page())
    assert running.described["status"] == "RUNNING"
    current = running.timeline_names()[-1]
    assert page.status(current) == "running"
    assert page.rows[-1]["data-status"] == "running"
    assert "Recovered" not in page.executed()
    assert f"still running, in {current}" in page.all_text()


def test_an_aborted_failover_shows_the_state_it_was_stopped_in(executions):
    aborted = executions["aborted"]
    page = Page(aborted.page())
    assert aborted.described["status"] == "ABORTED"
    last = aborted.timeline_names()[-1]
    assert page.status(last) == "aborted"
    assert [name for name, attrs in page.states.items() if attrs["data-status"] == "aborted"] == [last]
    assert f"aborted (stopped by an operator or the API) in {last}" in page.all_text()


def test_markup_in_an_input_or_a_cause_is_shown_as_text_never_run(executions):
    malformed = executions["malformed"]
    assert SCRIPT in malformed.described["cause"]
    html = malformed.page()
    page = Page(html)
    assert page.status("AdmissionFailed") == "failed"
    assert "script" not in page.tags and "img" not in page.tags
    assert not re.search(r"<\s*(script|img)", html, re.IGNORECASE)
    assert SCRIPT in page.all_text()  # shown, as text
    assert "&lt;script&gt;" in html


def test_the_page_can_load_nothing(executions):
    html = executions["recovered"].page()
    page = Page(html)
    policy = page.meta["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # its own style element and nothing else
    assert not {"script", "link", "img", "iframe", "object", "embed", "image", "use", "a"} & set(page.tags)
    assert not re.search(r"\b(src|href)\s*=", html)
    assert set(re.findall(r"url\(([^)]*)\)", html)) <= {"#arrow-plain", "#arrow-taken"}  # markers, in the page
    assert "@import" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


# --- the drawing of the real failover -----------------------------------------------------------
def _boxes(drawing: Drawing) -> list[list[tuple[str, float, float, float, float]]]:
    """The states of each drawing level (the top, each branch) as (name, left, top, right, bottom)."""
    levels = [[(n, p.x, p.y, p.x + p.w, p.y + p.h) for n, p in drawing.nodes.items()]]
    for placed in drawing.nodes.values():
        for inner in placed.inner:
            levels += _boxes(inner)
    return levels


def test_no_two_states_of_the_failover_overlap(executions):
    drawing = lay_out(parse_definition(executions["recovered"].definition), entry=True)
    for level in _boxes(drawing):
        for i, (a, *box_a) in enumerate(level):
            for b, *box_b in level[i + 1 :]:
                apart = box_a[2] <= box_b[0] or box_b[2] <= box_a[0] or box_a[3] <= box_b[1] or box_b[3] <= box_a[1]
                assert apart, f"{a} and {b} overlap"
    # Branches sit inside their Parallel state.
    for placed in drawing.nodes.values():
        for inner in placed.inner:
            for other in inner.nodes.values():
                assert placed.x <= other.x and other.x + other.w <= placed.x + placed.w
                assert placed.y <= other.y and other.y + other.h <= placed.y + placed.h


def test_no_edge_of_the_failover_runs_through_a_state_it_does_not_join(executions):
    drawing = lay_out(parse_definition(executions["recovered"].definition), entry=True)
    leaves = {n: p for n, p in drawing.nodes.items() if not p.inner}
    for placed in drawing.nodes.values():
        for inner in placed.inner:
            leaves.update(inner.nodes)
    routes = list(drawing.routes) + [r for p in drawing.nodes.values() for d in p.inner for r in d.routes]
    for route in routes:
        for segment in _segments(route.points):
            for step in range(1, 20):
                x, y = _on_curve(segment, step / 20)
                for name, p in leaves.items():
                    if name in (route.edge.source, route.edge.target):
                        continue
                    inside = p.x + 2 < x < p.x + p.w - 2 and p.y + 2 < y < p.y + p.h - 2
                    assert not inside, f"{route.edge.source} -> {route.edge.target} crosses {name}"
