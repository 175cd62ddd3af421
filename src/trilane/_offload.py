"""``await trilane.to_thread(...)`` and ``await trilane.to_process(...)``: the watchdog's fixes.

When the watchdog says "synchronous I/O: use ``await trilane.to_thread(...)``"
or "CPU-bound: use ``trilane.to_process``", these are the calls it means::

    coroutine ── to_thread(fn, *a) ──► shared ThreadPool ──► fn(*a) in a worker thread
        ▲                                   │ concurrent.futures.Future
        └── asyncio.wrap_future ◄───────────┘
    coroutine ── to_process(fn, *a) ─► shared ProcessPool ─► fn(*a) in a worker process

Both pools are created on first use, shared by every loop in the process,
and shut down at interpreter exit (by the pools' own ``atexit`` hook).

Cancellation goes through ``asyncio.wrap_future``: cancelling the awaiting
task cancels the pool future.  A process task that is already running is
stopped by killing its worker (SIGTERM, then SIGKILL), which the pool
replaces.  A thread cannot be killed: a running thread task runs on, but the
awaiting task is cancelled at once.

Options (priority, group, timeout, retries, name) go in a keyword-only
``options=trilane.TaskOptions(...)``, kept apart from *fn*'s own arguments.
The one name that *fn* cannot receive as a keyword is ``options``; pass that
through ``functools.partial(fn, options=...)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._pools._options import TaskOptions
    from ._pools._process import ProcessPool
    from ._pools._thread import ThreadPool

__all__ = ["to_process", "to_thread"]

T = TypeVar("T")

_lock = threading.Lock()
_thread_pool: ThreadPool | None = None
_process_pool: ProcessPool | None = None


def _check(options: object) -> TaskOptions:
    from ._pools._options import DEFAULT_OPTIONS, TaskOptions

    if options is None:
        return DEFAULT_OPTIONS
    if not isinstance(options, TaskOptions):
        raise TypeError(
            f"options= must be a trilane.TaskOptions (priority, group, timeout, ...), got {options!r}; "
            "to pass a keyword argument named 'options' to the function, use functools.partial(fn, options=...)"
        )
    return options


def shared_thread_pool() -> ThreadPool:
    """Return the ThreadPool that :func:`to_thread` uses, creating it on first use."""
    global _thread_pool
    from ._pools._thread import ThreadPool

    with _lock:
        if _thread_pool is None or _thread_pool._shutdown:
            _thread_pool = ThreadPool(name="trilane-to-thread")
        return _thread_pool


def shared_process_pool() -> ProcessPool:
    """Return the ProcessPool that :func:`to_process` uses, creating it on first use."""
    global _process_pool
    from ._pools._process import ProcessPool

    with _lock:
        if _process_pool is None or _process_pool._shutdown:
            _process_pool = ProcessPool()
        return _process_pool


def shutdown_shared_pools() -> None:
    """Shut down the shared pools (new ones are made on the next call); tests use it to check for leaks."""
    global _thread_pool, _process_pool
    with _lock:
        pools = [_thread_pool, _process_pool]
        _thread_pool = _process_pool = None
    for pool in pools:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class _InContext:
    """Calls *fn* inside a copy of the caller's contextvars, as ``asyncio.to_thread`` does."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._context = contextvars.copy_context()
        self._fn = fn
        # Errors from the pool name the task by its function, not by this wrapper.
        self.__qualname__ = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._context.run(self._fn, *args, **kwargs)


async def to_thread(fn: Callable[..., T], /, *args: Any, options: TaskOptions | None = None, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in trilane's shared ThreadPool and await its result.

    Use it for blocking calls (``requests.get``, file and database I/O) so
    they do not block the event loop.  ``options`` is a
    :class:`trilane.TaskOptions` (priority, group, timeout, name).  The
    caller's contextvars are visible to *fn*.  Cancelling the awaiting task
    cancels a task still queued; one already running finishes in its thread
    (threads cannot be killed), while the awaiting task is cancelled at once.
    On ``timeout`` it raises :class:`trilane.TaskTimeout`.
    """
    opts = _check(options)
    future = shared_thread_pool().submit_with(opts, _InContext(fn), *args, **kwargs)
    return await asyncio.wrap_future(future)


async def to_process(fn: Callable[..., T], /, *args: Any, options: TaskOptions | None = None, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in trilane's shared ProcessPool and await its result.

    Use it for CPU-bound work, which would otherwise hold the event loop (and
    the GIL).  *fn*, its arguments and its result must be picklable (define
    *fn* at module top level).  ``options`` is a :class:`trilane.TaskOptions`.
    Cancelling the awaiting task kills the worker running the task, and so
    does ``timeout`` (which raises :class:`trilane.TaskTimeout`); the pool
    replaces the worker.
    """
    opts = _check(options)
    future = shared_process_pool().submit_with(opts, fn, *args, **kwargs)
    return await asyncio.wrap_future(future)
