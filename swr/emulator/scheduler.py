"""Deterministic virtual time for the in-process emulator.

Every thread that acts on the emulated world is an actor: the driver (a test, the demo, the
campaign), the interpreter's execution, state and branch threads, EventBridge retries, the
simulation and the boot gates. One actor runs at a time, holding the baton, and passes it on
only where it waits: for time, for an event, for another thread. The next to run is the first
actor that became ready; when none is ready, virtual time jumps to the earliest deadline and
that waiter runs. Nothing sleeps for real, and the order in which actors run depends on nothing
but the program, so a seed gives the same histories on any machine at any load.

A wait of an actor that holds a real lock another actor needs would deadlock: code that waits
here must not hold one (the emulator's locks are held only across calls that do not wait).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class SchedulerClosed(BaseException):  # not Exception: code that catches errors must not swallow it
    """Raised in an actor that waits once the emulator has stopped."""


class Deadlock(RuntimeError):
    """Every actor waits without a deadline: nothing can ever happen again."""


@dataclass(eq=False)
class _Actor:
    name: str
    seq: int
    turn: threading.Event = field(default_factory=threading.Event)  # real: the baton is handed over
    timer: int = 0  # which timer entry is live (older entries in the heap are stale)
    waiting: bool = False
    timed_out: bool = False
    finished: bool = False


_current = threading.local()  # .actor: this thread's actor, .scheduler: its scheduler


class Scheduler:
    def __init__(self, start: float) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._seq = itertools.count()
        self._ready: deque[_Actor] = deque()
        self._timers: list[tuple[float, int, int, _Actor]] = []  # (deadline, order, timer, actor)
        self._running: _Actor | None = None
        self._waiting: set[_Actor] = set()
        self.closed = False
        self.switches = 0

    # --- time -------------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    def datetime_now(self, tz: Any = None) -> datetime:
        moment = datetime.fromtimestamp(self._now, tz=UTC)
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)

    # --- actors -----------------------------------------------------------------------------
    def adopt(self, name: str = "driver") -> None:
        """The calling thread becomes an actor and takes the baton when it is its turn."""
        with self._lock:
            actor = self._new(name)
            self._ready.append(actor)
            if self._running is None:
                self._hand_on()
        _current.actor, _current.scheduler = actor, self
        self._await_turn(actor)

    def leave(self) -> None:
        """The calling thread stops being an actor (the driver, when the emulator stops)."""
        actor = self._me()
        if actor is None:
            return
        _current.actor = _current.scheduler = None
        with self._lock:
            actor.finished = True
            if self._running is actor:
                self._hand_on()

    def thread(self, target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> ActorThread:
        return ActorThread(self, target=target, name=name, args=args, daemon=True)

    def close(self) -> None:
        """Stop: every waiting actor gets SchedulerClosed; from now on nothing is gated."""
        with self._lock:
            self.closed = True
            woken = list(self._waiting) + list(self._ready)
            self._waiting.clear()
            self._ready.clear()
            self._timers.clear()
            self._running = None
        for actor in woken:
            actor.turn.set()

    # --- waiting ----------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        actor = self._me()
        if actor is None:
            raise RuntimeError("only an actor of the emulator may sleep in virtual time")
        self._block(actor, self._now + max(float(seconds), 0.0))

    def wait_for(self, done: Callable[[], bool], timeout: float | None, poll: float = 1.0) -> bool:
        """Wait until done() holds, looking every ``poll`` virtual seconds; False on timeout."""
        deadline = None if timeout is None else self._now + timeout
        while not done():
            if deadline is not None and self._now >= deadline:
                return False
            step = poll if deadline is None else min(poll, deadline - self._now)
            self.sleep(step)
        return True

    def _wait_event(self, event: VirtualEvent, timeout: float | None) -> bool:
        actor = self._me()
        if actor is None:  # not an actor (teardown, after close): poll for real, timeout in real seconds
            real = threading.Event()
            waited = 0.0
            while not event.is_set() and (timeout is None or waited < timeout):
                real.wait(0.001)
                waited += 0.001
            return event.is_set()
        with self._lock:
            if event.is_set():
                return True
            event._waiters.append(actor)
        deadline = None if timeout is None else self._now + max(float(timeout), 0.0)
        try:
            self._block(actor, deadline)
        finally:
            with self._lock:
                if actor in event._waiters:
                    event._waiters.remove(actor)
        return event.is_set()

    def _wake(self, actor: _Actor) -> None:
        """Make a waiting actor ready (lock held)."""
        if not actor.waiting:
            return
        actor.waiting = False
        actor.timer += 1  # its timer, if any, is stale now
        self._waiting.discard(actor)
        self._ready.append(actor)
        if self._running is None:
            self._hand_on()

    # --- the baton --------------------------------------------------------------------------
    def _me(self) -> _Actor | None:
        if getattr(_current, "scheduler", None) is not self:
            return None
        actor: _Actor | None = getattr(_current, "actor", None)
        return actor

    def _new(self, name: str) -> _Actor:
        return _Actor(name=name, seq=next(self._seq))

    def _block(self, actor: _Actor, deadline: float | None) -> None:
        with self._lock:
            if self.closed:
                raise SchedulerClosed()
            actor.waiting, actor.timed_out = True, False
            actor.timer += 1
            self._waiting.add(actor)
            if deadline is not None:
                heapq.heappush(self._timers, (deadline, next(self._seq), actor.timer, actor))
            if self._running is actor:
                self._hand_on()
        self._await_turn(actor)

    def _await_turn(self, actor: _Actor) -> None:
        actor.turn.wait()
        actor.turn.clear()
        if self.closed:
            raise SchedulerClosed()

    def _hand_on(self) -> None:
        """Give the baton to the next actor (lock held): the first ready one, else the earliest
        timer's, moving virtual time to its deadline."""
        self.switches += 1
        if not self._ready:
            while self._timers:
                deadline, _, timer, actor = heapq.heappop(self._timers)
                if actor.waiting and actor.timer == timer:
                    self._now = max(self._now, deadline)
                    actor.waiting, actor.timed_out = False, True
                    self._waiting.discard(actor)
                    self._ready.append(actor)
                    break
        if not self._ready:
            self._running = None
            return
        actor = self._ready.popleft()
        self._running = actor
        actor.turn.set()

    def _started(self, actor: _Actor) -> None:
        _current.actor, _current.scheduler = actor, self
        self._await_turn(actor)

    def _finished(self, actor: _Actor) -> None:
        _current.actor = _current.scheduler = None
        with self._lock:
            actor.finished = True
            if self._running is actor:
                self._hand_on()

    def _register(self, name: str) -> _Actor:
        with self._lock:
            actor = self._new(name)
            if self.closed:
                actor.turn.set()  # it starts only to find the scheduler closed
                return actor
            self._ready.append(actor)
            if self._running is None:
                self._hand_on()
            return actor

    def describe(self) -> str:
        """Who waits, for debugging a deadlock."""
        with self._lock:
            waiting = sorted(a.name for a in self._waiting)
            ready = [a.name for a in self._ready]
        running = self._running.name if self._running else None
        return f"t={self._now:.1f} running={running} ready={ready} waiting={waiting}"


