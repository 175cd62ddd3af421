"""The map driver: one engine, every backend.  This is where options get their meaning.

::

    items ──pull──▶ [ chunk ]──submit──▶ backend ──future──▶ _on_done ─┬─▶ checkpoint (append+flush)
      ▲   (lazy,     (resumed chunks                                   ├─▶ progress
      │    bounded)   skip the backend)        retry heap ◀── failed ──┤   (backoff + jitter)
      │                                                                ▼
      └────── window: admitted - emitted ≤ 2 × in-flight cap ◀── output deque (ordered: head first)

The driver runs on an event loop: the caller's loop for ``amap``, or a
private trilane loop that ``map`` steps in the calling thread.  The loop is
the only clock the driver reads, so backoff sleeps and rate-limit waits are
timers (``loop.call_at``): on a :class:`trilane.MockClock` they take no real
time.  Everything below runs on that one loop thread, so it needs no locks.

Guarantees:

* In flight: at most ``max_tasks`` chunks and ``max_items`` items.
* Memory: at most ``window`` items admitted but not yet emitted.  When an
  ordered run's head item is slow, finished items wait in the deque and the
  producer stops pulling input until the head is emitted.
* Every attempt (retries too) takes a token from the rate bucket first.
* A finished item is written to the checkpoint in the same callback that
  learns of it, before it can be emitted; on cancellation, futures that have
  finished but whose callbacks have not run yet are recorded first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import logging
import math
import queue
import random
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from typing import Any, Final

from .._core._errors import TaskTimeout, WorkerCrashed
from .._profile import load_profile
from ._auto import PROBE_ITEMS, PROBE_SECONDS, Probe, choose
from ._backends import Backend, load_backend
from ._backends._base import ChunkResult, describe_item, run_chunk, timeout_error
from ._checkpoint import CheckpointWriter, canonical_key, load_checkpoint
from ._options import MapOptions, default_key
from ._outcome import MapPlan
from ._progress import ProgressBar
from ._rate import TokenBucket

__all__ = ["Chunk", "Driver"]

logger = logging.getLogger("trilane.map")

#: Auto chunking aims for chunks that run about this long, per backend: long
#: enough that the hand-off is a small part, short enough to balance load.
TARGET_CHUNK_SECONDS: Final = {"serial": 0.002, "thread": 0.002, "process": 0.02, "dask": 0.1, "async": 0.0}
MAX_CHUNK: Final = {"process": 16384, "dask": 16384}
DEFAULT_MAX_CHUNK: Final = 4096
#: Resumed items that may wait in the output while auto's probe looks for fresh ones.
PROBE_WINDOW: Final = 2048


def _settle_future(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class Chunk:
    """Consecutive items submitted together, and what became of each."""

    __slots__ = ("attempts", "errors", "future", "items", "keys", "pending", "resumed", "seconds", "start", "values")

    def __init__(self, start: int, items: list[Any], keys: list[str] | None) -> None:
        self.start = start
        self.items = items
        self.keys = keys
        self.values: list[Any] = [None] * len(items)
        #: Final failures by position.
        self.errors: dict[int, BaseException] | None = None
        #: Attempts by position, for positions tried more than once (or resumed).
        self.attempts: dict[int, int] | None = None
        #: Seconds each item ran (first-attempt chunk mean, plus any retries).
        self.seconds: list[float] = [0.0] * len(items)
        self.pending = len(items)
        self.resumed = False
        #: The pumped run's future for the whole chunk (see Driver.pump).
        self.future: Any = None

    def attempts_of(self, pos: int) -> int:
        """How many times the item at *pos* was called."""
        return self.attempts.get(pos, 1) if self.attempts else 1


#: What the driver yields: chunks, each with the positions that just became
#: final and should be emitted (None: all of them, in order).
Emission = list[tuple[Chunk, list[int] | None]]


class Driver:
    """Runs one map: pulls items, feeds a backend, and yields finished chunks."""

    def __init__(self, fn: Callable[[Any], Any], items: Iterable[Any], options: MapOptions, *, is_async: bool) -> None:
        self.fn = fn
        self.options = options
        self.is_async = is_async
        try:
            self.total: int | None = len(items)  # type: ignore[arg-type]
        except TypeError:
            self.total = None
        self._source: Iterator[Any] = iter(items)
        self._lookahead: list[tuple[Any, str | None]] = []
        self._next_index = 0
        self._exhausted = False
        self.plan: MapPlan | None = None
        self.backend: Backend | None = None
        self._rng = random.Random()
        self._bucket = TokenBucket(options.rate) if options.rate else None
        self._done_keys: dict[str, tuple[Any, int, float]] = {}
        self._writer: CheckpointWriter | None = None
        self._progress: ProgressBar | None = None
        # Flow control.
        self._chunksize = 1 if options.chunksize == "auto" else int(options.chunksize)
        self._chunk_cap = DEFAULT_MAX_CHUNK
        self._max_tasks = 1
        self._max_items: int | None = None
        self._window_fixed: int | None = None
        self._in_flight_tasks = 0
        self._in_flight_items = 0
        self._open_items = 0  # admitted and not yet emitted
        #: Submitted futures: asyncio ones (async, serial, dask) or concurrent.futures ones (pools).
        self._inflight: dict[Any, tuple[Chunk, int | None, float]] = {}  # (chunk, position, start)
        self._raw_single = False  # the backend's one-item futures hold the value itself
        #: Pool futures that finished, handed over from worker threads in batches.
        self._inbox: deque[concurrent.futures.Future[ChunkResult]] = deque()
        self._inbox_armed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: (due, seq, chunk, position, counts as an attempt)
        self._retries: list[tuple[float, int, Chunk, int, bool]] = []
        self._retry_seq = itertools.count()
        self._output: deque[Chunk] = deque()
        self._ready: Emission = []
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._stopping = False  # errors="raise" saw a failure: admit nothing more
        self.stats = {"done": 0, "failed": 0, "retries": 0, "resumed": 0}
        self._pending_probe: tuple[list[Any], dict[int, BaseException] | None] = ([], None)
        #: Set while :meth:`pump` drives the run without the loop: finished pool futures,
        #: the queue it blocks on, whether it blocks, and the future it waits for (None: any).
        self._pump_inbox: deque[Any] | None = None
        self._pump_wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._pump_waiting = False
        self._pump_watch: Any = None
        #: Set (from a signal handler) to make :meth:`pump` stop at its next safe point.
        self.interrupted = False
        self._shut_down = False

    # -- set-up --------------------------------------------------------------------------------

    async def prepare(self) -> MapPlan:
        """Read the checkpoint, choose the backend (probing if auto) and start it; return the plan."""
        if self.plan is not None:
            return self.plan
        loop = self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        opts = self.options
        if opts.checkpoint is not None:
            self._done_keys = await loop.run_in_executor(None, load_checkpoint, opts.checkpoint)
            self._writer = CheckpointWriter(opts.checkpoint)
        name = opts.backend
        probe_chunk: Chunk | None = None
        if name == "auto":
            probe: Probe | None = None
            if not self.is_async:
                # Resumed items met before the first fresh one queue up meanwhile: allow some.
                self._window_fixed = PROBE_WINDOW
                probe_chunk, probe = await self._probe()
                self._window_fixed = None
            remaining = None if self.total is None else self.total - self._next_index
            if probe is not None and not probe.samples and not (self._exhausted and not self._lookahead):
                plan = MapPlan(
                    "thread",
                    "no item could be measured yet (the first ones were resumed from the "
                    "checkpoint), so threads, which suit both I/O- and CPU-bound work acceptably",
                )
            else:
                plan = choose(self.fn, self.is_async, probe, remaining, load_profile())
        else:
            plan = MapPlan(name, f"backend={name!r} was asked for")
        backend = load_backend(plan.backend)(self.fn, opts, is_async=self.is_async)
        await backend.start(loop)
        self.backend = backend
        self._raw_single = backend.raw_single
        self._configure(backend, plan)
        self.plan = plan
        logger.info("trilane.map of %s: %s", getattr(self.fn, "__qualname__", self.fn), plan)
        if opts.progress == "force" or opts.progress is True:
            self._progress = ProgressBar.create(self.total, force=opts.progress == "force")
        if probe_chunk is not None:
            self._account_probe(probe_chunk)
        return plan

    def _configure(self, backend: Backend, plan: MapPlan) -> None:
        opts = self.options
        workers = backend.workers
        if backend.chunks and opts.chunksize == "auto" and opts.timeout is None and opts.rate is None:
            cap = MAX_CHUNK.get(backend.name, DEFAULT_MAX_CHUNK)
            if self.total is not None and workers:
                cap = max(1, min(cap, math.ceil(self.total / (4 * workers))))
            if opts.concurrency is not None and workers:
                cap = max(1, min(cap, opts.concurrency // workers))
            self._chunk_cap = cap
            per_item = plan.measured.get("seconds_per_item")
            if per_item:  # auto's probe already timed the items: start at the right size
                target = TARGET_CHUNK_SECONDS.get(backend.name, 0.0)
                self._chunksize = max(1, min(cap, int(target / max(per_item, 1e-7))))
        elif opts.chunksize == "auto" or opts.timeout is not None or opts.rate is not None:
            # A timeout or a rate applies to each item, so items go one by one.
            self._chunk_cap = self._chunksize = 1
        else:
            self._chunk_cap = self._chunksize
        conc = opts.concurrency
        if backend.name == "async":
            conc = conc or backend.default_concurrency()
            self._max_tasks = self._max_items = conc
        elif backend.name == "serial":
            self._max_tasks = 1
            self._max_items = conc
        else:
            self._max_tasks = 2 * (workers or 1)
            if conc is None:
                self._max_items = None
            elif workers is not None and workers <= conc:
                # The pool never runs more than `workers` (<= concurrency) items at once, so
                # items may also wait queued in it, and no worker idles waiting for the driver.
                self._max_items = 2 * conc
            else:
                self._max_items = conc
                self._max_tasks = min(self._max_tasks, conc)
        self._window_fixed = None if conc is None else 2 * conc
        plan.workers = workers
        plan.concurrency = conc
        plan.chunksize = opts.chunksize if opts.chunksize != "auto" else ("auto" if self._chunk_cap > 1 else 1)

    @property
    def window(self) -> int:
        """The most items admitted and not yet emitted (bounded memory)."""
        if self._window_fixed is not None:
            return self._window_fixed
        return 2 * self._max_tasks * max(self._chunksize, 1)

    # -- auto's probe ----------------------------------------------------------------------------

    async def _probe(self) -> tuple[Chunk | None, Probe]:
        """Run the first items in a helper thread, timing wall and CPU; return them as a chunk."""
        loop = asyncio.get_running_loop()
        probe = Probe([])
        items: list[Any] = []
        keys: list[str] | None = [] if self._writer is not None else None
        results: list[ChunkResult] = []
        start = self._next_index
        while len(items) < PROBE_ITEMS and probe.wall < PROBE_SECONDS:
            got = self._pull_fresh_one(started=bool(items))
            if got is None:
                break
            item, key = got
            if not items:
                start = self._next_index - 1
            fut: asyncio.Future[tuple[ChunkResult, float]] = loop.create_future()

            def work(item: Any = item, fut: asyncio.Future[tuple[ChunkResult, float]] = fut) -> None:
                cpu0 = time.thread_time()
                res = run_chunk(self.fn, [item])
                cpu = time.thread_time() - cpu0
                try:
                    loop.call_soon_threadsafe(_settle_future, fut, (res, cpu))
                except RuntimeError:  # the loop closed: the run was abandoned
                    pass

            threading.Thread(target=work, name="trilane-map-probe", daemon=True).start()
            timeout = self.options.timeout
            try:
                res, cpu = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                stuck = timeout_error(item, timeout or 0.0, "the probe thread was abandoned")
                res = ([None], {0: stuck}, timeout or 0.0)
                cpu = 0.0
            items.append(item)
            if keys is not None and key is not None:
                keys.append(key)
            results.append(res)
            probe.samples.append((res[2], cpu))
            if probe.sample_item is None:
                probe.sample_item = item
        if not items:
            return None, probe
        chunk = Chunk(start, items, keys)
        values = [r[0][0] for r in results]
        failures = {i: r[1][0] for i, r in enumerate(results) if r[1]}
        chunk.seconds = [r[2] for r in results]
        self._pending_probe = (values, failures or None)
        return chunk, probe

    def _account_probe(self, chunk: Chunk) -> None:
        values, failures = self._pending_probe
        self._output.append(chunk)
        self._open_items += len(chunk.items)
        seconds = chunk.seconds
        self._settle(chunk, None, (values, failures, sum(seconds)))
        chunk.seconds = seconds

    # -- pulling input ---------------------------------------------------------------------------

    def _key_of(self, item: Any, index: int) -> str:
        key = self.options.key(item) if self.options.key is not None else default_key(item, index)
        return canonical_key(key)

    def _pull_fresh_one(self, *, started: bool) -> tuple[Any, str | None] | None:
        """Next item that is not done in the checkpoint, or None.

        Resumed (done) items met on the way go to the output.  When *started*
        (the caller's chunk already holds items, and is not in the output yet), a
        done item is put back instead and None returned: the chunk must end
        there, so that everything comes out in input order.
        """
        while True:
            if self._lookahead:
                got = self._lookahead.pop(0)
            else:
                if self._exhausted:
                    return None
                try:
                    item = next(self._source)
                except StopIteration:
                    self._exhausted = True
                    return None
                got = (item, self._key_of(item, self._next_index) if self._writer is not None else None)
            index = self._next_index
            self._next_index += 1
            key = got[1]
            if key is not None and key in self._done_keys:
                if started:
                    self._lookahead.insert(0, got)
                    self._next_index -= 1
                    return None
                self._emit_resumed(index, got[0], key)
                if self._open_items >= self.window:
                    return None  # the window is full of resumed items: emit them first
                continue
            return got

    def _emit_resumed(self, index: int, item: Any, key: str) -> None:
        result, attempts, seconds = self._done_keys[key]
        chunk = Chunk(index, [item], [key])
        chunk.values[0] = result
        chunk.seconds[0] = seconds
        if attempts != 1:
            chunk.attempts = {0: attempts}
        chunk.resumed = True
        chunk.pending = 0
        self._open_items += 1
        self.stats["resumed"] += 1
        self._output.append(chunk)
        if not self.options.ordered:
            self._ready.append((chunk, None))

    def _peek(self) -> bool:
        """Make sure an item is waiting in the lookahead; False at the end of the input."""
        if self._lookahead:
            return True
        if self._exhausted:
            return False
        try:
            item = next(self._source)
        except StopIteration:
            self._exhausted = True
            return False
        self._lookahead.append((item, self._key_of(item, self._next_index) if self._writer is not None else None))
        return True

    def _pull_chunk(self, size: int) -> Chunk | None:
        if self._writer is None and not self._lookahead:
            # No checkpoint, so nothing to skip: take the chunk in one slice.
            size = max(1, min(size, self.window - self._open_items))
            items = list(itertools.islice(self._source, size))
            if len(items) < size:
                self._exhausted = True
            if not items:
                return None
            start = self._next_index
            self._next_index += len(items)
            return Chunk(start, items, None)
        items = []
        keys: list[str] | None = [] if self._writer is not None else None
        start = -1
        while len(items) < size:
            got = self._pull_fresh_one(started=bool(items))
            if got is None:
                break
            if not items:
                start = self._next_index - 1
            items.append(got[0])
            if keys is not None and got[1] is not None:
                keys.append(got[1])
            if self._open_items + len(items) >= self.window:
                break
        if not items:
            return None
        return Chunk(start, items, keys)

    # -- admission -------------------------------------------------------------------------------

    def _can_submit(self, n: int) -> bool:
        if self._in_flight_tasks >= self._max_tasks:
            return False
        return self._max_items is None or self._in_flight_items + n <= self._max_items

    def _take_token(self, loop: asyncio.AbstractEventLoop) -> bool:
        if self._bucket is None:
            return True
        now = loop.time()
        wait = self._bucket.take(now)
        if wait > 0:
            self._wake_at(loop, now + wait)
            return False
        return True

    def _admit(self) -> None:
        loop = self._loop
        assert loop is not None
        # Retries first: they already hold their place in the window.
        # (A stopping run still retries: in an ordered run, an item before the
        # failure may be waiting for a retry, and its result comes out first.)
        while self._retries:
            due, _, chunk, pos, counts = self._retries[0]
            if due > loop.time():
                self._wake_at(loop, due)
                break
            if not self._can_submit(1) or not self._take_token(loop):
                break
            heapq.heappop(self._retries)
            if counts:
                assert chunk.attempts is not None
                chunk.attempts[pos] = chunk.attempts.get(pos, 1) + 1
                self.stats["retries"] += 1
            self._submit(chunk, [chunk.items[pos]], pos)
        window = self.window  # (the chunk size only changes when a chunk finishes)
        while not self._exhausted or self._lookahead:
            if self._stopping or self._open_items >= window:
                break
            size = min(self._chunksize, max(1, window - self._open_items))
            if self._max_items is not None:
                size = min(size, max(1, self._max_items - self._in_flight_items))
            if not self._can_submit(1):
                break
            if self._bucket is not None:
                # Look before taking a token, so the end of the input costs no wait.
                if not self._peek():
                    break
                if not self._take_token(loop):
                    break
            fresh = self._pull_chunk(size)
            if fresh is None:
                break
            self._output.append(fresh)
            self._open_items += len(fresh.items)
            self._submit(fresh, fresh.items, None)

    def _submit(self, chunk: Chunk, items: list[Any], pos: int | None) -> None:
        assert self.backend is not None
        self._in_flight_tasks += 1
        self._in_flight_items += len(items)
        try:
            fut = self.backend.submit(items)
        except Exception as exc:  # e.g. NotPicklable at submit: a failure of these items
            if self._pump_inbox is not None:  # the loop is not running: a future that needs none
                fut = concurrent.futures.Future()
            else:
                fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        self._inflight[fut] = (chunk, pos, time.perf_counter())
        if self._pump_inbox is not None:
            if pos is None:
                chunk.future = fut
            fut.add_done_callback(self._pump_done)
        elif isinstance(fut, asyncio.Future):
            fut.add_done_callback(self._on_done)
        else:
            fut.add_done_callback(self._on_pool_done)

    def _on_pool_done(self, fut: concurrent.futures.Future[ChunkResult]) -> None:
        # Runs in a pool thread.  Completions queue up in the inbox and the loop is
        # woken once per batch, not once per item: that is most of the driver's cost
        # per item on a thread pool, and it competes with the workers for the GIL.
        self._inbox.append(fut)
        if not self._inbox_armed:
            self._inbox_armed = True
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._drain_inbox)
                except RuntimeError:  # the loop is closed: the run is over
                    pass

    def _drain_inbox(self) -> None:
        self._inbox_armed = False  # first: a completion arriving from now on arms a new drain
        inbox = self._inbox
        while inbox:
            self._on_done(inbox.popleft())

    def _wake_at(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if when >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- completion ------------------------------------------------------------------------------

    def _on_done(self, fut: Any) -> None:
        entry = self._inflight.pop(fut, None)
        if entry is None:
            return  # already handled (cancellation path)
        chunk, pos, start = entry
        n = 1 if pos is not None else len(chunk.items)
        self._in_flight_tasks -= 1
        self._in_flight_items -= n
        exc: BaseException | None = None
        result: ChunkResult
        if n == 1 and self._raw_single:
            # The future is the item's own task: its exception is the item's failure, as is.
            try:
                result = ([fut.result()], None, time.perf_counter() - start)
            except asyncio.CancelledError:
                result = ([None], {0: asyncio.CancelledError()}, 0.0)
            except Exception as e:
                result = ([None], {0: e}, time.perf_counter() - start)
            self._settle(chunk, pos, result)
            self._poke()
            return
        try:
            result = fut.result()  # the common case: one call, one lock
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            result = ([None] * n, dict.fromkeys(range(n), asyncio.CancelledError()), 0.0)
        except Exception as e:
            exc = e
        if exc is not None:
            if isinstance(exc, WorkerCrashed) and n > 1:
                # One item of the chunk killed its worker, and we cannot tell which: run
                # each item alone (no attempt is counted), so only the culprit fails.
                assert self._loop is not None
                now = self._loop.time()
                for p in range(n):
                    heapq.heappush(self._retries, (now, next(self._retry_seq), chunk, p, False))
                self._poke()
                return
            else:
                # Name the item, not the internal chunk call, in the messages.
                item = chunk.items[pos if pos is not None else 0]
                if isinstance(exc, TaskTimeout) and n == 1 and self.backend is not None:
                    exc = timeout_error(item, self.options.timeout or exc.timeout, self.backend.stops_by)
                elif isinstance(exc, WorkerCrashed) and n == 1:
                    exc = type(exc)(describe_item(item), exc.pid, exc.exitcode, exc.attempts)
                result = ([None] * n, dict.fromkeys(range(n), exc), 0.0)
        self._settle(chunk, pos, result)
        self._poke()

    def _settle(self, chunk: Chunk, pos: int | None, result: ChunkResult) -> None:
        values, failures, seconds = result
        opts = self.options
        writer = self._writer
        n = len(values)
        per_item = seconds / n if n else 0.0
        final: list[int] = []
        if pos is None:
            chunk.values = values
            if n and chunk.seconds[0] == 0.0:
                chunk.seconds = [per_item] * n
            positions: Iterable[int] = range(n)
            self._adapt_chunksize(n, seconds)
        else:
            chunk.values[pos] = values[0]
            chunk.seconds[pos] += per_item
            positions = (pos,)
        if not failures and writer is None:
            # The fast path: every item succeeded and nothing is written per item.
            self.stats["done"] += n
            chunk.pending -= n
            if self._progress is not None:
                self._progress.update(self.stats)
            if not opts.ordered:
                self._ready.append((chunk, None if n == len(chunk.items) else list(positions)))
            return
        assert self._loop is not None
        now = self._loop.time()
        for i, p in enumerate(positions):
            exc = failures.get(i) if failures else None
            if exc is not None:
                attempts = chunk.attempts_of(p)
                if attempts <= opts.retries and isinstance(exc, opts.retry_on):
                    if chunk.attempts is None:
                        chunk.attempts = {}
                    chunk.attempts.setdefault(p, attempts)
                    delay = opts.backoff.delay(attempts, self._rng)
                    heapq.heappush(self._retries, (now + delay, next(self._retry_seq), chunk, p, True))
                    continue
                if chunk.errors is None:
                    chunk.errors = {}
                chunk.errors[p] = exc
                self.stats["failed"] += 1
                if writer is not None and chunk.keys:
                    writer.add_failure(chunk.keys[p], chunk.start + p, exc, attempts, chunk.seconds[p])
                if opts.errors == "raise":
                    self._stopping = True
            else:
                self.stats["done"] += 1
                if writer is not None and chunk.keys:
                    writer.add_success(
                        chunk.keys[p], chunk.start + p, chunk.values[p], chunk.attempts_of(p), chunk.seconds[p]
                    )
            final.append(p)
        chunk.pending -= len(final)
        if writer is not None:
            writer.flush()
        if self._progress is not None:
            self._progress.update(self.stats)
        if final and not opts.ordered:
            self._ready.append((chunk, None if len(final) == len(chunk.items) else final))

    def _adapt_chunksize(self, n: int, seconds: float) -> None:
        if self._chunk_cap <= 1 or self.backend is None:
            return
        target = TARGET_CHUNK_SECONDS.get(self.backend.name, 0.0)
        per_item = max(seconds / max(n, 1), 1e-7)
        want = max(1, min(self._chunk_cap, int(target / per_item)))
        # Grow at most 16x at a time: one fast measurement should not make a huge chunk.
        self._chunksize = min(want, self._chunksize * 16)

    # -- output ----------------------------------------------------------------------------------

    def _take_output(self) -> Emission:
        out: Emission
        if self.options.ordered:
            out = []
            output = self._output
            while output and output[0].pending == 0:
                chunk = output.popleft()
                self._open_items -= len(chunk.items)
                out.append((chunk, None))
            return out
        out, self._ready = self._ready, []
        for chunk, positions in out:
            self._open_items -= len(chunk.items) if positions is None else len(positions)
        return out

    def _finished(self) -> bool:
        if self._inflight or self._retries:
            return False
        if self._stopping:
            return True
        return self._exhausted and not self._lookahead and self._open_items == 0

    # -- the pump: a run that needs no loop -------------------------------------------------------

    def may_pump(self) -> bool:
        """Whether, by its options alone, this run could be pumped (see :meth:`can_pump`)."""
        o = self.options
        return o.backend in ("thread", "auto") and not self.is_async and not (o.timeout or o.rate or o.retries)

    def can_pump(self) -> bool:
        """Whether :meth:`pump` may run this prepared run: a thread pool fed without a timeout,
        and nothing that waits on the loop's clock (no rate, no retries)."""
        b = self.backend
        ready = b is not None and b.name == "thread" and not (self._retries or self._inflight)
        return ready and self.may_pump()

    def wake_pump(self) -> None:
        """Make a blocked :meth:`pump` look at :attr:`interrupted` (callable from a signal handler)."""
        self._pump_wake.put(None)

    def _pump_done(self, fut: Any) -> None:
        # Runs in the worker thread that finished *fut*.  The pump is woken only when it
        # waits for this future: in an ordered run nothing can come out, and nothing more
        # can be admitted (the window is full), until the head chunk is done, so waking
        # the caller's thread for any other completion would only take the GIL from the
        # workers.  (Races are benign: the pump sets the watch before it looks at the
        # inbox, the worker appends before it looks at the watch; a spare wake-up is
        # just one more look.)
        assert self._pump_inbox is not None
        self._pump_inbox.append(fut)
        if self._pump_waiting and (self._pump_watch is None or self._pump_watch is fut):
            self._pump_waiting = False
            self._pump_wake.put(None)

    def pump(self) -> Iterator[Emission]:
        """Run a prepared run in the calling thread, without stepping the loop (see :meth:`can_pump`).

        ``map()`` over threads spends most of its own time per item in loop
        machinery: a self-pipe write per batch from the worker, a wake-up, several
        loop ticks and a ``run_until_complete`` per emission.  Here the workers put
        finished futures on a ``SimpleQueue`` and this thread blocks on it, the way
        ``ThreadPoolExecutor.map`` blocks on a future's lock, and runs the very same
        admission, completion and output code.  The caller stops it by setting
        :attr:`interrupted` and calling :meth:`wake_pump`; then, as on any exit, it
        must run :meth:`shutdown`.
        """
        inbox = self._pump_inbox = deque()
        pop, wait, on_done = inbox.popleft, self._pump_wake.get, self._on_done
        ordered, output = self.options.ordered, self._output
        while not self.interrupted:
            self._admit()
            out = self._take_output()
            if out:
                yield out
                continue
            if self._finished():
                return
            if not inbox:
                # Ordered: wait for the head chunk (nothing else can be emitted or admitted
                # before it); unordered: for any chunk.
                self._pump_watch = output[0].future if ordered and output else None
                self._pump_waiting = True
                if not inbox:
                    wait()  # blocks with the GIL released
                self._pump_waiting = False
            while inbox:
                on_done(pop())

    async def run(self) -> AsyncGenerator[Emission, None]:
        """Yield emissions until every item is emitted (or the run stops at a failure)."""
        cancelled = True
        try:
            await self.prepare()
            assert self._wake is not None
            while True:
                self._admit()
                out = self._take_output()
                if out:
                    yield out
                    continue
                if self._finished():
                    break
                await self._wake.wait()
                self._wake.clear()
            cancelled = False
        finally:
            await self.shutdown(cancel=cancelled)

    async def shutdown(self, *, cancel: bool) -> None:
        """Record finished work, stop the backend (cancelling what runs when *cancel*), close files.

        Idempotent: a second call (the iterator's last-resort clean-up) does nothing.
        """
        if self._shut_down:
            return
        self._shut_down = True
        # Futures that finished but whose callbacks have not run yet: record them now.
        for fut in [f for f in self._inflight if f.done()]:
            self._on_done(fut)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        backend, self.backend = self.backend, None
        try:
            if backend is not None:
                for fut in list(self._inflight):
                    if isinstance(fut, asyncio.Future):
                        fut.remove_done_callback(self._on_done)
                    fut.cancel()  # a pool future's late callback finds nothing in _inflight
                self._inflight.clear()
                await backend.aclose(cancel=cancel or self._stopping)
        finally:
            if self._writer is not None:
                self._writer.close()
            if self._progress is not None:
                self._progress.close(self.stats)
                self._progress = None
