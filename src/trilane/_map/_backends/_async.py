"""The async backend: each item is a task on the driver's loop.

``trilane.map`` runs the driver on a private trilane loop in the calling
thread; ``trilane.amap`` runs it on the loop that is already running.  Each
item becomes one task (``trilane.spawn`` with the run's ``priority``, which
the ``priority`` and ``fair`` policies honour), so ``concurrency`` is simply
the number of tasks alive at once.  A timeout cancels the coroutine.

A one-item chunk (the usual case: chunks only hold more items when the user
asks for a ``chunksize``) runs as a task of ``fn(item)`` itself, with no
wrapper coroutine, and the driver reads the item's value or exception
straight off the task (``raw_single``): a wrapper's frames, result tuple and
timers cost several microseconds per item, which an HTTP fan-out notices.

A synchronous function runs in a thread, as ``trilane.to_thread`` would run
it, but on a private :class:`trilane.ThreadPool` of ``concurrency`` threads
(at most 64) instead of the shared one: ``concurrency=50`` then really means
50 calls at once, and the run leaves no thread behind.  A timeout abandons
the thread (threads cannot be stopped) and fails the item at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..._core._loop import Loop, spawn
from ..._pools._base import _live_pools
from ..._pools._thread import ThreadPool
from ._base import Backend, ChunkResult, await_item, run_chunk

__all__ = ["AsyncBackend"]

DEFAULT_CONCURRENCY = 100
MAX_THREADS = 64


class AsyncBackend(Backend):
    """Runs each item as a task on the running event loop."""

    name = "async"
    chunks = False
    raw_single = True
    stops_by = "its coroutine was cancelled"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[ChunkResult]] = set()
        self._pool: ThreadPool | None = None

    def default_concurrency(self) -> int:
        return DEFAULT_CONCURRENCY

    def submit(self, items: list[Any]) -> asyncio.Future[Any]:
        if self.raw_single and len(items) == 1:  # the task's result is the item's value
            fn = self.fn if self.is_async else self._threaded
            timeout = self.options.timeout
            coro = fn(items[0]) if timeout is None else await_item(fn, items[0], timeout)
        else:
            coro = self._run(items)
        loop = asyncio.get_running_loop()
        task: asyncio.Task[Any]
        if isinstance(loop, Loop) or self.options.priority:
            task = spawn(coro, priority=self.options.priority)
        else:
            # Priorities mean nothing to a stock asyncio loop: skip spawn()'s bookkeeping.
            task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, items: list[Any]) -> ChunkResult:
        values: list[Any] = []
        failures: dict[int, BaseException] = {}
        start = time.perf_counter()
        fn = self.fn if self.is_async else self._threaded
        for i, item in enumerate(items):
            try:
                values.append(await await_item(fn, item, self.options.timeout))
                continue
            except Exception as exc:
                failures[i] = exc
            values.append(None)
        return values, failures or None, time.perf_counter() - start

    async def _threaded(self, item: Any) -> Any:
        if self._pool is None:
            size = min(self.options.concurrency or DEFAULT_CONCURRENCY, MAX_THREADS)
            self._pool = ThreadPool(size, name="trilane-map-async")
        cf = self._pool.submit(run_chunk, self.fn, [item])
        (value,), failed, _ = await asyncio.wrap_future(cf)
        if failed:
            raise failed[0]
        return value

    async def aclose(self, *, cancel: bool) -> None:
        if cancel:
            for task in list(self._tasks):
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            if cancel:  # abandoned threads: do not join them at exit (see _thread.py)
                _live_pools.discard(self._pool)
            self._pool = None
