"""Clocks: where the loop gets its time, so that tests can replace it.

The loop asks its clock two things: what time it is (:meth:`Clock.time`), and,
when nothing is ready, how long it may block in ``select`` before the next
timer is due (:meth:`Clock.sleep_time`).  The real clock answers with
``time.monotonic`` and the timer's distance.  :class:`MockClock` answers with
virtual time and jumps straight to the next timer, so a test of a ten-minute
timeout finishes at once and never depends on the machine's speed.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

__all__ = ["Clock", "MockClock", "MonotonicClock"]


class Clock(ABC):
    """Where a loop reads the time.  Subclass it to drive a loop on another timeline."""

    @abstractmethod
    def time(self) -> float:
        """Return the current time in seconds; it must never go backwards."""

    def sleep_time(self, timeout: float) -> float:
        """Return how many real seconds the loop may block to wait *timeout* clock seconds."""
        return timeout


class MonotonicClock(Clock):
    """The real clock: ``time.monotonic``."""

    def time(self) -> float:
        return time.monotonic()


class MockClock(Clock):
    """Virtual time for tests.

    Time stands still while callbacks run.  Whenever the loop has nothing
    ready and would block until a timer, the clock jumps to that timer's
    deadline instead (I/O is still polled, without blocking).  :meth:`jump`
    moves time forward by hand.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def time(self) -> float:
        return self._now

    def jump(self, seconds: float) -> None:
        """Move virtual time forward by *seconds* (which must not be negative)."""
        if seconds < 0:
            raise ValueError(f"time can only move forward, got jump({seconds!r})")
        self._now += seconds

    def sleep_time(self, timeout: float) -> float:
        self._now += timeout
        return 0.0

    def __repr__(self) -> str:
        return f"<MockClock now={self._now:.6f}>"
