"""The serial backend: the oracle.  Items run one at a time in the caller's thread.

Every other backend is tested against this one, so it stays simple: a chunk
runs inline inside ``submit`` and the returned future is already done.
A coroutine function is awaited one item at a time on the driver's loop.

A running synchronous call cannot be stopped here, so ``timeout`` is checked
after the call returns: an item that ran past it fails with TaskTimeout, and
its result is dropped (the same outcome every other backend gives).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from ._base import Backend, ChunkResult, await_item, run_chunk, timeout_error

__all__ = ["INLINE", "SerialBackend"]


class _Inline(threading.local):
    """Whether this thread is inside a user function run inline (Ctrl-C then interrupts it)."""

    running = False


INLINE = _Inline()


def _run_inline(fn: Any, items: list[Any]) -> ChunkResult:
    INLINE.running = True
    try:
        return run_chunk(fn, items)
    finally:
        INLINE.running = False


class SerialBackend(Backend):
    """Runs every item in the calling thread, one after another."""

    name = "serial"
    stops_by = "the serial backend cannot stop a running call, so its result was dropped when it returned"

    @property
    def workers(self) -> int:
        return 1

    def default_concurrency(self) -> int:
        return 1

    def submit(self, items: list[Any]) -> asyncio.Future[ChunkResult]:
        loop = asyncio.get_running_loop()
        if self.is_async:
            return loop.create_task(self._run_async(items))
        fut: asyncio.Future[ChunkResult] = loop.create_future()
        timeout = self.options.timeout
        if timeout is None:
            fut.set_result(_run_inline(self.fn, items))
            return fut
        values: list[Any] = []
        failures: dict[int, BaseException] = {}
        total = 0.0
        for i, item in enumerate(items):
            (value,), failed, seconds = _run_inline(self.fn, [item])
            total += seconds
            if seconds > timeout:
                failures[i] = timeout_error(item, timeout, self.stops_by)
            elif failed:
                failures[i] = failed[0]
            values.append(value)
        fut.set_result((values, failures or None, total))
        return fut

    async def _run_async(self, items: list[Any]) -> ChunkResult:
        values: list[Any] = []
        failures: dict[int, BaseException] = {}
        start = time.perf_counter()
        timeout = self.options.timeout
        for i, item in enumerate(items):
            try:
                values.append(await await_item(self.fn, item, timeout))
                continue
            except Exception as exc:
                failures[i] = exc
            values.append(None)
        return values, failures or None, time.perf_counter() - start

    async def aclose(self, *, cancel: bool) -> None:
        return None
