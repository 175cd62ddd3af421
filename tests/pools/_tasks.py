"""Top-level task functions for the pool tests (workers import them by name)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import Any

_state: dict[str, Any] = {}


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def echo(x: Any) -> Any:
    return x


def getpid(_: object = None) -> int:
    return os.getpid()


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def boom(x: object) -> None:
    raise ValueError(f"boom on {x!r}")


def fail_on(x: int, bad: int = 3) -> int:
    if x == bad:
        raise KeyError(x)
    return x + 1


def sigkill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    ctypes.string_at(0)


def hard_exit(code: int) -> None:
    os._exit(code)


def soft_exit(code: int) -> None:
    sys.exit(code)


def ignore_sigterm_and_sleep(seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def crash_once(marker: str) -> str:
    """Crash the worker the first time (creating *marker*), succeed the second."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(9)
    return "second time lucky"


def poison_or_inc(x: int) -> int:
    if x == 13:
        os._exit(13)
    return x + 1


def init_state(value: str) -> None:
    _state["init"] = value


def read_state() -> str:
    return str(_state.get("init"))


def failing_init() -> None:
    raise RuntimeError("initializer is broken")


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this object refuses to be pickled")


def make_unpicklable() -> Unpicklable:
    return Unpicklable()


class BreaksInWorker:
    """Pickles fine in the parent; unpickling it raises (in the worker)."""

    def __getstate__(self) -> dict[str, int]:
        return {"x": 1}

    def __setstate__(self, state: dict[str, int]) -> None:
        raise RuntimeError("cannot rebuild BreaksInWorker here")


def nbytes(x: Any) -> int:
    return len(x)


def double_array(a: Any) -> Any:
    return a * 2
