"""Time: moto's interpreter and clocks run in the emulator's time, virtual (a scheduler) or
warped, with seeded ids and jitter (patch 4), and so do the SDK's retry waits (patch 33). The
helpers here (sleep, spawn, ids, the simulated clock) are every other module's time too."""

from __future__ import annotations

import datetime as dt
import importlib
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any, cast

from swr.emulator.moto_bridge._state import _hooks, _Patches, _require
from swr.emulator.scheduler import ActorThread, Scheduler, VirtualEvent

# --------------------------------------------------------------------------------------------------
# 4. Time warp for the ASL interpreter
# --------------------------------------------------------------------------------------------------

_MAX_REAL_SLICE = 0.5  # re-read warp() at least this often (real seconds) while waiting


def _warp() -> float:
    hooks = _hooks()
    return 1.0 if hooks is None else float(hooks.warp())


def _sim_time() -> float:
    hooks = _hooks()
    return hooks.sim_now() if hooks is not None and hooks.sim_now is not None else time.time()


def _warped_block(block: Callable[[float], bool], sim_seconds: float) -> bool:
    """Block for sim_seconds of simulated time in real slices; block(real) -> True ends early."""
    hooks = _hooks()
    if hooks is not None and hooks.sim_now is not None:
        return _block_until(block, hooks.sim_now, hooks.sim_now() + float(sim_seconds))
    remaining = float(sim_seconds)
    while remaining > 0:
        warp = _warp()
        if warp <= 0:  # paused: simulated time stands still
            if block(_MAX_REAL_SLICE):
                return True
            continue
        real = min(remaining / warp, _MAX_REAL_SLICE)
        if block(real):
            return True
        remaining -= real * warp
    return block(0)


_PAUSED_SLICE = 0.005  # real seconds between looks at a paused clock


def _block_until(block: Callable[[float], bool], now: Callable[[], float], deadline: float) -> bool:
    while True:
        remaining = deadline - now()
        if remaining <= 0:
            return block(0)
        warp = _warp()
        real = _PAUSED_SLICE if warp <= 0 else min(remaining / warp, _MAX_REAL_SLICE)
        if block(real):
            return True


class WarpedEvent(threading.Event):
    """threading.Event whose wait(timeout) treats timeout as simulated seconds."""

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        return _warped_block(super().wait, timeout)


class _WarpedJoinThread(threading.Thread):
    """threading.Thread whose join(timeout) treats timeout as simulated seconds (execution timeout)."""

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            super().join()
            return

        def block(real: float) -> bool:
            threading.Thread.join(self, real)
            return not self.is_alive()

        _warped_block(block, timeout)


def _warped_sleep(seconds: float) -> None:
    def block(real: float) -> bool:
        time.sleep(real)
        return False

    _warped_block(block, seconds)


class _WarpClock:
    """A wall clock that runs warp() times faster than real time (for Wait's elapsed-time check)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._real = time.monotonic()
        self._sim = time.time()

    def time(self) -> float:
        hooks = _hooks()
        if hooks is not None and hooks.sim_now is not None:
            return hooks.sim_now()
        with self._lock:
            now = time.monotonic()
            self._sim += (now - self._real) * max(_warp(), 0.0)
            self._real = now
            return self._sim


class _ModuleShim:
    """Stands in for a stdlib module inside one moto module: a few names replaced, the rest forwarded."""

    def __init__(self, real: ModuleType, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# Virtual time (hooks.scheduler set: the in-process emulator) or warped wall time (the served
# emulator): the interpreter's threads, events, sleeps and clocks are made here, per mode.


def _scheduler() -> Scheduler | None:
    hooks = _hooks()
    return None if hooks is None else hooks.scheduler


def _new_event() -> Any:
    scheduler = _scheduler()
    return VirtualEvent(scheduler) if scheduler is not None else WarpedEvent()


def _new_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    scheduler = _scheduler()
    if scheduler is not None:
        return ActorThread(scheduler, *args, **kwargs)
    return _WarpedJoinThread(*args, **kwargs)


def _spawn(target: Callable[..., Any], name: str, args: tuple[Any, ...] = ()) -> None:
    """Start a thread of the emulator's own (a retry, an asynchronous invocation)."""
    _new_thread(target=target, name=name, args=args, daemon=True).start()


def _sleep(seconds: float) -> None:
    scheduler = _scheduler()
    if scheduler is not None:
        scheduler.sleep(seconds)
    else:
        _warped_sleep(seconds)


_wait_clock = _WarpClock()


def _time() -> float:
    scheduler = _scheduler()
    return scheduler.now() if scheduler is not None else _wait_clock.time()


class _DatetimeType(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, dt.datetime)

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, dt.datetime)


