"""The watchdog: catch a callback that blocks the loop while it is still blocking.

asyncio's debug mode reports a slow callback only after it returns, without
its stack, and never reports one that does not return.  The watchdog runs a
daemon thread next to the loop instead::

    loop thread                                  watchdog thread (one per running loop)
    ───────────                                  ───────────────
    run_batch: loop._cb_start = t  ──heartbeat──► every threshold/4: read callback_started()
      callback runs ... blocks ...                  age = now - start ≥ threshold?
                                                    └► sys._current_frames()[loop thread]
                                                       → capture → match → BlockingReport
                                                       → table[call site].count += 1
                                                       → logger / on_block   (once per incident)
      callback returns, ran ≥ threshold
      Loop._on_slow: info.blocked_time += ran
      └► Watchdog.callback_ended ──────────────────► table[call site].total += ran

The heartbeat costs the loop one attribute store per callback (set in
``run_batch``); everything else happens on the watchdog thread or on the
rare slow callback.  An *incident* is one slow callback, identified by the
``perf_counter()`` value at which it started.

Guarantees:

* One report per incident, delivered while the callback still runs if the
  watchdog thread gets to sample it; an incident that ends before it is
  sampled (it ran just past the threshold) is reported on its end, with
  ``ended=True`` and the frame the task stopped at.
* The stack is checked to belong to the incident: if the callback changed
  while its frames were read, the sample is thrown away.
* Incidents at one call site (the innermost frame of the user's code) are
  counted in one :class:`BlockingSite`, not repeated: the logger warns on
  the 1st, 10th, 100th ... incident of a site.  ``on_block`` gets them all.
* ``detach`` stops and joins the thread, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from . import _glue
from ._hints import BlockingHint, RawFrame, StackFrame, call_site, capture, fold, match
from ._loop import BlockHook, Loop
from ._stats import TaskInfo

__all__ = ["BlockingReport", "BlockingSite", "Watchdog", "logger"]

#: Where the watchdog's warnings go.
logger: Final = logging.getLogger("trilane.watchdog")

_MISSED: Final = BlockingHint(
    "unknown",
    "it ended just past the threshold, before its stack could be sampled (the line shown is where it resumed)",
    "run with a lower threshold to see the blocking call",
)

# Frames of the loop itself: the stack shown in a report starts inside the callback.
_STOP_CODES: Final = frozenset(
    f.__code__ for name, f in vars(_glue).items() if name in ("run_batch", "_run_plain", "_run_debug") and callable(f)
)

Key = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class BlockingReport:
    """One incident: a callback that held the loop for at least the watchdog's threshold.

    ``task`` is the running task's name (``"<callback>"`` outside tasks);
    ``duration`` the seconds it had blocked when the report was made (its
    whole run time if ``ended``); ``frames`` the stack inside the callback,
    outermost first, with library frames folded (see :class:`trilane.StackFrame`);
    ``hint`` says why it blocks and how to fix it; ``ended`` is False when
    the report was made while the callback was still running.  ``filename``,
    ``lineno`` and ``function`` name the call site (the innermost line of the
    user's code), ``count`` is how many incidents that call site has had so
    far (this one included), and ``cpu`` the share of the time the loop
    thread spent on a CPU (``None`` if unknown).
    """

    task: str
    duration: float
    frames: tuple[StackFrame, ...]
    hint: BlockingHint
    ended: bool
    filename: str
    lineno: int
    function: str
    count: int = 1
    cpu: float | None = None

    @property
    def location(self) -> str:
        """``file:line`` of the call site."""
        return f"{self.filename}:{self.lineno}"

    def format(self) -> str:
        """Return the report as the multi-line text the logger writes."""
        state = "blocked" if self.ended else "has been blocking"
        head = f"task {self.task!r} {state} the event loop for {self.duration * 1000:.0f} ms at {self.location}"
        if self.count > 1:
            head += f" (incident {self.count} at this call site)"
        stack = "\n".join(str(f) for f in self.frames)
        return f"{head}\n{stack}\nhint: {self.hint}"


@dataclass(frozen=True, slots=True)
class BlockingSite:
    """All incidents at one call site: how many, how long in total and at most, and the hint.

    ``total`` and ``longest`` include the time so far of an incident that is
    still running.  ``tasks`` names up to five tasks that blocked there;
    ``last`` is the most recent report.
    """

    filename: str
    lineno: int
    function: str
    count: int
    total: float
    longest: float
    hint: BlockingHint
    tasks: tuple[str, ...]
    last: BlockingReport

    @property
    def location(self) -> str:
        """``file:line`` of the call site."""
        return f"{self.filename}:{self.lineno}"


@dataclass
class _Site:
    key: Key
    hint: BlockingHint
    last: BlockingReport
    count: int = 0
    total: float = 0.0
    longest: float = 0.0
    tasks: dict[str, None] = field(default_factory=dict)


@dataclass
class _Open:
    start: float
    site: _Site


class _Watch:
    """The watchdog's state for one running loop."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.open: _Open | None = None  # the incident reported and not yet ended
        self.ended = 0.0  # start of the last incident closed by callback_ended
        self.seen = 0.0  # start of the callback the thread last saw running
        self.seen_wall = 0.0
        self.seen_cpu: float | None = None
        self.seen_task = "<callback>"
        self.seen_task_obj: asyncio.Task[object] | None = None
        try:
            self.cpu_clock: int | None = time.pthread_getcpuclockid(self.thread_id)
        except (AttributeError, OSError):  # not on this platform
            self.cpu_clock = None

    def cpu(self) -> float | None:
        if self.cpu_clock is None:
            return None
        try:
            return time.clock_gettime(self.cpu_clock)
        except OSError:
            return None


class Watchdog(BlockHook):
    """Watches a trilane loop for callbacks that block it, and says why.

    ``threshold`` (seconds, default 0.1) is how long one callback may run
    before it counts as blocking.  ``on_block`` is called with a
    :class:`trilane.BlockingReport` for every incident, from the watchdog's
    thread while the callback still runs (or from the loop thread when an
    incident ended before it could be sampled); it must be quick and must
    not touch the loop except through ``call_soon_threadsafe``.  With
    ``log=True`` (the default) incidents are also logged as warnings to the
    ``trilane.watchdog`` logger, once per call site and again at its 10th,
    100th, ... incident.  ``interval`` is the longest the thread sleeps
    between looks at the heartbeat (default: ``threshold``); it wakes up
    exactly when a callback it saw running would cross the threshold, so a
    report comes about ``threshold`` after the callback started whatever
    the interval, and the thread wakes about ten times a second at 100 ms.

    Use it as ``trilane.run(main(), watchdog=trilane.Watchdog(threshold=0.05))``
    or ``loop.set_block_hook(watchdog)``.  One Watchdog may watch several
    loops, one after another or at once; its table of call sites
    (:meth:`sites`) accumulates across them.
    """

    def __init__(
        self,
        threshold: float = 0.1,
        *,
        on_block: Callable[[BlockingReport], object] | None = None,
        log: bool = True,
        interval: float | None = None,
    ) -> None:
        if not (isinstance(threshold, int | float) and 0 < threshold < math.inf):
            raise ValueError(f"Watchdog threshold must be a positive number of seconds, got {threshold!r}")
        if interval is not None and not (0 < interval < math.inf):
            raise ValueError(f"Watchdog interval must be a positive number of seconds, got {interval!r}")
        self.threshold = float(threshold)
        self.interval = float(threshold) if interval is None else float(interval)
        self.on_block = on_block
        self.log = log
        self._lock = threading.Lock()
        self._sites: dict[Key, _Site] = {}
        self._watches: dict[Loop, _Watch] = {}
        self._incidents = 0

    def __repr__(self) -> str:
        return f"<trilane.Watchdog threshold={self.threshold:g}s incidents={self._incidents}>"

    # -- the BlockHook side (called by the loop, in its thread) ----------------------------

    def attach(self, loop: Loop) -> None:
        """Start watching *loop*, which is about to run in the calling thread."""
        watch = _Watch(loop)
        with self._lock:
            old = self._watches.get(loop)
            self._watches[loop] = watch
        if old is not None:
            self._stop(old)
        watch.thread = threading.Thread(
            target=self._watch, args=(watch,), name=f"trilane-watchdog-{id(loop):x}", daemon=True
        )
        watch.thread.start()

    def detach(self, loop: Loop) -> None:
        """Stop watching *loop*: stop and join the thread, and close an incident left open."""
        with self._lock:
            watch = self._watches.pop(loop, None)
        if watch is None:
            return
        self._stop(watch)
        with self._lock:
            if watch.open is not None:
                self._close(watch.open, time.perf_counter() - watch.open.start)
                watch.open = None

    def callback_ended(self, loop: Loop, info: TaskInfo, handle: asyncio.Handle, seconds: float) -> None:
        """Record the whole duration of a slow callback that has just returned (loop thread)."""
        start = loop.callback_started()
        report: BlockingReport | None = None
        with self._lock:
            watch = self._watches.get(loop)
            if watch is None:
                return
            watch.ended = start
            if watch.open is not None and watch.open.start == start:
                self._close(watch.open, seconds)
                watch.open = None
                return
            # Ended before the thread could sample it: report it now, where the task stopped.
            seen = watch.seen == start
            task = watch.seen_task if seen else "<callback>"
            frames = _suspended_frames(watch.seen_task_obj if seen else None)
            report = self._record(frames, _MISSED, task, seconds, ended=True, cpu=None)
            self._close(_Open(start, self._sites[_key(frames)]), seconds)
        self._deliver(report)

    # -- the table ---------------------------------------------------------------------

    def sites(self) -> list[BlockingSite]:
        """Return every call site that blocked, the longest total first."""
        now = time.perf_counter()
        with self._lock:
            running = {w.open.site.key: now - w.open.start for w in self._watches.values() if w.open is not None}
            out = [
                BlockingSite(
                    s.key[0],
                    s.key[1],
                    s.key[2],
                    s.count,
                    s.total + running.get(s.key, 0.0),
                    max(s.longest, running.get(s.key, 0.0)),
                    s.hint,
                    tuple(s.tasks),
                    s.last,
                )
                for s in self._sites.values()
            ]
        out.sort(key=lambda s: (-s.total, s.location))
        return out

    @property
    def incidents(self) -> int:
        """How many incidents the watchdog has seen, at all call sites."""
        return self._incidents

    def summary(self) -> str:
        """Return the table of call sites as plain text (one line per site, the longest total first)."""
        sites = self.sites()
        if not sites:
            return f"no callback blocked the event loop for more than {self.threshold * 1000:.0f} ms"
        lines = [f"{'count':>6} {'total ms':>9} {'max ms':>8}  call site / hint"]
        for s in sites:
            lines.append(f"{s.count:>6} {s.total * 1000:>9.0f} {s.longest * 1000:>8.0f}  {s.location} in {s.function}")
            lines.append(f"{'':>26}  {s.hint}")
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget every recorded call site."""
        with self._lock:
            self._sites.clear()
            self._incidents = 0

    # -- the watchdog thread ----------------------------------------------------------------

    def _stop(self, watch: _Watch) -> None:
        watch.stop.set()
        thread = watch.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _watch(self, watch: _Watch) -> None:
        loop, threshold, interval = watch.loop, self.threshold, self.interval
        reported = 0.0
        wait = interval
        # Event.wait releases the GIL while it sleeps; each wake-up holds it for microseconds.
        while not watch.stop.wait(wait):
            wait = interval
            start = loop.callback_started()
            if not start or start == reported:
                continue
            now = time.perf_counter()
            if start != watch.seen:
                task = asyncio.current_task(loop)
                watch.seen_task = task.get_name() if task is not None else "<callback>"
                watch.seen_task_obj = task
                watch.seen_wall, watch.seen_cpu = now, watch.cpu()
                watch.seen = start  # last: callback_ended trusts the fields above once seen == start
            age = now - start
            if age < threshold:
                # Wake up right when this callback crosses the threshold.  Any callback
                # that starts before then is seen at that wake-up with an age below the
                # threshold, so no incident slips between two looks.
                wait = min(interval, threshold - age + 1e-4)
                continue
            try:
                report = self._sample(watch, start, now)
            except Exception:  # never let a bug here kill the thread silently
                logger.exception("trilane watchdog failed to sample the loop thread")
                report = None
            reported = start
            if report is not None:
                self._deliver(report)

    def _sample(self, watch: _Watch, start: float, now: float) -> BlockingReport | None:
        frame = sys._current_frames().get(watch.thread_id)
        if not _in_callback(frame):
            return None  # a stale heartbeat between callbacks or between runs: nothing is blocking
        frames = capture(frame, _STOP_CODES)
        del frame
        cpu_now, wall_now = watch.cpu(), time.perf_counter()
        if watch.loop.callback_started() != start:
            return None  # the callback ended while we read its frames: they may belong to another one
        # How busy is the loop thread, since we first saw this callback?  Only the
        # last-resort rules (cpu / wait / unknown) care; if they do and we first saw
        # the callback only just now, take a short extra look.
        wall0, cpu0 = watch.seen_wall, watch.seen_cpu
        cpu = _share(cpu0, wall0, cpu_now, wall_now)
        if cpu0 is not None and wall_now - wall0 < 0.2 * self.threshold and match(frames, 0.0) != match(frames, 1.0):
            wall0, cpu0 = wall_now, cpu_now
            if watch.stop.wait(min(0.02, 0.2 * self.threshold)) or watch.loop.callback_started() != start:
                return None
            cpu = _share(cpu0, wall0, watch.cpu(), time.perf_counter())
        hint = match(frames, cpu)
        duration = time.perf_counter() - start
        with self._lock:
            if watch.ended == start or watch.stop.is_set():
                return None
            report = self._record(frames, hint, watch.seen_task, duration, ended=False, cpu=cpu)
            watch.open = _Open(start, self._sites[_key(frames)])
        return report

    # -- shared helpers (the lock is held by the caller where noted) -----------------------

    def _record(
        self, frames: list[RawFrame], hint: BlockingHint, task: str, duration: float, *, ended: bool, cpu: float | None
    ) -> BlockingReport:
        """Count one incident at its call site and return its report (lock held)."""
        key = _key(frames)
        site = self._sites.get(key)
        count = 1 if site is None else site.count + 1
        report = BlockingReport(task, duration, fold(frames), hint, ended, key[0], key[1], key[2], count, cpu)
        if site is None:
            site = self._sites[key] = _Site(key, hint, report)
        site.count = count
        site.last = report
        if len(site.tasks) < 5:
            site.tasks[task] = None
        self._incidents += 1
        return report

    def _close(self, incident: _Open, seconds: float) -> None:
        """Add an incident's whole duration to its call site (lock held)."""
        site = incident.site
        site.total += seconds
        site.longest = max(site.longest, seconds)

    def _deliver(self, report: BlockingReport) -> None:
        if self.log and (report.count == 1 or _power_of_ten(report.count)):
            logger.warning("%s", report.format())
        if self.on_block is not None:
            try:
                self.on_block(report)
            except Exception:
                logger.exception("on_block hook %r raised on a blocking report", self.on_block)


def _share(cpu0: float | None, wall0: float, cpu1: float | None, wall1: float) -> float | None:
    """The share of the wall time from *wall0* to *wall1* that the thread spent on a CPU."""
    if cpu0 is None or cpu1 is None or wall1 <= wall0:
        return None
    return min(1.0, max(0.0, (cpu1 - cpu0) / (wall1 - wall0)))


def _in_callback(frame: types.FrameType | None) -> bool:
    """Whether the thread whose innermost frame is *frame* is inside ``run_batch`` (running a callback)."""
    while frame is not None:
        if frame.f_code in _STOP_CODES:
            return True
        frame = frame.f_back
    return False


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


def _key(frames: list[RawFrame]) -> Key:
    site = call_site(frames)
    if site is None:
        return ("<unknown>", 0, "<unknown>")
    return (site.filename, site.lineno, site.function)


def _suspended_frames(task: asyncio.Task[object] | None) -> list[RawFrame]:
    """Where a task whose slow step was not sampled is suspended now (outermost first).

    The line it stopped at is the ``await`` after the blocking code: the best
    we can still say once the step is over.
    """
    frames: list[RawFrame] = []
    coro: object = task.get_coro() if task is not None else None
    while coro is not None and len(frames) < 64:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.extend(capture(frame, ()))  # a suspended coroutine's frame has no f_back
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames
