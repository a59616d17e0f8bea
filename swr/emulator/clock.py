"""Simulated time.

The emulated world runs ``warp`` times faster than the wall clock, so a failover with
realistic AWS durations takes a few seconds of real time. While a step's handler runs,
the clock stands still and the step is charged a fixed, realistic duration instead:
otherwise the emulator's own CPU time (tens of milliseconds here) would be multiplied by
the warp and show up as many simulated seconds no AWS step takes.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime


class WarpClock:
    def __init__(self, warp: float = 100.0) -> None:
        if warp <= 0:
            raise ValueError("warp must be positive")
        self.warp = warp
        self._lock = threading.Lock()
        self._paused = 0
        start = time.time()
        # (wall time, simulated time) at each pause and resume: the map from history
        # timestamps (wall) back to simulated time.
        self._walls: list[float] = [start]
        self._sims: list[float] = [start]
        self._pausing: list[bool] = [False]

    def now(self) -> float:
        """Simulated epoch seconds."""
        with self._lock:
            return self._at(time.time())

    def effective_warp(self) -> float:
        """Simulated seconds per real second right now: 0 while a step is being charged."""
        return 0.0 if self._paused else self.warp

    @contextmanager
    def paused(self, charge: float = 0.0) -> Iterator[None]:
        """Stop simulated time for the duration, then move it on by ``charge`` seconds."""
        with self._lock:
            if self._paused == 0:
                self._anchor(paused=True)
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1
                self._anchor(paused=self._paused > 0, charge=charge)

    def sleep(self, simulated_seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep until the clock has moved on by ``simulated_seconds``; True if ``stop`` was set."""
        deadline = self.now() + max(simulated_seconds, 0.0)
        stop = stop or threading.Event()
        while (remaining := deadline - self.now()) > 0:
            warp = self.effective_warp()
            if stop.wait(0.005 if warp == 0 else min(remaining / warp, 0.05)):
                return True
        return stop.is_set()

    def to_simulated(self, wall: datetime | float) -> float:
        """Map a wall-clock timestamp (e.g. from the execution history) into simulated time."""
        real = wall.timestamp() if isinstance(wall, datetime) else wall
        with self._lock:
            index = max(bisect.bisect_right(self._walls, real) - 1, 0)
            rate = 0.0 if self._pausing[index] else self.warp
            return self._sims[index] + (real - self._walls[index]) * rate

    def _at(self, real: float) -> float:
        rate = 0.0 if self._pausing[-1] else self.warp
        return self._sims[-1] + (real - self._walls[-1]) * rate

    def _anchor(self, paused: bool, charge: float = 0.0) -> None:
        real = time.time()
        self._sims.append(self._at(real) + charge)
        self._walls.append(real)
        self._pausing.append(paused)
