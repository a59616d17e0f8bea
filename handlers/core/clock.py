"""The one clock every step reads.

On AWS it is the wall clock. The emulator runs the world in simulated time and swaps the
source once at start-up, so handlers, boot gate and simulation agree on "now".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], float] = time.time


def set_source(source: Callable[[], float]) -> None:
    global _source
    _source = source


def reset_source() -> None:
    set_source(time.time)


def epoch() -> float:
    return _source()


def now() -> datetime:
    return datetime.fromtimestamp(_source(), tz=UTC)
