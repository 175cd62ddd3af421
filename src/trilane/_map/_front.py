"""``trilane.map`` and ``trilane.amap``: the front end.

Both build a :class:`~trilane._map._driver.Driver` (the one engine) and
turn its finished chunks into what the caller asked for::

    map(...)  ─▶ MapIterator       steps a private trilane loop in the calling
                                   thread, one batch of finished items per step
    amap(...) ─▶ AsyncMapIterator  runs the driver on the running loop

``iter.plan`` says which backend runs and why; ``iter.outcomes()`` yields
an :class:`Outcome` per item instead of bare results (what ``trilane run``
writes).  Closing an iterator early (``close()``, leaving a ``with`` block,
``break`` then garbage collection) cancels what is still running.

Ctrl-C: while ``map`` steps its loop in the main thread, SIGINT cancels the
driver instead of interrupting it at a random bytecode; the driver records
every finished item in the checkpoint, stops the backend (a process pool's
workers are killed), and then KeyboardInterrupt is raised.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Iterator
from types import FrameType
from typing import Any, Generic, Self, TypeVar

from .._core._clock import Clock
from .._core._loop import new_event_loop
from ._backends._serial import INLINE
from ._driver import Chunk, Driver, Emission
from ._options import DEFAULT_BACKOFF, Backoff, MapOptions, default_key
from ._outcome import Failure, MapPlan, Outcome

__all__ = ["AsyncMapIterator", "MapIterator", "amap", "map"]

R = TypeVar("R")

_builtin_map = map


def _is_coroutine_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def _annotate(exc: BaseException, chunk: Any, p: int) -> BaseException:
    note = (
        f"trilane.map: item {chunk.items[p]!r} (index {chunk.start + p}) failed after "
        f"{chunk.attempts_of(p)} attempt(s); pass errors='collect' to get failures as values"
    )
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc


def _key(options: MapOptions, chunk: Any, p: int) -> Any:
    item = chunk.items[p]
    return options.key(item) if options.key is not None else default_key(item, chunk.start + p)


def _convert(options: MapOptions, emission: Emission, outcomes: bool) -> Iterator[Any]:
    """Turn finished chunks into results, Failures or Outcomes, applying ``errors``."""
    for chunk, positions in emission:
        yield from _chunk_results(options, chunk, positions, outcomes)


def _chunk_results(options: MapOptions, chunk: Chunk, positions: list[int] | None, outcomes: bool) -> Iterable[Any]:
    """One finished chunk's results: its list of values itself when all of it succeeded.

    Callers ``yield from`` this directly, so that a result of the common case
    passes through one generator, not three (about 40 ns an item each).
    """
    if not outcomes and not chunk.errors and positions is None:
        return chunk.values
    return _convert_items(options, chunk, positions, outcomes)


def _convert_items(options: MapOptions, chunk: Chunk, positions: list[int] | None, outcomes: bool) -> Iterator[Any]:
    errors_mode = options.errors
    errors = chunk.errors
    for p in range(len(chunk.items)) if positions is None else positions:
        exc = errors.get(p) if errors else None
        if exc is not None:
            if errors_mode == "raise":
                raise _annotate(exc, chunk, p)
            if errors_mode == "skip":
                continue
        if outcomes:
            yield Outcome(
                index=chunk.start + p,
                key=_key(options, chunk, p),
                item=chunk.items[p],
                result=chunk.values[p],
                error=exc,
                attempts=chunk.attempts_of(p),
                seconds=chunk.seconds[p],
                resumed=chunk.resumed,
            )
        elif exc is not None:
            yield Failure(chunk.items[p], exc, chunk.attempts_of(p), chunk.start + p, _key(options, chunk, p))
        else:
            yield chunk.values[p]


class _SigintHook:
    """Installs ``_handle`` for SIGINT while in effect: in the main thread, over Python's default only."""

    _old: Any = None

    def __enter__(self) -> Self:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class _SigintCanceller(_SigintHook):
    """While the loop steps in the main thread, turn SIGINT into cancelling the step."""

    def __init__(self) -> None:
        self.interrupted = False
        self._task: asyncio.Task[Any] | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        self._task = task

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.interrupted or INLINE.running:
            # A second Ctrl-C, or the serial backend is inside the user's function on
            # this very thread (cancelling would wait for it): interrupt it like plain Python.
            raise KeyboardInterrupt
        self.interrupted = True
        if self._task is not None and not self._task.done():
            loop = self._task.get_loop()
            self._task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake the loop if it blocks in select


