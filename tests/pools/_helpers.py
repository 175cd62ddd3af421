"""Helpers for the pool tests: checks that worker processes are gone."""

from __future__ import annotations

import time
from collections.abc import Iterable


def alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


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
