"""The token bucket behind ``rate=``: one bucket per run, shared by every worker.

Every attempt of every item (retries too: they hit the same external service)
takes one token before it is handed to a backend.  The bucket holds at most
``burst`` tokens and refills at ``rate`` tokens per second, so over any
window of *t* seconds at most ``burst + rate * t`` attempts start.  The
default ``burst=1`` spaces starts evenly, ``1 / rate`` apart, which is the
strictest reading of "100/s".

The bucket does no waiting itself: :meth:`TokenBucket.take` either takes a
token or says how long until one is due.  The map driver turns that into a
timer on its loop, so on a :class:`trilane.MockClock` rate-limited runs take
no real time, and one lock makes the bucket safe to share between threads.
"""

from __future__ import annotations

import threading

__all__ = ["TokenBucket"]


class TokenBucket:
    """A thread-safe token bucket on a caller-supplied clock (seconds as floats)."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """Take a token at time *now* and return 0.0, or return the seconds until one is available."""
        with self._lock:
            if self._stamp is not None and now > self._stamp:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            if self._stamp is None or now > self._stamp:
                self._stamp = now
            if self._tokens >= 1.0 - 1e-9:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def __repr__(self) -> str:
        return f"<TokenBucket rate={self.rate:g}/s burst={self.burst:g} tokens={self._tokens:.3f}>"