class _PumpSigint(_SigintHook):
    """Ctrl-C while ``Driver.pump`` runs in the main thread: stop the pump at a safe point.

    Installed once per run (not once per step).  While the pump runs driver code,
    SIGINT only sets ``driver.interrupted`` and wakes the pump, so no callback is
    cut in half and every finished item reaches the checkpoint; the iterator then
    shuts the run down and raises KeyboardInterrupt.  While the caller's own code
    runs between results (``pumping`` False), or at a second Ctrl-C, it raises
    KeyboardInterrupt at once, like Python's default handler.
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.pumping = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.pumping or self.driver.interrupted:
            raise KeyboardInterrupt
        self.driver.interrupted = True
        self.driver.wake_pump()


class MapIterator(Generic[R]):
    """The lazy iterator ``trilane.map`` returns.

    Iterate it for results (or :class:`Failure` objects with
    ``errors="collect"``), or call :meth:`outcomes` for :class:`Outcome`
    records.  (``iter(it)`` hands out the underlying generator, which saves a
    method call per item in a ``for`` loop; ``next(it)`` works too.)
    ``plan`` says which backend runs and why.  Use it as a context manager,
    or call :meth:`close`, to stop early and release the workers.
    """

    def __init__(self, driver: Driver, clock: Clock | None) -> None:
        self._driver = driver
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._agen: AsyncGenerator[Emission, None] | None = None
        self._gen: Generator[Any, None, None] | None = None
        self._mode: bool | None = None  # False: results, True: outcomes
        self._closed = False

    # -- the loop we step ------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("this trilane.map iterator is closed")
        if self._loop is None:
            if asyncio._get_running_loop() is not None:  # public get_running_loop() raises instead
                raise RuntimeError(
                    "trilane.map() was iterated inside a running event loop, which it would block; "
                    "use `async for x in trilane.amap(...)` there instead"
                )
            self._loop = new_event_loop(clock=self._clock)
            self._agen = self._driver.run()
        return self._loop

    def _step(self, aw: Any) -> Any:
        loop = self._ensure_loop()
        with _SigintCanceller() as sigint:
            task = loop.create_task(aw)
            sigint.watch(task)
            try:
                result = loop.run_until_complete(task)
            except asyncio.CancelledError:
                if not sigint.interrupted:
                    raise
                result = None
            if sigint.interrupted:
                # Ctrl-C cancelled the step, or came as it was finishing, too late to
                # cancel it: stop here (what finished is in the checkpoint, if any).
                self._finish()
                raise KeyboardInterrupt
            return result

    @property
    def plan(self) -> MapPlan:
        """The backend chosen and why (auto runs its probe now if it has not yet)."""
        if self._driver.plan is None:
            self._step(self._driver.prepare())
        assert self._driver.plan is not None
        return self._driver.plan

    @property
    def stats(self) -> dict[str, int]:
        """Counts so far: done, failed, retries, resumed."""
        return dict(self._driver.stats)

    def _emissions(self) -> Iterator[Emission]:
        while True:
            try:
                yield self._step(self._next_emission())
            except StopAsyncIteration:
                return

    async def _next_emission(self) -> Emission:
        assert self._agen is not None
        return await self._agen.__anext__()

    def _results(self, outcomes: bool) -> Generator[Any, None, None]:
        if self._mode is not None and self._mode != outcomes:
            raise RuntimeError("iterate a trilane.map either for results or for outcomes(), not both")
        self._mode = outcomes
        self._ensure_loop()
        try:
            if self._driver.may_pump():
                self._step(self._driver.prepare())  # (then run() finds the plan made)
            if self._driver.can_pump():
                yield from self._pumped(outcomes)
            else:
                options = self._driver.options
                for emission in self._emissions():
                    for chunk, positions in emission:
                        yield from _chunk_results(options, chunk, positions, outcomes)
        finally:
            self._finish()

    def _pumped(self, outcomes: bool) -> Generator[Any, None, None]:
        """Results of a run the driver pumps in this thread (``Driver.pump``: threads, no timers)."""
        driver = self._driver
        options = driver.options
        finished = False
        with _PumpSigint(driver) as sigint:
            try:
                for emission in driver.pump():
                    sigint.pumping = False  # the caller's code runs now: Ctrl-C raises there at once
                    for chunk, positions in emission:
                        yield from _chunk_results(options, chunk, positions, outcomes)
                    sigint.pumping = True
                finished = not driver.interrupted
            finally:
                sigint.pumping = False
                if self._loop is not None:
                    self._loop.run_until_complete(driver.shutdown(cancel=not finished))
        if driver.interrupted:
            raise KeyboardInterrupt

    # -- the iterator ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[R]:
        # The results generator itself, so a for loop skips a __next__ call per item.
        if self._gen is None:
            self._gen = self._results(False)
        return self._gen

    def __next__(self) -> R:
        if self._gen is None:
            self._gen = self._results(False)
        value: R = next(self._gen)
        return value

    def outcomes(self) -> Iterator[Outcome[Any]]:
        """Yield an :class:`Outcome` (key, item, result or error, attempts, seconds) per item."""
        return self._results(True)

    def close(self) -> None:
        """Stop the run: cancel queued and running work, record what finished, free the workers."""
        if self._gen is not None:
            self._gen.close()
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop, agen = self._loop, self._agen
        self._loop = self._agen = None
        if loop is None:
            return
        try:
            if agen is not None:
                loop.run_until_complete(agen.aclose())
            # When the run never went through the driver's generator (pumped, or stopped
            # right after prepare), nothing has shut it down yet; else this does nothing.
            loop.run_until_complete(self._driver.shutdown(cancel=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def __enter__(self) -> MapIterator[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._closed and self._loop is not None:
            try:
                self.close()
            except Exception:
                pass


class AsyncMapIterator(Generic[R]):
    """The async iterator ``trilane.amap`` returns; the twin of :class:`MapIterator`."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._agen: AsyncGenerator[Emission, None] | None = None
        self._gen: AsyncGenerator[Any, None] | None = None
        self._mode: bool | None = None

    @property
    def plan(self) -> MapPlan | None:
        """The backend chosen and why; None until the first item is requested (or :meth:`prepare`)."""
        return self._driver.plan

    @property
    def stats(self) -> dict[str, int]:
        """Counts so far: done, failed, retries, resumed."""
        return dict(self._driver.stats)

    async def prepare(self) -> MapPlan:
        """Choose the backend now (auto probes the first items) and return the plan."""
        return await self._driver.prepare()

    async def _results(self, outcomes: bool) -> AsyncGenerator[Any, None]:
        if self._mode is not None and self._mode != outcomes:
            raise RuntimeError("iterate a trilane.amap either for results or for outcomes(), not both")
        self._mode = outcomes
        if self._agen is None:
            self._agen = self._driver.run()
        agen = self._agen
        try:
            async for emission in agen:
                for value in _convert(self._driver.options, emission, outcomes):
                    yield value
        finally:
            await agen.aclose()

    def __aiter__(self) -> AsyncIterator[R]:
        # The results generator itself, so `async for` skips an __anext__ coroutine per item.
        if self._gen is None:
            self._gen = self._results(False)
        return self._gen

    async def __anext__(self) -> R:
        if self._gen is None:
            self._gen = self._results(False)
        value: R = await self._gen.__anext__()
        return value

    def outcomes(self) -> AsyncIterator[Outcome[Any]]:
        """Yield an :class:`Outcome` per item (see :meth:`MapIterator.outcomes`)."""
        return self._results(True)

    async def aclose(self) -> None:
        """Stop the run: cancel what is running, record what finished, free the workers."""
        if self._gen is not None:
            await self._gen.aclose()
        if self._agen is not None:
            await self._agen.aclose()
        elif self._driver.backend is not None:
            await self._driver.shutdown(cancel=True)

    async def __aenter__(self) -> AsyncMapIterator[R]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _options(**kw: Any) -> MapOptions:
    return MapOptions.build(**kw)


