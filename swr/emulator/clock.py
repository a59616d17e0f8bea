"""Simulated time: the emulated world runs ``warp`` times faster than the wall clock, so a
failover with realistic AWS durations takes a few seconds of real time."""

from __future__ import annotations

import time
from datetime import datetime


class WarpClock:
    def __init__(self, warp: float = 100.0) -> None:
        if warp <= 0:
            raise ValueError("warp must be positive")
        self.warp = warp
        self._real_start = time.time()
        self._sim_start = self._real_start

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._sim_start + (time.time() - self._real_start) * self.warp

    def sleep(self, simulated_seconds: float) -> None:
        if simulated_seconds > 0:
            time.sleep(simulated_seconds / self.warp)

    def to_simulated(self, wall: datetime | float) -> float:
        """Map a wall-clock timestamp (e.g. from the execution history) into simulated time."""
        real = wall.timestamp() if isinstance(wall, datetime) else wall
        return self._sim_start + (real - self._real_start) * self.warp
