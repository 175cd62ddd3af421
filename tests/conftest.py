"""Shared fixtures: both loops for differential tests, and a leak check."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import trilane

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

LOOP_FACTORIES: dict[str, LoopFactory] = {
    "trilane": trilane.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(scope="session", autouse=True)
def _warm_forkserver() -> Iterator[None]:
    """Start the fork server and the resource tracker before any no_leaks snapshot.

    Both live as long as the test process, so a test that starts them first
    would otherwise see them as leaked.
    """
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker

    multiprocessing.get_context("forkserver")  # trilane is imported above: its preload list is set
    forkserver.ensure_running()
    resource_tracker.ensure_running()
    yield


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """Each test that takes this runs once on trilane.Loop and once on stock asyncio."""
    return LOOP_FACTORIES[request.param]


@pytest.fixture
def run_on(loop_factory: LoopFactory) -> Callable[..., object]:
    """``run_on(coro)`` runs a coroutine on the parametrized loop and returns its result."""

    def run(coro: object) -> object:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)  # type: ignore[arg-type]

    return run


def _children() -> set[int]:
    pids: set[int] = set()
    base = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def _fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None}


def snapshot() -> tuple[set[int], set[int], set[int]]:
    """Return the current (threads, child pids, open fds)."""
    return _threads(), _children(), _fds()


def assert_no_leaks(before: tuple[set[int], set[int], set[int]], settle: float = 5.0) -> None:
    """Fail unless every thread, child process and fd not in *before* is gone within *settle* s."""
    deadline = time.monotonic() + settle
    while True:
        threads, children, fds = snapshot()
        extra = (threads - before[0], children - before[1], fds - before[2])
        if not any(extra):
            return
        if time.monotonic() > deadline:
            names = [t.name for t in threading.enumerate() if t.ident in extra[0]]
            links = {}
            for fd in extra[2]:
                try:
                    links[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    links[fd] = "?"
            raise AssertionError(f"leaked threads {names}, child pids {sorted(extra[1])}, fds {links}")
        time.sleep(0.02)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Check that the test leaves no thread, child process or file descriptor behind."""
    before = snapshot()
    yield
    assert_no_leaks(before)