def map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    backend: str = "auto",
    workers: int | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int = 0,
    backoff: float | Backoff = DEFAULT_BACKOFF,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    rate: str | float | None = None,
    ordered: bool = True,
    errors: str = "raise",
    progress: bool | str = False,
    checkpoint: str | Any | None = None,
    key: Callable[[Any], Any] | None = None,
    chunksize: int | str = "auto",
    priority: int = 0,
    clock: Clock | None = None,
) -> MapIterator[Any]:
    """Apply *fn* to every item of *items*, lazily, and return an iterator of the results.

    ``backend``: "auto" (default), "serial", "thread", "process", "async" or "dask".
    ``workers``: pool size.  ``concurrency``: most items in flight at once.
    ``timeout``: seconds per item; the work is stopped where the backend can.
    ``retries``/``backoff``/``retry_on``: retry failing items, waiting with
    exponential backoff and jitter, only for those exception classes.
    ``rate``: "100/s", "5/min" or a number per second, shared by all workers.
    ``ordered``: input order (True) or completion order (False).
    ``errors``: "raise" (the first failure stops the run), "collect" (failures
    come out as :class:`trilane.Failure`) or "skip".  ``progress``: True for a
    bar on stderr when it is a terminal, "force" to draw it anyway.
    ``checkpoint``: a JSONL path; a rerun skips finished keys (``key``: a
    function of the item; default the item if JSON-able and hashable, else its
    index).  ``chunksize``: items per task ("auto" sizes chunks by measured
    item time).  ``priority``: for the loop and pool policies.  ``clock``: the
    clock of the private loop that times backoff and rate waits (pass a
    :class:`trilane.MockClock` in tests).  See docs/map.md.
    """
    opts = _options(
        backend=backend, workers=workers, concurrency=concurrency, timeout=timeout, retries=retries,
        backoff=backoff, retry_on=retry_on, rate=rate, ordered=ordered, errors=errors, progress=progress,
        checkpoint=checkpoint, key=key, chunksize=chunksize, priority=priority,
    )  # fmt: skip
    if clock is not None and not isinstance(clock, Clock):
        raise TypeError(f"clock must be a trilane.Clock, got {clock!r}")
    driver = Driver(fn, items, opts, is_async=_is_coroutine_function(fn))
    return MapIterator(driver, clock)


def amap(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    backend: str = "auto",
    workers: int | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int = 0,
    backoff: float | Backoff = DEFAULT_BACKOFF,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    rate: str | float | None = None,
    ordered: bool = True,
    errors: str = "raise",
    progress: bool | str = False,
    checkpoint: str | Any | None = None,
    key: Callable[[Any], Any] | None = None,
    chunksize: int | str = "auto",
    priority: int = 0,
) -> AsyncMapIterator[Any]:
    """The async twin of :func:`trilane.map`: ``async for r in trilane.amap(fn, items): ...``.

    It runs on the running event loop (the async backend's tasks are created
    there; backoff and rate waits use that loop's clock).  Options mean what
    they mean for :func:`trilane.map`.
    """
    opts = _options(
        backend=backend, workers=workers, concurrency=concurrency, timeout=timeout, retries=retries,
        backoff=backoff, retry_on=retry_on, rate=rate, ordered=ordered, errors=errors, progress=progress,
        checkpoint=checkpoint, key=key, chunksize=chunksize, priority=priority,
    )  # fmt: skip
    driver = Driver(fn, items, opts, is_async=_is_coroutine_function(fn))
    return AsyncMapIterator(driver)
