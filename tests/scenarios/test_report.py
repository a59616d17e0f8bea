"""`swr report EXECUTION --html FILE` against the emulator's endpoint, and the page it writes
opened in headless Chromium: what an operator sees is the state machine with the path the
failover took, and its timeline."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from swr import cli
from swr.emulator import Emulator
from swr.report import HIGHLIGHT
from swr.timeline import build_timeline, fetch_history

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1400, 1800


@pytest.fixture(scope="module")
def failover() -> Iterator[dict[str, Any]]:
    """One recovered RMS fault, served on loopback as `swr emulator` serves it."""
    with Emulator() as emu:
        emu.inject("rms-fault")
        arn = emu.wait_for_failover()
        endpoint = emu.start_server(port=0)
        sfn = emu.boto3_client("stepfunctions")
        yield {
            "arn": arn,
            "where": ["--endpoint", endpoint, "--region", emu.region],
            "states": _states(json.loads(sfn.describe_state_machine_for_execution(executionArn=arn)["definition"])),
            "steps": build_timeline(sfn.describe_execution(executionArn=arn), fetch_history(sfn, arn)).steps,
        }


def _states(body: dict[str, Any]) -> set[str]:
    found = set(body["States"])
    for spec in body["States"].values():
        for branch in spec.get("Branches", []):
            found |= _states(branch)
    return found


def report(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_report_of_a_recovered_failover_opens_in_a_browser_with_its_path_and_timeline(
    failover: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "failover.html"
    code, out, err = report([failover["arn"], "--html", str(page), *failover["where"]], capsys)
    assert code == 0, err
    assert out.strip() == str(page)

    screenshot = tmp_path / "failover.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", page)
    width, height, pixels = decode_png(screenshot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {pixels[i : i + 3] for i in range(0, len(pixels), 3 * 7)}  # every 7th pixel is plenty
    assert len(colours) > 50, "the page looks blank"
    assert bytes.fromhex(HIGHLIGHT[1:]) in colours, "no state is drawn highlighted"

    dom = Dom(_chromium(tmp_path, "--dump-dom", page))
    assert set(dom.states) == failover["states"]
    entered = {step.name for step in failover["steps"]}
    assert {name for name, attrs in dom.states.items() if "executed" in attrs["class"].split()} == entered
    assert {name for name, attrs in dom.states.items() if attrs["data-executed"] == "false"} == (
        failover["states"] - entered
    )
    assert dom.rows == [step.name for step in failover["steps"]]
    assert dom.taken_edges, "no transition is highlighted"


def test_an_execution_name_works_as_well_as_its_arn(
    failover: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = failover["arn"].rsplit(":", 1)[-1]
    page = tmp_path / "by-name.html"
    code, out, err = report([name, "--html", str(page), *failover["where"]], capsys)
    assert code == 0, err
    assert out.strip() == str(page)
    assert f"<title>swr execution {name}: SUCCEEDED</title>" in page.read_text()


def test_an_unknown_execution_is_bad_input_and_leaves_the_file_as_it_was(
    failover: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "kept.html"
    page.write_text("the previous report")
    code, _, err = report(["no-such-execution", "--html", str(page), *failover["where"]], capsys)
    assert code == cli.EXIT_USAGE
    assert "no such execution" in err
    assert page.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.html"]  # no temporary file left


def test_an_unwritable_file_is_bad_input_before_anything_is_asked(
    failover: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in (tmp_path / "missing-dir" / "report.html", tmp_path):
        code, out, err = report([failover["arn"], "--html", str(target), *failover["where"]], capsys)
        assert code == cli.EXIT_USAGE, err
        assert f"cannot write {target}" in err and out == ""
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_endpoint_is_an_environment_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    page = tmp_path / "report.html"
    arn = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:some-run"
    code, _, err = report([arn, "--html", str(page), "--endpoint", f"http://127.0.0.1:{port}"], capsys)
    assert code == cli.EXIT_ENVIRONMENT
    assert "cannot reach" in err
    assert list(tmp_path.iterdir()) == []


# --- the browser ------------------------------------------------------------------------------
def _chromium(workdir: Path, mode: str, page: Path) -> str:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) or `apt-get install chromium`"
        )
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--force-color-profile=srgb",  # the highlight colour as written, not colour-managed
            "--hide-scrollbars",
            f"--user-data-dir={workdir / 'chromium-profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            mode,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Dom(HTMLParser):
    """The rendered DOM: the graph's states, the highlighted edges and the timeline's rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.states: dict[str, dict[str, str]] = {}
        self.rows: list[str] = []
        self.taken_edges: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        classes = found.get("class", "").split()
        if tag == "g" and "state" in classes:
            self.states[found["data-state"]] = found
        elif tag == "tr" and "step" in classes:
            self.rows.append(found["data-state"])
        elif tag == "path" and {"edge", "taken"} <= set(classes):
            self.taken_edges.append((found["data-from"], found["data-to"]))


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the RGB bytes of an 8-bit, non-interlaced RGB(A) PNG, with the
    standard library only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed = 8, bytearray()
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            compressed += body
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    previous = bytearray(stride)
    rgb = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rgb += line if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
        previous = line
    return width, height, bytes(rgb)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    if kind == 1:  # Sub
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up: whole-row arithmetic, bytewise without carries (fast in CPython)
        size = len(line)
        high = int.from_bytes(b"\x80" * size, "big")
        a, b = int.from_bytes(line, "big"), int.from_bytes(previous, "big")
        total = ((a & ~high) + (b & ~high)) ^ ((a ^ b) & high)
        line[:] = total.to_bytes(size, "big")
    elif kind == 3:  # Average
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