class _Datetime(dt.datetime, metaclass=_DatetimeType):
    """datetime.datetime whose now() is the emulator's time (virtual when it has a scheduler)."""

    @classmethod
    def now(cls, tz: Any = None) -> dt.datetime:  # type: ignore[override]
        scheduler = _scheduler()
        return scheduler.datetime_now(tz) if scheduler is not None else dt.datetime.now(tz)


def _utcnow() -> dt.datetime:
    scheduler = _scheduler()
    if scheduler is not None:
        return scheduler.datetime_now()  # naive UTC, as moto's utcnow()
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _new_uuid() -> uuid.UUID:
    """A random UUID from moto's generator, which the emulator seeds: the same seed, the same ids."""
    from moto.moto_api._internal import mock_random

    return cast(uuid.UUID, mock_random.uuid4())


def _long_uid() -> str:
    return str(_new_uuid())


_STDLIB_SHIMS: dict[int, Any] = {}
_jitter = random.Random(0)  # Retry's JitterStrategy FULL; seeded by start()


def _stdlib_shim(real: Any) -> Any:
    """The stand-in for one stdlib module (or name) inside moto's interpreter."""
    if id(real) not in _STDLIB_SHIMS:
        overrides: dict[int, Any] = {
            id(threading): _ModuleShim(threading, Event=_new_event, Thread=_new_thread),
            id(threading.Event): _new_event,
            id(threading.Thread): _new_thread,
            id(time): _ModuleShim(time, sleep=_sleep, time=_time),
            id(dt): _ModuleShim(dt, datetime=_Datetime),
            id(random): _ModuleShim(random, uniform=lambda a, b: _jitter.uniform(a, b)),
        }
        _STDLIB_SHIMS.update(overrides)
    return _STDLIB_SHIMS.get(id(real))


def _patch_interpreter_time(p: _Patches) -> None:
    """Every module of moto's ASL interpreter gets the emulator's threads, events, sleep and
    clock in place of the stdlib's: Wait, Retry intervals, TimeoutSeconds, HeartbeatSeconds,
    waitForTaskToken, Parallel branches and the execution's own thread all run in its time."""
    import moto.stepfunctions.parser.asl.parse.asl_parser  # loads every state type
    import moto.stepfunctions.parser.backend.execution
    import moto.stepfunctions.parser.models  # noqa: F401
    from moto.stepfunctions.parser import utils as parser_utils

    replaced = (threading, threading.Event, threading.Thread, time, dt, random)
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("moto.stepfunctions.parser"):
            continue
        for attribute, value in list(vars(module).items()):
            if any(value is real for real in replaced):
                p.set(module, attribute, _stdlib_shim(value))
            elif value is parser_utils.long_uid and module is not parser_utils:
                p.set(module, attribute, _long_uid)


_CLOCKED_SERVICES = (
    "core",
    "ec2",
    "elbv2",
    "efs",
    "dynamodb",
    "events",
    "cloudwatch",
    "sns",
    "sqs",
    "logs",
    "cloudformation",
    "iam",
    "awslambda",
    "s3",
    "kms",
    "cloudtrail",
    "stepfunctions",
)


def _patch_moto_clock(p: _Patches) -> None:
    """moto stamps resources and events with utcnow() (EC2 launch times, alarm state changes,
    the time of an event put without one): the emulator's time too."""
    from moto.core import utils as core_utils

    for service in _CLOCKED_SERVICES:
        importlib.import_module(f"moto.{service}.models")
    original = _require(core_utils, "utcnow")
    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith("moto.") and getattr(module, "utcnow", None) is original:
            p.set(module, "utcnow", _utcnow)


# --------------------------------------------------------------------------------------------------
# 33. The SDK's retry backoff waits in the emulator's time, with seeded jitter
# --------------------------------------------------------------------------------------------------


def _sdk_sleep(seconds: float) -> None:
    scheduler = _scheduler()
    if scheduler is not None and scheduler._me() is not None:
        scheduler.sleep(seconds)
    else:  # a thread outside the world (a served request): the warped clock, as interpreter waits
        _warped_sleep(seconds)


def _patch_sdk_retry_time(p: _Patches) -> None:
    import botocore.endpoint
    from botocore.retries import standard

    _require(botocore.endpoint, "time", time)
    p.set(botocore.endpoint, "time", _ModuleShim(time, sleep=_sdk_sleep))
    delay_amount = _require(standard.ExponentialBackoff, "delay_amount")

    def seeded_delay_amount(self: Any, context: Any) -> Any:
        self._random = _jitter.random
        return delay_amount(self, context)

    p.set(standard.ExponentialBackoff, "delay_amount", seeded_delay_amount)
