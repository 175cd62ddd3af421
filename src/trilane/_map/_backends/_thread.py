"""The thread backend: chunks run on a private :class:`trilane.ThreadPool`.

One pool per run, sized ``workers`` (default: ``concurrency`` when given,
else ``min(32, cpus + 4)`` like ``ThreadPoolExecutor``).  A timeout is the
pool's: the item fails at its deadline and its thread is abandoned (a thread
cannot be stopped), while the pool keeps its capacity.

If ``trilane.ThreadPool`` is not available, a ``ThreadPoolExecutor`` stands
in and the driver enforces the deadline the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from ._base import Backend, ChunkResult, chain_future, run_chunk, with_deadline

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
        self._pool: Any = None
        self._native = False

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        import trilane

        pool_cls = getattr(trilane, "ThreadPool", None)
        if pool_cls is not None:
            self._pool = pool_cls(self._workers, name="trilane-map")
            self._native = True
        else:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="trilane-map")

    def submit(self, items: list[Any]) -> asyncio.Future[ChunkResult]:
        loop = asyncio.get_running_loop()
        timeout = self.options.timeout
        if self._native:
            import trilane

            opts = trilane.TaskOptions(priority=self.options.priority, timeout=timeout)
            cf = self._pool.submit_with(opts, run_chunk, self.fn, items)
            return chain_future(loop, cf.add_done_callback, cf.result)
        cf = self._pool.submit(run_chunk, self.fn, items)
        fut = chain_future(loop, cf.add_done_callback, cf.result)
        return with_deadline(loop, fut, timeout, items[0], self.stops_by, cf.cancel)

    async def aclose(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Threads cannot be stopped: on cancel, drop queued chunks and do not wait for running ones.
            pool.shutdown(wait=not cancel, cancel_futures=cancel)
