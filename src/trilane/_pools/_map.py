"""``pool.map``: lazy, bounded, chunked, ordered or not.

::

    input ──pull (in the consumer's thread, only as results are taken)──┐
                                                                        v
      [chunk 0: 1 item] [chunk 1: 1 item]   probes: measure the per-item time
      [chunk 2: n items] ...                 n = 20 ms / per-item time, capped
                │   at most 2×workers+1 chunks (and ``buffersize`` items) in flight
                v
      pool._submit(run_chunk, fn, items) ──> worker runs fn over the chunk,
                                             returns (results, error, seconds)
                │
    results <───┘ in input order (ordered=True) or as chunks finish

Guarantees:

* The input is pulled lazily: never more than the in-flight bound ahead of
  the consumer, so a 10-million-item generator uses the memory of a few
  chunks.
* If the input iterator raises, every result before it is delivered and then
  its exception is raised, at its position.
* If ``fn`` raises on an item, the results before it are delivered and then
  the exception is raised (later items' results are dropped, like
  ``Executor.map``).
* Closing the iterator early (``break``, an exception, Ctrl-C) cancels the
  chunks still in flight; a process pool kills the workers running them.

Per-task options apply to each chunk.  A ``timeout`` is per item: with
``chunksize="auto"`` it makes each item its own task so the timeout stops
exactly that item; with an explicit ``chunksize`` a chunk gets
``timeout × len(chunk)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import queue
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, cast

from ._options import TaskOptions, _fn_name, describe_call

if TYPE_CHECKING:
    from ._base import PoolBase

__all__ = ["lazy_map", "run_chunk", "run_chunk_local"]

#: Aim for this much work per chunk (the issue asks for 10-50 ms).
TARGET_CHUNK_SECONDS = 0.02
#: Largest automatic chunk: bounds memory when items are very cheap.
MAX_AUTO_CHUNK = 16384
#: Chunks of size 1 sent before the per-item time is known.
PROBES = 2
#: A process pool may queue a chunk behind a busy worker's running one, so the
#: worker need not wait for the parent between the two (with every core busy,
#: the parent may wait for a core itself).  Only chunks expected to take less
#: than this go ahead: one sent ahead may sit behind a running chunk while
#: another worker is free, which can delay the map's end by that chunk.  For a
#: longer chunk the round trip it would hide is under 1% of its time.  Chunks
#: of items not yet measured are never sent ahead.
AHEAD_SECONDS = 0.1


def run_chunk(fn: Callable[..., Any], items: list[Any], star: bool) -> tuple[list[Any], Any, float]:
    """Run *fn* over *items* in a worker process; errors come back picklable."""
    from ._wire import RemoteError

    return _run_chunk(fn, items, star, RemoteError.picklable)


def run_chunk_local(fn: Callable[..., Any], items: list[Any], star: bool) -> tuple[list[Any], Any, float]:
    """Run *fn* over *items* in a thread; errors are kept as they are."""
    return _run_chunk(fn, items, star, _as_is)


def _as_is(exc: Exception) -> Exception:
    return exc


def _run_chunk(
    fn: Callable[..., Any], items: list[Any], star: bool, wrap: Callable[[Exception], Any]
) -> tuple[list[Any], Any, float]:
    """Return (results, the wrapped error of the item that failed or None, seconds)."""
    out: list[Any] = []
    t0 = time.perf_counter()
    try:
        # list.extend keeps what it appended before an exception, so the
        # results before a failing item survive.
        out.extend(itertools.starmap(fn, items) if star else map(fn, items))
    except Exception as exc:
        return out, wrap(exc), time.perf_counter() - t0
    return out, None, time.perf_counter() - t0


class _Mapper:
    def __init__(
        self,
        pool: PoolBase,
        fn: Callable[..., Any],
        iterables: tuple[Iterable[Any], ...],
        chunksize: int | str,
        ordered: bool,
        timeout: float | None,
        buffersize: int | None,
        options: TaskOptions,
    ) -> None:
        self.pool = pool
        self.fn = fn
        self.star = len(iterables) > 1
        self.source: Iterator[Any] = zip(*iterables, strict=False) if self.star else iter(iterables[0])
        hints = [operator.length_hint(i, -1) for i in iterables]
        total = min(hints) if hints and min(hints) >= 0 else -1
        # Like multiprocessing.Pool: a known length caps chunks at len/(4×workers),
        # so every worker stays busy to the end.
        self.len_cap = -(-total // (4 * pool.workers)) if total > 0 else MAX_AUTO_CHUNK
        self.fixed = None if chunksize == "auto" else int(chunksize)
        self.ordered = ordered
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.buffersize = buffersize
        self.options = options
        self.per_item: float | None = None
        self._sum_seconds = 0.0
        self._sum_items = 0.0
        self.probes = 0
        self.max_chunks = 2 * pool.workers + 1
        self.inflight: deque[tuple[Future[Any], int]] = deque()
        self.items_inflight = 0
        self.done_q: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.pulled = 0
        self.exhausted = False
        self.input_error: BaseException | None = None
        self.local = not hasattr(pool, "start_method")
        self.runner = run_chunk_local if self.local else run_chunk

    # -- feeding ----------------------------------------------------------------
    def _next_size(self) -> int:
        if self.fixed is not None:
            n = self.fixed
        elif self.options.timeout is not None:
            n = 1
        elif self.per_item is None:
            if self.probes < PROBES:
                self.probes += 1
                return 1
            n = 1 if self.inflight else 4  # still measuring
        else:
            n = int(TARGET_CHUNK_SECONDS / max(self.per_item, 1e-9))
            n = max(1, min(n, MAX_AUTO_CHUNK, self.len_cap))
        if self.buffersize is not None:
            n = max(1, min(n, self.buffersize - self.items_inflight))
        return max(1, n)

    def _room(self) -> bool:
        if len(self.inflight) >= self.max_chunks:
            return False
        return self.buffersize is None or self.items_inflight < self.buffersize

    def top_up(self) -> None:
        while not self.exhausted and self._room():
            n = self._next_size()
            chunk: list[Any] = []
            try:
                chunk.extend(itertools.islice(self.source, n))
            except Exception as exc:
                self.input_error = exc
                self.exhausted = True
            if len(chunk) < n:
                self.exhausted = True
            if chunk:
                self._submit(chunk)

    def _submit(self, chunk: list[Any]) -> None:
        start = self.pulled
        n = len(chunk)
        self.pulled += n
        opts = self.options
        if n == 1:
            args = chunk[0] if self.star else (chunk[0],)
            desc = describe_call(self.fn, tuple(args), {}, opts.name)
            desc = f"{desc} (item {start} of a map)"
        else:
            desc = f"chunk of items {start}..{start + n - 1} of a map of {opts.name or _fn_name(self.fn)}"
            if opts.timeout is not None:
                opts = dataclasses.replace(opts, timeout=opts.timeout * n)
        per_item = self.per_item
        ahead = per_item is not None and per_item * n < AHEAD_SECONDS
        fut = self.pool._submit(opts, self.runner, (self.fn, chunk, self.star), {}, desc, ahead)
        fut.add_done_callback(self._on_done)
        self.inflight.append((fut, n))
        self.items_inflight += n

    def _on_done(self, fut: Future[Any]) -> None:
        # Runs in the thread that finished the chunk: only plain assignments.
        if not fut.cancelled() and fut.exception() is None:
            results, _, seconds = fut.result()
            if results:
                # Item-weighted and decaying: big chunks outweigh the probes,
                # and a function that slows down is noticed within a few chunks.
                self._sum_seconds = 0.7 * self._sum_seconds + seconds
                self._sum_items = 0.7 * self._sum_items + len(results)
                self.per_item = self._sum_seconds / self._sum_items
        if not self.ordered:
            self.done_q.put(fut)

    # -- consuming ----------------------------------------------------------------
    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _unpack(self, fut: Future[Any]) -> tuple[list[Any], BaseException | None]:
        results, err, _ = fut.result()  # raises WorkerCrashed, TaskTimeout, CancelledError, ...
        if err is not None and not self.local:
            err = err.rebuild()
        return results, err

    def chunks(self) -> Generator[list[Any], None, None]:
        """Yield each chunk's results in turn (flattened by :class:`MapIterator`)."""
        try:
            while self.inflight:
                if self.ordered:
                    fut, n = self.inflight[0]
                    fut.result(self._remaining())  # wait (TimeoutError when the map's deadline passes)
                    self.inflight.popleft()
                else:
                    try:
                        fut = self.done_q.get(timeout=self._remaining())
                    except queue.Empty:
                        raise TimeoutError(f"map did not finish within its timeout; {self.pulled} items pulled")
                    n = self._forget(fut)
                self.items_inflight -= n
                results, err = self._unpack(fut)
                del fut
                self.top_up()
                yield results
                if err is not None:
                    raise err
            if self.input_error is not None:
                raise self.input_error
        finally:
            for fut, _ in self.inflight:
                fut.cancel()
            self.inflight.clear()

    def _forget(self, fut: Future[Any]) -> int:
        for i, (f, n) in enumerate(self.inflight):
            if f is fut:
                del self.inflight[i]
                return n
        raise CancelledError  # pragma: no cover - every completed future is in flight


