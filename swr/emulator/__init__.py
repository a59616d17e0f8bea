"""The embedded AWS emulator: the default place swr's workflow runs for the demo and tests."""

from swr.emulator.emulator import SCENARIOS, Emulator

__all__ = ["SCENARIOS", "Emulator"]
