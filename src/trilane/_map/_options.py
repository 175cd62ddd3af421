"""The options of ``trilane.map``: parsing and validation, in one place.

Every backend reads the same :class:`MapOptions`, so an option cannot mean one
thing on threads and another on processes.  Validation happens when ``map()``
is called, before any item is pulled, and each error names the option, the
value it got, and the values it accepts.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["BACKENDS", "DEFAULT_BACKOFF", "ERRORS", "Backoff", "MapOptions", "default_key", "parse_rate"]

BACKENDS: Final = ("auto", "serial", "thread", "process", "async", "dask")
ERRORS: Final = ("raise", "collect", "skip")

_UNITS: Final = {
    **dict.fromkeys(("s", "sec", "second"), 1.0),
    **dict.fromkeys(("m", "min", "minute"), 60.0),
    **dict.fromkeys(("h", "hour"), 3600.0),
}
_RATE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(\d+(?:\.\d*)?)?\s*([a-z]+?)s?\s*$")


def parse_rate(rate: str | float) -> float:
    """Return *rate* ("100/s", "5/min", "1000/h", "10/2s" or a number per second) in items per second."""
    if isinstance(rate, bool):
        raise TypeError(f"rate must be a string such as '100/s' or a number per second, got {rate!r}")
    if isinstance(rate, int | float):
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of items per second, got {rate!r}")
        return float(rate)
    if not isinstance(rate, str):
        raise TypeError(f"rate must be a string such as '100/s' or a number per second, got {rate!r}")
    m = _RATE_RE.match(rate.lower())
    unit = m and (_UNITS.get(m.group(3)) or _UNITS.get(m.group(3) + "s"))
    if not m or unit is None:
        raise ValueError(
            f"rate {rate!r} is not understood: write COUNT/UNIT, such as '100/s', '5/min' or '1000/h' "
            f"(units: {', '.join(sorted(set(_UNITS)))})"
        )
    count = float(m.group(1))
    per = float(m.group(2)) if m.group(2) else 1.0
    if count <= 0 or per <= 0:
        raise ValueError(f"rate {rate!r} must allow a positive number of items per time unit")
    return count / (per * unit)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry *n* (1, 2, ...): exponential, capped, with jitter.

    The delay before retry *n* is ``min(cap, initial * factor ** (n - 1))``,
    multiplied by a random factor in ``[1 - jitter, 1]`` so that failing items
    do not retry in lockstep.  ``trilane.map(..., backoff=0.5)`` is short for
    ``Backoff(initial=0.5)``.
    """

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "cap", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"Backoff.{name} must be a finite number, got {value!r}")
        if self.initial < 0 or self.cap < 0:
            raise ValueError(f"Backoff delays cannot be negative, got initial={self.initial}, cap={self.cap}")
        if self.factor < 1:
            raise ValueError(f"Backoff.factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait before retry number *retry* (counting from 1)."""
        base = min(self.cap, self.initial * self.factor ** max(0, retry - 1))
        u = (rng or random).random()
        return base * (1.0 - self.jitter * u)


DEFAULT_BACKOFF: Final = Backoff()


def default_key(item: Any, index: int) -> Hashable:
    """The checkpoint key of *item*: the item itself when it is JSON-able and hashable, else its index."""
    if isinstance(item, str | int | float | bool) or item is None:
        return item  # the fast, common case
    try:
        hash(item)
        json.dumps(item)
    except (TypeError, ValueError):
        return index
    return item  # type: ignore[no-any-return]


def _positive_int(name: str, value: Any, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class MapOptions:
    """The validated options of one map run (see ``trilane.map`` for their meaning)."""

    backend: str = "auto"
    workers: int | None = None
    concurrency: int | None = None
    timeout: float | None = None
    retries: int = 0
    backoff: Backoff = Backoff()
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    rate: float | None = None
    ordered: bool = True
    errors: str = "raise"
    progress: bool | str = False
    checkpoint: str | None = None
    key: Callable[[Any], Hashable] | None = None
    chunksize: int | str = "auto"
    priority: int = 0

    @classmethod
    def build(cls, **kw: Any) -> MapOptions:
        """Validate raw keyword arguments and return the options; raise ValueError/TypeError on bad ones."""
        backend = kw["backend"]
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(map(repr, BACKENDS))}")
        errors = kw["errors"]
        if errors not in ERRORS:
            raise ValueError(f"unknown errors mode {errors!r}; valid values: {', '.join(map(repr, ERRORS))}")
        workers = _positive_int("workers", kw["workers"])
        concurrency = _positive_int("concurrency", kw["concurrency"])
        timeout = kw["timeout"]
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
            if not timeout > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
            timeout = float(timeout)
        retries = kw["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(f"retries must be an int, got {retries!r}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        backoff = kw["backoff"]
        if isinstance(backoff, int | float) and not isinstance(backoff, bool):
            backoff = Backoff(initial=float(backoff))
        elif not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a number of seconds or a trilane.Backoff, got {backoff!r}")
        retry_on = kw["retry_on"]
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise TypeError(f"retry_on must be an exception class or a tuple of them, got {retry_on!r}")
        rate = None if kw["rate"] is None else parse_rate(kw["rate"])
        progress = kw["progress"]
        if progress not in (True, False, "force"):
            raise ValueError(f"progress must be True, False or 'force', got {progress!r}")
        checkpoint = kw["checkpoint"]
        if checkpoint is not None:
            checkpoint = str(checkpoint)  # accepts os.PathLike
        key = kw["key"]
        if key is not None and not callable(key):
            raise TypeError(f"key must be a function of the item or None, got {key!r}")
        chunksize = kw["chunksize"]
        if chunksize != "auto":
            chunksize = _positive_int("chunksize", chunksize, allow_none=False)
        priority = kw["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {priority!r}")
        return cls(
            backend=backend,
            workers=workers,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            retry_on=retry_on,
            rate=rate,
            ordered=bool(kw["ordered"]),
            errors=errors,
            progress=progress,
            checkpoint=checkpoint,
            key=key,
            chunksize=chunksize,
            priority=priority,
        )
