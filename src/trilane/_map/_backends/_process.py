"""The process backend: chunks run on a private :class:`trilane.ProcessPool`.

One pool per run, ``workers`` processes (default: the CPU count).  The
function and the items are pickled (a function that cannot be pickled fails
at submit with :class:`trilane.NotPicklable`).  A timeout kills the worker
that runs the item, and the pool replaces it; a worker that dies fails its
chunk with :class:`trilane.WorkerCrashed`, which ``retries=`` can retry.
Chunks are sized automatically so that the pickling round trip stays a small
part of each task.

Closing early (``errors="raise"``, ``close()``, Ctrl-C) shuts the pool down
with ``cancel_futures=True``, which kills the workers that still run items.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any

from ..._pools._options import TaskOptions
from ..._pools._process import ProcessPool
from ._base import Backend, ChunkResult, run_chunk

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
        self._task_options = TaskOptions(priority=self.options.priority, timeout=self.options.timeout)
        self._pool: ProcessPool | None = None

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = ProcessPool(self._workers)

    def submit(self, items: list[Any]) -> concurrent.futures.Future[ChunkResult]:
        assert self._pool is not None
        opts = self._task_options
        cf = self._pool.submit_with(opts, run_chunk, self.fn, items, True)
        return cf

    async def aclose(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # cancel_futures also stops running items: their workers get SIGTERM, then SIGKILL.
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: pool.shutdown(wait=True, cancel_futures=cancel)
            )
