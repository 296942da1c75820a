"""Time for the I/O shell only: the pure cores never read a clock (time arrives as an event).

Why a protocol: the consensus driver and the simulator share code, so the driver takes a clock
object; real nodes pass :class:`MonotonicClock`, the simulator a :class:`ManualClock` that
advances only when told to.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only by :meth:`advance` (for simulations and tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
