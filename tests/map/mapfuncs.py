"""Module-level functions for the map tests (module level so that worker processes can import them)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    """A random function, described by data so it pickles: which items fail, which are slow."""

    fail_mod: int = 0  # items with x % fail_mod == fail_rem raise (0: never)
    fail_rem: int = 0
    error: str = "ValueError"  # ValueError or KeyError
    slow_mod: int = 0  # items with x % slow_mod == 0 sleep slow_s
    slow_s: float = 0.0

    def outcome(self, x: int) -> int:
        if self.slow_mod and x % self.slow_mod == 0:
            time.sleep(self.slow_s)
        if self.fail_mod and x % self.fail_mod == self.fail_rem:
            raise (ValueError if self.error == "ValueError" else KeyError)(f"item {x} fails")
        return x * 2 + 1

    async def aoutcome(self, x: int) -> int:
        if self.slow_mod and x % self.slow_mod == 0:
            await asyncio.sleep(self.slow_s)
        if self.fail_mod and x % self.fail_mod == self.fail_rem:
            raise (ValueError if self.error == "ValueError" else KeyError)(f"item {x} fails")
        return x * 2 + 1


def double(x: int) -> int:
    return x * 2


def identity(x: object) -> object:
    return x


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


async def asleep_for(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def spin(n: int) -> int:
    """CPU-bound: about n * 0.1 µs of pure Python arithmetic."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def my_pid(_: object) -> int:
    return os.getpid()


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def crash_on_7(x: int) -> int:
    if x == 7:
        os._exit(3)
    return x


def fail_zero_else_sleep(x: float) -> float:
    if x == 0:
        raise ValueError("zero")
    time.sleep(x)
    return x
