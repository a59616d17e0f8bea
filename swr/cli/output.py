"""How swr prints: rich tables and colour for people, one JSON encoder for scripts, and a
live progress line while a command waits.

Colour is rich's: off when stdout is not a terminal and whenever ``NO_COLOR`` is set. The
text of a table does not depend on the terminal (no wrapping to its width, no trailing
padding), so a script that reads it sees the same text a person does, without the colour.
The live progress line shows only when stdout and stderr are both a terminal: it never
changes what a pipe reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

# rich's names for the styles of a status word; anything else is printed plain.
STATUS_STYLES = {
    "SUCCEEDED": "green",
    "NORMAL": "green",
    "healthy": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "bold red",
    "ABORTED": "yellow",
    "RUNNING": "cyan",
    "SWITCHING": "cyan",
    "warning": "yellow",
}
_TRAILING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")


def console(*, stderr: bool = False, file: TextIO | None = None) -> Console:
    # A new console per use: it looks at sys.stdout as it is now (tests capture it).
    return Console(stderr=stderr, file=file, highlight=False, soft_wrap=True, emoji=False, markup=False)


# --- JSON ---------------------------------------------------------------------------------------
def to_jsonable(value: Any) -> Any:
    """The one encoder of every ``--json``: models as their JSON form, dataclasses as objects,
    times as ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any, *, indent: int | None = 2) -> None:
    # Plain print, not rich: JSON is never wrapped, highlighted or coloured.
    print(json.dumps(to_jsonable(value), indent=indent, default=str), flush=True)


# --- text ---------------------------------------------------------------------------------------
def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


def styled(text: str, style: str | None = None) -> Text:
    return Text(text, style=style or STATUS_STYLES.get(text, ""))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str | Text]]) -> None:
    """A borderless table: columns two spaces apart, bold headers, status words in colour."""
    print_lines(table_lines(headers, rows))


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str | Text]]) -> list[str]:
    """The lines print_table prints (in colour on a terminal), for a caller that prints
    them its own way, e.g. through a live Progress."""
    out = console()
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1))
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else styled(cell) for cell in row))
    # As wide as the table needs: never wrapped or cut to the terminal's width.
    width = out.measure(table, options=out.options.update(max_width=100_000)).maximum
    wide = Console(
        width=max(width, 1),
        force_terminal=out.is_terminal,
        color_system=out.color_system,  # type: ignore[arg-type]
        no_color=out.no_color,
        highlight=False,
        emoji=False,
        markup=False,
    )
    with wide.capture() as captured:
        wide.print(table)
    stripped = (_TRAILING.sub("", line) for line in captured.get().splitlines())
    return [line + ("\x1b[0m" if "\x1b[" in line else "") for line in stripped]


def say_parts(*parts: str | tuple[str, str | None]) -> None:
    """One line on stdout from plain and (text, style) parts; in colour on a terminal."""
    console().print(Text.assemble(*((p[0], p[1] or "") if isinstance(p, tuple) else p for p in parts)))


# --- progress -----------------------------------------------------------------------------------
class Progress:
    """A waiting command's lines, and on a terminal a live line under them saying what it
    waits for. Lines go through ``echo`` so the live line is redrawn below them."""

    def __init__(self, live: Live | None, file: TextIO | None) -> None:
        self._live = live
        self._file = file

    def update(self, text: str) -> None:
        if self._live is not None:
            self._live.update(Spinner("dots", Text(text, overflow="ellipsis", no_wrap=True)))

    def echo(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(Text(text))
        else:
            print(text, file=self._file or sys.stdout, flush=True)


@contextmanager
def progress(text: str, file: TextIO | None = None) -> Iterator[Progress]:
    """Only when both stdout and stderr are a terminal (a person watching): with stdout
    piped, the lines are exactly those without a terminal."""
    out = console(file=file)
    if not out.is_terminal or out.is_dumb_terminal or not sys.stderr.isatty():
        yield Progress(None, file)
        return
    spinner = Spinner("dots", Text(text, overflow="ellipsis", no_wrap=True))
    with Live(spinner, console=out, transient=True, redirect_stdout=False, redirect_stderr=False) as live:
        yield Progress(live, file)