class VirtualEvent:
    """threading.Event whose waits are virtual time: the waiter passes the baton on."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._flag = False
        self._waiters: list[_Actor] = []

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        with self._scheduler._lock:
            self._flag = True
            waiters, self._waiters = self._waiters, []
            for actor in waiters:
                self._scheduler._wake(actor)

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        return self._scheduler._wait_event(self, timeout)


class ActorThread(threading.Thread):
    """A thread that is an actor from the moment it is started: it runs when it is its turn."""

    def __init__(self, scheduler: Scheduler, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("daemon", True)
        super().__init__(*args, **kwargs)
        self._scheduler = scheduler
        self._actor: _Actor | None = None
        self._done = VirtualEvent(scheduler)

    def start(self) -> None:
        self._actor = self._scheduler._register(self.name)
        super().start()

    def run(self) -> None:
        assert self._actor is not None
        try:
            self._scheduler._started(self._actor)
            super().run()
        except SchedulerClosed:
            pass
        finally:
            self._done.set()
            self._scheduler._finished(self._actor)

    def join(self, timeout: float | None = None) -> None:
        if self._scheduler._me() is not None and not self._scheduler.closed:
            self._done.wait(timeout)  # virtual seconds
            return
        super().join(timeout)


def shim_thread(scheduler: Scheduler) -> Callable[..., ActorThread]:
    """A stand-in for threading.Thread(...) that makes the new thread an actor."""

    def make(*args: Any, **kwargs: Any) -> ActorThread:
        return ActorThread(scheduler, *args, **kwargs)

    return make
