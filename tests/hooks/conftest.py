"""The hooks run as an instance runs them: real scripts in subprocesses, talking to the
emulator served on loopback (or to a closed loopback port when the API is "down")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swr.emulator import Emulator
from tests.helpers.hooks import Served, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A fresh emulator per test, for tests that start failovers."""
    with Emulator(virtual=False, warp=100.0) as emu:
        yield serve(emu, tmp_path)


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(virtual=False, warp=100.0) as emu:
        emu.start_server(port=0)
        yield emu


@pytest.fixture
def shared(shared_emulator: Emulator, tmp_path: Path) -> Served:
    """One emulator for a module's tests that start no failover (a fresh spool and config each)."""
    return serve(shared_emulator, tmp_path)
