"""Simulated time, two ways.

VirtualClock (the in-process emulator: demo, tests, bench, campaign): time moves only when
every actor waits, and then jumps to the next deadline (swr/emulator/scheduler.py). Runs are
deterministic and take no real sleeping.

WarpClock (the served emulator, whose clients act in real time): the emulated world runs
``warp`` times faster than the wall clock. While a step's handler runs, the clock stands still
and the step is charged a fixed, realistic duration instead: otherwise the emulator's own CPU
time would be multiplied by the warp and show up as simulated seconds no AWS step takes.

Either way a step's handler is charged the latency profile's duration, as if it took that long.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from swr.emulator.scheduler import ActorThread, Scheduler, VirtualEvent

Stop = threading.Event | VirtualEvent  # what ends a sleep early: the clock's own event()

# Where virtual time starts: a fixed moment, so that the same seed gives the same timestamps.
VIRTUAL_EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


class WarpClock:
    scheduler: Scheduler | None = None

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

    def sleep(self, simulated_seconds: float, stop: Stop | None = None) -> bool:
        """Sleep until the clock has moved on by ``simulated_seconds``; True if ``stop`` was set."""
        deadline = self.now() + max(simulated_seconds, 0.0)
        stop = stop or threading.Event()
        while (remaining := deadline - self.now()) > 0:
            warp = self.effective_warp()
            if stop.wait(0.005 if warp == 0 else min(remaining / warp, 0.05)):
                return True
        return stop.is_set()

    def event(self) -> threading.Event:
        return threading.Event()

    def thread(self, target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
        return threading.Thread(target=target, name=name, args=args, daemon=True)

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


class VirtualClock:
    """Virtual time: moves only when every actor waits (see swr/emulator/scheduler.py)."""

    def __init__(self, start: float = VIRTUAL_EPOCH) -> None:
        self.scheduler = Scheduler(start)
        self.warp = float("inf")  # no wall-clock relation: figures read simulated seconds only

    def now(self) -> float:
        return self.scheduler.now()

    def effective_warp(self) -> float:
        return 0.0

    @contextmanager
    def paused(self, charge: float = 0.0) -> Iterator[None]:
        """Nothing moves while the step runs (the caller holds the baton); then it is charged."""
        yield
        if charge > 0:
            self.scheduler.sleep(charge)

    def sleep(self, simulated_seconds: float, stop: Stop | None = None) -> bool:
        if stop is None:
            self.scheduler.sleep(simulated_seconds)
            return False
        return bool(stop.wait(max(simulated_seconds, 0.0)))

    def event(self) -> VirtualEvent:
        return VirtualEvent(self.scheduler)

    def thread(self, target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> ActorThread:
        return self.scheduler.thread(target, name, args)

    def to_simulated(self, wall: datetime | float) -> float:
        """History timestamps are virtual already."""
        return wall.timestamp() if isinstance(wall, datetime) else float(wall)
