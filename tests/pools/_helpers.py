"""Helpers for the pool tests: checks that worker processes are gone."""

from __future__ import annotations

import time
from collections.abc import Iterable

from _procs import pid_alive as alive


def assert_pids_gone(pids: Iterable[int], within: float = 5.0) -> None:
    """Fail unless every pid in *pids* has exited (or is a zombie) within *within* s."""
    deadline = time.monotonic() + within
    left = {p for p in pids if p}
    while left:
        left = {p for p in left if alive(p)}
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"worker processes still alive: {sorted(left)}")
        time.sleep(0.02)


def worker_pids(pool: object) -> set[int]:
    """The pids of a ProcessPool's current workers."""
    return {w.pid for w in getattr(pool, "_workers", {}).values()}
