"""Pool test helpers: a warm fork server, and a check that worker pids are gone."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so worker processes can import _tasks


@pytest.fixture(scope="session", autouse=True)
def _warm_forkserver() -> Iterator[None]:
    # The fork server and the resource tracker live as long as the test
    # process; start them before any no_leaks snapshot is taken.
    from multiprocessing import forkserver, resource_tracker

    import trilane  # noqa: F401  (sets the fork server's preload list first)

    multiprocessing.get_context("forkserver")
    forkserver.ensure_running()
    resource_tracker.ensure_running()
    yield


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
