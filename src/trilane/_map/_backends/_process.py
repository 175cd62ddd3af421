"""The process backend: chunks run on a private :class:`trilane.ProcessPool`.

One pool per run, ``workers`` processes (default: the CPU count).  The
function and the items are pickled (a function that cannot be pickled fails
at submit with :class:`trilane.NotPicklable`).  A timeout kills the worker
that runs the item, and the pool replaces it; a worker that dies fails its
chunk with :class:`trilane.WorkerCrashed`, which ``retries=`` can retry.
Chunks are sized automatically so that the pickling round trip stays a small
part of each task.

If ``trilane.ProcessPool`` is not available, a ``ProcessPoolExecutor``
stands in; it cannot kill one worker, so a timeout only abandons the item.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from ._base import Backend, ChunkResult, chain_future, run_chunk, with_deadline

__all__ = ["ProcessBackend"]


def default_process_workers() -> int:
    """Processes for a run: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ProcessBackend(Backend):
    """Runs chunks on a private process pool."""

    name = "process"
    stops_by = "its worker process was killed"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers = self.options.workers or default_process_workers()
        self._pool: Any = None
        self._native = False

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        import trilane

        pool_cls = getattr(trilane, "ProcessPool", None)
        if pool_cls is not None:
            self._pool = pool_cls(self._workers)
            self._native = True
        else:
            self._pool = concurrent.futures.ProcessPoolExecutor(self._workers)

    def submit(self, items: list[Any]) -> asyncio.Future[ChunkResult]:
        loop = asyncio.get_running_loop()
        timeout = self.options.timeout
        if self._native:
            import trilane

            opts = trilane.TaskOptions(priority=self.options.priority, timeout=timeout)
            cf = self._pool.submit_with(opts, run_chunk, self.fn, items, True)
            return chain_future(loop, cf.add_done_callback, cf.result)
        cf = self._pool.submit(run_chunk, self.fn, items, True)
        fut = chain_future(loop, cf.add_done_callback, cf.result)
        return with_deadline(loop, fut, timeout, items[0], "the item was abandoned", cf.cancel)

    async def aclose(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            terminate = getattr(pool, "terminate", None)
            if terminate is not None:
                terminate()
                return
            if not self._native:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()  # stdlib stand-in: no public way to stop running work
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: pool.shutdown(wait=True, cancel_futures=cancel))
