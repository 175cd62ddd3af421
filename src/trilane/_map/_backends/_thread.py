"""The thread backend: chunks run on a private :class:`trilane.ThreadPool`.

One pool per run, sized ``workers`` (default: ``concurrency`` when given,
else ``min(32, cpus + 4)`` like ``ThreadPoolExecutor``).  Two ways to feed it::

    no timeout (feeders):   driver ──put(ticket)──▶ SimpleQueue ──get──▶ `workers` feeder
                                                                          tasks, each a loop
                            driver ◀── inbox ◀── ticket finished ◀───────┘ on the pool
    timeout (per chunk):    driver ──submit_with(TaskOptions(timeout))──▶ pool ──▶ future

Without a timeout, each pool thread runs one long *feeder* task that takes
chunks from a queue until it gets the stop sentinel.  A chunk then costs a
``SimpleQueue.put`` and a small :class:`_Ticket` instead of a pool task and a
``Future``, so the threads (and the GIL) spend their time on the user's
function; this is what lets a thread run beat ``ThreadPoolExecutor.map``.
With a timeout, each item is its own pool task so that the pool can enforce
the deadline: the item fails at once, its thread is abandoned (threads cannot
be stopped), and the pool starts a replacement so it keeps its capacity.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
from collections.abc import Callable
from typing import Any

from ..._pools._base import _live_pools
from ..._pools._options import TaskOptions
from ..._pools._thread import ThreadPool
from ._base import Backend, ChunkResult, run_chunk

__all__ = ["ThreadBackend"]


def default_thread_workers(concurrency: int | None) -> int:
    """Threads for a run: the concurrency asked for, else ThreadPoolExecutor's default."""
    return concurrency if concurrency is not None else min(32, (os.cpu_count() or 1) + 4)


class _Ticket:
    """One chunk handed to the feeders: just the part of a future that the driver uses.

    ``add_done_callback`` may race with the feeder finishing the ticket, so the
    callback can run twice; the driver ignores a second completion of a ticket.
    """

    __slots__ = ("_callback", "_cancelled", "_done", "_exc", "_result", "items")

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self._result: ChunkResult | None = None
        self._exc: BaseException | None = None
        self._done = False
        self._cancelled = False
        self._callback: Callable[[Any], None] | None = None

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self._callback = fn
        if self._done:
            fn(self)

    def done(self) -> bool:
        return self._done

    def cancel(self) -> bool:
        """Skip the chunk if no feeder has taken it yet (a running chunk cannot be stopped)."""
        self._cancelled = True
        return not self._done

    def result(self) -> ChunkResult:
        if self._exc is not None:
            raise self._exc
        assert self._result is not None
        return self._result

    def finish(self, result: ChunkResult | None, exc: BaseException | None) -> None:
        self._result, self._exc = result, exc
        self._done = True
        callback = self._callback
        if callback is not None:
            callback(self)


def _feeder(tickets: queue.SimpleQueue[_Ticket | None], fn: Callable[[Any], Any]) -> None:
    """A pool task: run chunks from *tickets* until the stop sentinel (None)."""
    while True:
        ticket = tickets.get()
        if ticket is None:
            return
        if ticket._cancelled:
            continue
        try:
            result = run_chunk(fn, ticket.items)
        except BaseException as exc:  # SystemExit from the function: fail this chunk, keep feeding
            ticket.finish(None, exc)
        else:
            ticket.finish(result, None)


class ThreadBackend(Backend):
    """Runs chunks on a private thread pool."""

    name = "thread"
    stops_by = "the thread could not be stopped and was abandoned"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers = self.options.workers or default_thread_workers(self.options.concurrency)
        self._task_options = TaskOptions(priority=self.options.priority, timeout=self.options.timeout)
        self._pool: ThreadPool | None = None
        self._tickets: queue.SimpleQueue[_Ticket | None] | None = None

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = ThreadPool(self._workers, name="trilane-map")
        if self.options.timeout is None:
            self._tickets = queue.SimpleQueue()
            for _ in range(self._workers):
                self._pool.submit(_feeder, self._tickets, self.fn)

    def submit(self, items: list[Any]) -> concurrent.futures.Future[ChunkResult] | _Ticket:
        assert self._pool is not None
        if self._tickets is not None:
            ticket = _Ticket(items)
            self._tickets.put(ticket)
            return ticket
        return self._pool.submit_with(self._task_options, run_chunk, self.fn, items)

    async def aclose(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        tickets, self._tickets = self._tickets, None
        if tickets is not None:
            if cancel:
                while True:  # chunks no feeder has taken: skip them
                    try:
                        waiting = tickets.get_nowait()
                    except queue.Empty:
                        break
                    if waiting is not None:
                        waiting.cancel()
            for _ in range(self._workers):
                tickets.put(None)
        if pool is not None:
            # Threads cannot be stopped: on cancel, drop queued chunks and do not wait for running ones.
            pool.shutdown(wait=not cancel, cancel_futures=cancel)
            if cancel:
                # The pools' atexit hook would join the abandoned (daemon) threads, so a
                # Ctrl-C'd program would hang at exit until their calls return.  This run
                # has already given them up: take the pool off that list.
                _live_pools.discard(pool)
