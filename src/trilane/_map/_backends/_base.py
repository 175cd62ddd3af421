"""The contract every map backend implements, and the chunk runner they share.

A backend only *runs* things.  Everything with a meaning (retries, rate,
ordering, errors, checkpoint, progress, bounded memory) is the driver's job
(``trilane._map._driver``), so it is the same on every backend::

    driver ──submit(items)──▶ backend ──▶ pool / loop / cluster
       ▲                        │
       └──── asyncio.Future[ChunkResult] (resolved on the driver's loop)

``submit`` gets a *chunk*: a list of consecutive items (one item when a
timeout, a rate or retries of that item apply).  The chunk runs through
:func:`~trilane._map._chunk.run_chunk` (re-exported here), which calls the
function on each item and catches each item's exception separately.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from ..._core._errors import TaskTimeout
from .._chunk import ChunkResult, run_chunk
from .._options import MapOptions

__all__ = ["Backend", "ChunkResult", "describe_item", "run_chunk", "timeout_error"]


def describe_item(item: Any) -> str:
    """A short description of an item for error messages."""
    text = repr(item)
    return f"item {text if len(text) <= 80 else text[:77] + '...'}"


def timeout_error(item: Any, timeout: float, how: str) -> TaskTimeout:
    """The TaskTimeout for *item*, saying how the work was stopped."""
    return TaskTimeout(describe_item(item), timeout, how)


class Backend(ABC):
    """One way of running chunks of items.  Subclasses live one per module in this package."""

    name: ClassVar[str]
    #: Whether chunks of more than one item help (a pool hand-off costs more than a tiny item).
    chunks: ClassVar[bool] = True
    #: How a timeout stops the work, for the TaskTimeout message.
    stops_by: ClassVar[str] = ""
    #: Whether a one-item submit returns a future of the item's own value (its exception:
    #: the item's failure) instead of a ChunkResult; the driver then times the item itself.
    raw_single: ClassVar[bool] = False

    def __init__(self, fn: Callable[[Any], Any], options: MapOptions, *, is_async: bool) -> None:
        self.fn = fn
        self.options = options
        self.is_async = is_async

    @property
    def workers(self) -> int | None:
        """How many workers run items (None when the backend has no fixed number)."""
        return None

    def default_concurrency(self) -> int:
        """Items in flight when the user gave no ``concurrency``."""
        return 2 * (self.workers or 1)

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:  # noqa: B027 - optional hook
        """Start pools or connect; called once, on the driver's loop, before the first submit."""

    @abstractmethod
    def submit(self, items: list[Any]) -> Any:
        """Start running *items*; return an ``asyncio.Future`` on the running loop, or a
        ``concurrent.futures.Future``-like object (``add_done_callback``, ``result``, ``done``,
        ``cancel``) whose completions the driver collects in batches from other threads."""

    @abstractmethod
    async def aclose(self, *, cancel: bool) -> None:
        """Release workers.  With *cancel*, stop queued and (where possible) running work now."""


def chain_future(
    loop: asyncio.AbstractEventLoop,
    add_done_callback: Callable[[Callable[[Any], None]], None],
    get: Callable[[], ChunkResult],
) -> asyncio.Future[ChunkResult]:
    """Return a future on *loop* that completes when a foreign future does.

    *add_done_callback* registers a callback on the foreign future (which may
    run in any thread); *get* returns its result or raises its exception.
    """
    out: asyncio.Future[ChunkResult] = loop.create_future()

    def settle(result: ChunkResult | None, exc: BaseException | None) -> None:
        if out.done():
            return
        if exc is not None:
            out.set_exception(exc)
        else:
            out.set_result(result)  # type: ignore[arg-type]

    def done(_: Any) -> None:
        # Read the outcome here, in the thread that completed the foreign future
        # (a Dask client fetches it with a round trip), not on the driver's loop.
        result: ChunkResult | None = None
        exc: BaseException | None = None
        try:
            result = get()
        except BaseException as e:  # the foreign future's own exception (or cancellation), handed on
            exc = e
        try:
            loop.call_soon_threadsafe(settle, result, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    add_done_callback(done)
    return out


def with_deadline(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[ChunkResult],
    timeout: float | None,
    item: Any,
    how: str,
    on_expire: Callable[[], Any] | None = None,
) -> asyncio.Future[ChunkResult]:
    """Fail *fut* with TaskTimeout *timeout* seconds from now unless it finished (for backends that
    cannot time out work themselves); *on_expire* tries to stop the work."""
    if timeout is None:
        return fut

    def expire() -> None:
        if not fut.done():
            fut.set_exception(timeout_error(item, timeout, how))
            if on_expire is not None:
                on_expire()

    handle = loop.call_later(timeout, expire)
    fut.add_done_callback(lambda _: handle.cancel())
    return fut


async def await_item(fn: Callable[[Any], Any], item: Any, timeout: float | None) -> Any:  # noqa: ASYNC109
    """Await ``fn(item)``; past *timeout* cancel it and raise TaskTimeout naming the item."""
    if timeout is None:
        return await fn(item)
    cm = asyncio.timeout(timeout)
    try:
        async with cm:
            return await fn(item)
    except TimeoutError:
        if cm.expired():
            raise timeout_error(item, timeout, "its coroutine was cancelled") from None
        raise
