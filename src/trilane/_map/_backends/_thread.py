"""The thread backend: chunks run on a private :class:`trilane.ThreadPool`.

One pool per run, sized ``workers`` (default: ``concurrency`` when given,
else ``min(32, cpus + 4)`` like ``ThreadPoolExecutor``).  A timeout is the
pool's: the item fails at its deadline and its thread is abandoned (a thread
cannot be stopped), while the pool keeps its capacity.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from ..._pools._base import _live_pools
from ..._pools._options import TaskOptions
from ..._pools._thread import ThreadPool
from ._base import Backend, ChunkResult, run_chunk

__all__ = ["ThreadBackend"]


def default_thread_workers(concurrency: int | None) -> int:
    """Threads for a run: the concurrency asked for, else ThreadPoolExecutor's default."""
    return concurrency if concurrency is not None else min(32, (os.cpu_count() or 1) + 4)


class ThreadBackend(Backend):
    """Runs chunks on a private thread pool."""

    name = "thread"
    stops_by = "the thread could not be stopped and was abandoned"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers = self.options.workers or default_thread_workers(self.options.concurrency)
        self._task_options = TaskOptions(priority=self.options.priority, timeout=self.options.timeout)
        self._pool: ThreadPool | None = None

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = ThreadPool(self._workers, name="trilane-map")

    def submit(self, items: list[Any]) -> concurrent.futures.Future[ChunkResult]:
        assert self._pool is not None
        opts = self._task_options
        cf = self._pool.submit_with(opts, run_chunk, self.fn, items)
        return cf

    async def aclose(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Threads cannot be stopped: on cancel, drop queued chunks and do not wait for running ones.
            pool.shutdown(wait=not cancel, cancel_futures=cancel)
            if cancel:
                # The pools' atexit hook would join the abandoned (daemon) threads, so a
                # Ctrl-C'd program would hang at exit until their calls return.  This run
                # has already given them up: take the pool off that list.
                _live_pools.discard(pool)