class MapIterator(itertools.chain):  # type: ignore[type-arg]
    """The iterator ``pool.map`` returns.

    It is an ``itertools.chain`` over the chunks' result lists, so taking the
    next result runs in C (a Python generator per item costs ~30 ns, a quarter
    of the whole budget for a trivial function).  :meth:`close` stops the map
    early and cancels what is still in flight.
    """

    _gen: Generator[list[Any], None, None]

    def close(self) -> None:
        """Stop the map: cancel the chunks in flight (a process pool kills their workers)."""
        self._gen.close()


def lazy_map(
    pool: PoolBase,
    fn: Callable[..., Any],
    iterables: tuple[Iterable[Any], ...],
    *,
    chunksize: int | str,
    ordered: bool,
    timeout: float | None,
    buffersize: int | None,
    options: TaskOptions,
) -> Iterator[Any]:
    """Start mapping *fn* over *iterables* on *pool* and return the result iterator.

    The first chunks are submitted now (so the work starts, and ``timeout``
    counts from this call, as with ``Executor.map``); the rest are pulled as
    results are consumed.
    """
    if not iterables:
        raise TypeError("map() needs at least one iterable")
    if chunksize != "auto" and (type(chunksize) is not int or chunksize < 1):
        raise ValueError(f"chunksize must be 'auto' or an int >= 1, got {chunksize!r}")
    if buffersize is not None and (type(buffersize) is not int or buffersize < 1):
        raise ValueError(f"buffersize must be None or an int >= 1, got {buffersize!r}")
    if not isinstance(options, TaskOptions):
        raise TypeError(f"options must be a trilane.TaskOptions, got {options!r}")
    pool._check_fn(fn)
    mapper = _Mapper(pool, fn, iterables, chunksize, ordered, timeout, buffersize, options)
    mapper.top_up()
    gen = mapper.chunks()
    it = cast(MapIterator, MapIterator.from_iterable(gen))
    it._gen = gen
    return it
