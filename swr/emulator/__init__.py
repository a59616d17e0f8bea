"""The embedded AWS emulator: the default place swr's workflow runs for the demo and tests.

``Emulator`` is imported on first use, so that ``swr.emulator.scenarios`` (the scenario names
the command line offers) can be read without loading the emulator itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swr.emulator.emulator import Emulator
    from swr.emulator.scenarios import NAMES as SCENARIOS

__all__ = ["SCENARIOS", "Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from swr.emulator.emulator import Emulator

        return Emulator
    if name == "SCENARIOS":
        from swr.emulator.scenarios import NAMES

        return NAMES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
