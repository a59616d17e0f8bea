from __future__ import annotations

from collections.abc import Iterator

import pytest

from swr.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def served_emulator() -> Iterator[Emulator]:
    """For commands that reach the emulator over HTTP and wait in real time for a failover
    (``--wait``): its world runs warped, not in virtual time."""
    with Emulator(virtual=False) as emu:
        yield emu
