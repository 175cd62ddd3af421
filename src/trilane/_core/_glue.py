"""The seam between trilane's scheduler and asyncio's selector loop.

This is the only module in trilane that touches asyncio internals (names that
start with an underscore, or behaviour asyncio does not document).  Each use
carries a ``# internal:`` comment saying what it is and why.  Everything else
in trilane talks to the loop through public asyncio API and the hooks below.

What we reuse from asyncio, unchanged: the selector layer, transports,
sockets, servers, subprocesses, SSL, signal handling, executors and
``run_forever``/``run_until_complete``.  What we replace: the ready queue
(``_ready``), the timer heap (``_scheduled``), and the tick (``_run_once``).

::

    call_soon ──────────────► ReadyQueue (policy) ──┐
    call_soon_threadsafe ──► inbox (deque) ─────────┤
    call_at ───────────────► TimerHeap ─────────────┤   GlueLoop._run_once
    selector events ───────► _add_callback ─────────┘        = Loop._tick()

Guarantees:

* ``call_soon``, ``call_at`` and ``create_task`` behave as in asyncio, with
  the same checks and the same debug-mode tracebacks.
* ``call_soon_threadsafe`` and signal handlers never touch the policy: they
  append to a ``deque`` (atomic under the GIL) that the loop thread drains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
import threading
from asyncio import events, format_helpers
from collections.abc import Callable
from time import perf_counter
from typing import Any

from ._policies import Policy, make_policy
from ._ready import Entry, ReadyQueue
from ._stats import CURRENT, INFO_ATTR, ROOT, TaskInfo
from ._timers import TimerHeap

__all__ = ["GlueLoop", "run_batch"]

_Task = asyncio.Task


class _Handle(events.Handle):
    """A ``Handle`` built without the ``get_debug()`` call of ``Handle.__init__``."""

    __slots__ = ()

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context,
    ) -> None:
        # internal: Handle's slots, set exactly as Handle.__init__ sets them for a
        # loop not in debug mode (GlueLoop uses the stock class in debug mode).
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class _TimerHandle(events.TimerHandle):
    """A ``TimerHandle`` that call_at builds in place (see ``_new_timer``)."""

    __slots__ = ()


# Both print as asyncio's own classes do.
_Handle.__name__ = _Handle.__qualname__ = "Handle"
_TimerHandle.__name__ = _TimerHandle.__qualname__ = "TimerHandle"


class GlueLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop with trilane's ready queue, timer heap and tick."""

    # internal: BaseEventLoop attributes we read, declared for the type checker.
    _closed: bool
    _debug: bool
    _task_factory: Any
    _ready: ReadyQueue  # internal: BaseEventLoop's ready deque, replaced
    _polling: bool
    _timers: TimerHeap

    def __init__(self, selector: Any, policy: object, clock: Callable[[], float]) -> None:
        # internal: BaseEventLoop.__del__ reads _closed; mark the loop closed
        # until its __init__ has run, so that a bad argument cannot break __del__.
        _impl(self)._closed = True
        queue = make_policy(policy)
        queue.bind(clock)
        self._spawn_info: TaskInfo | None = None
        # What runs outside any task (the self-pipe, work other threads queue
        # from no task) is charged to this loop's own record.
        self._root = TaskInfo(0, None, "<loop>")
        self._now = perf_counter()
        self._polling = True
        super().__init__(selector)
        # internal: BaseEventLoop keeps its ready deque in _ready and its timer
        # heap in _scheduled; close() clears both and _run_once reads them.  We
        # put our own queue and heap in their place.
        self._ready = ReadyQueue(queue, self._policy_failed, self._root)
        self._timers = TimerHeap()
        self._scheduled = self._timers

    # -- hooks the Loop implements -------------------------------------------------

    def _tick(self) -> None:
        raise NotImplementedError

    def _policy_failed(self, exc: BaseException, policy: Policy[Any], complete: bool) -> None:
        raise NotImplementedError

    # -- asyncio's internal entry points, redirected ---------------------------------

    def _run_once(self) -> None:
        # internal: run_forever() calls _run_once() once per iteration.
        self._tick()

    def _add_callback(self, handle: events.Handle) -> None:
        # internal: selector_events._process_events() hands ready readers and
        # writers to _add_callback().
        h: Any = handle  # internal: Handle._cancelled and _context, read without a call
        if not h._cancelled:
            self._ready.push((handle, h._context.get(CURRENT, self._root), self._now))

    def _add_callback_signalsafe(self, handle: events.Handle) -> None:
        # internal: unix_events calls this from a signal handler, which may have
        # interrupted the policy mid-push, so it goes through push_threadsafe.
        self._ready.push_threadsafe((handle, _impl(handle)._context.get(CURRENT, self._root), perf_counter()))
        _impl(self)._write_to_self()  # internal: wakes select() through the self-pipe.

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # internal: TimerHandle.cancel() reports here; TimerHandle._scheduled is
        # the flag BaseEventLoop sets while a timer sits in the heap.
        if _impl(handle)._scheduled:
            self._timers.note_cancelled()

    def _call_soon(self, callback: Any, args: Any, context: Any) -> events.Handle:
        # internal: asyncio's own helpers (and some libraries) call _call_soon.
        handle = _impl(events.Handle(callback, args, self, context))
        if handle._source_traceback:  # internal: debug-mode creation stack
            del handle._source_traceback[-1]
        self._ready.push((handle, handle._context.get(CURRENT, self._root), self._now))
        return handle  # type: ignore[no-any-return]

    # -- the public scheduling calls -------------------------------------------------

    def call_soon(  # type: ignore[override]
        self, callback: Any, *args: Any, context: contextvars.Context | None = None
    ) -> events.Handle:
        # internal: the same checks as BaseEventLoop.call_soon, on its _closed
        # and _debug flags.  This is the hottest path in the loop: keep it flat.
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            return self._call_soon_debug(callback, args, context)  # type: ignore[no-any-return]
        if context is None:
            context = contextvars.copy_context()
        # internal: the fields Handle.__init__ sets for a loop not in debug
        # mode, set here directly: one frame less on the hottest path.
        handle = _new_handle(_Handle)
        handle._context = context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        # The owner is the task whose context the callback runs in: the task
        # itself for a task's step, the scheduling task for a plain callback.
        info = context.get(CURRENT, self._root)
        ready = self._ready
        fast = ready.fast_push
        if fast is not None:
            fast((handle, info, self._now))
        else:
            if ready.inbox:
                # What other threads queued earlier goes first, so that
                # call_soon_threadsafe and call_soon keep their order within a level.
                ready.take_inbox()
            try:
                ready.policy_push((handle, info, self._now), info)
            except Exception as exc:
                ready.replace_policy(exc)
                ready.push((handle, info, self._now))
        return handle  # type: ignore[no-any-return]

    def _call_soon_debug(self, callback: Any, args: tuple[Any, ...], context: contextvars.Context | None) -> Any:
        # internal: debug mode checks the thread and the callback, and records
        # the creation stack without this frame and call_soon's.
        loop = _impl(self)
        loop._check_thread()
        loop._check_callback(callback, "call_soon")
        handle = _impl(events.Handle(callback, args, self, context))
        if handle._source_traceback:
            del handle._source_traceback[-2:]
        if self._ready.inbox:  # as in call_soon: what other threads queued earlier goes first
            self._ready.take_inbox()
        self._ready.push((handle, handle._context.get(CURRENT, self._root), self._now))
        return handle

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Any, *args: Any, context: contextvars.Context | None = None
    ) -> events.Handle:
        loop = _impl(self)  # internal: the same checks as call_soon
        if loop._closed:
            raise RuntimeError("Event loop is closed")
        if loop._debug:
            loop._check_callback(callback, "call_soon_threadsafe")
        handle = _impl(events.Handle(callback, args, self, context))
        if handle._source_traceback:  # internal: drop this frame from it
            del handle._source_traceback[-1]
        # perf_counter() reads CLOCK_MONOTONIC, which every thread shares.
        entry = (handle, handle._context.get(CURRENT, self._root), perf_counter())
        if loop._thread_id == threading.get_ident():
            # internal: _thread_id is the thread running the loop.  From that
            # thread this is call_soon, and keeps call_soon's order.
            self._ready.push(entry)
        else:
            self._ready.push_threadsafe(entry)
        loop._write_to_self()  # internal: wakes select() through the self-pipe.
        return handle  # type: ignore[no-any-return]

    def call_later(  # type: ignore[override]
        self, delay: float, callback: Any, *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        if self._debug or type(self).call_at is not GlueLoop.call_at:
            # Debug mode, or a subclass with its own call_at (asyncio's test
            # loop has one): go through call_at, as asyncio's call_later does.
            timer = _impl(self.call_at(self.time() + delay, callback, *args, context=context))
            if timer._source_traceback:  # internal: debug-mode creation stack; drop this frame
                del timer._source_traceback[-1]
            return timer  # type: ignore[no-any-return]
        return _new_timer(self, self.time() + delay, callback, args, context)

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._debug:
            return self._call_at_debug(when, callback, args, context)
        return _new_timer(self, when, callback, args, context)

    def _call_at_debug(
        self, when: float, callback: Any, args: tuple[Any, ...], context: contextvars.Context | None
    ) -> asyncio.TimerHandle:
        # internal: the same checks as BaseEventLoop.call_at in debug mode, and
        # the creation stack without this frame and call_at's (or call_later's).
        loop = _impl(self)
        if loop._closed:
            raise RuntimeError("Event loop is closed")
        loop._check_thread()
        loop._check_callback(callback, "call_at")
        timer = _impl(events.TimerHandle(when, callback, args, self, context))
        if timer._source_traceback:
            del timer._source_traceback[-2:]
        self._timers.push(when, timer, timer._context.get(CURRENT, self._root))
        timer._scheduled = True  # internal: see _timer_handle_cancelled
        return timer  # type: ignore[no-any-return]

    def create_task(  # type: ignore[override]
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None
    ) -> Any:
        """Create a task with its own :class:`TaskInfo`, inheriting priority and group.

        The record is set in the creating context just while the task copies
        it, so the task (and every callback that runs in its context) is
        charged to its own record.  A task given an explicit ``context`` is
        charged to the record already in that context; if it has none (as with
        ``asyncio.Runner``'s main task), a new record is put into it.
        """
        if context is not None:
            record = context.get(CURRENT)
            if record is None:
                parent = CURRENT.get(ROOT)
                record = TaskInfo(parent.priority, parent.group)
                try:
                    context.run(CURRENT.set, record)
                except RuntimeError:  # the context is entered right now: leave it alone
                    record = self._root
            given = super().create_task(coro, name=name, context=context)
            if record is not self._root:  # so that set_priority() and task_stats() see the charged record
                setattr(given, INFO_ATTR, record)
            return given
        info = self._spawn_info
        if info is None:
            parent = CURRENT.get(ROOT)
            info = TaskInfo(parent.priority, parent.group)
        else:
            self._spawn_info = None
        task: Any
        if self._task_factory is None:
            # internal: _task_factory is what set_task_factory() stored.  With
            # none, build the task as BaseEventLoop.create_task does, in a copy
            # of the current context that holds the new record.
            context = contextvars.copy_context()
            context.run(CURRENT.set, info)
            task = _Task(coro, loop=self, name=name, context=context)
        else:
            # A factory may not take context=: let the task copy the current
            # context while it holds the new record.
            token = CURRENT.set(info)
            try:
                task = _base_create_task(self, coro, name=name)
            finally:
                CURRENT.reset(token)
        if self._debug and task._source_traceback:  # internal: debug-mode creation stack; drop this frame
            del task._source_traceback[-1]
        setattr(task, INFO_ATTR, info)
        return task

    def set_default_executor(self, executor: Any) -> None:
        """Use *executor* for ``run_in_executor(None, ...)``: any ``concurrent.futures.Executor``.

        asyncio 3.11 takes only a ``ThreadPoolExecutor``; trilane's pools (and
        any other executor) are just as good a default here.
        """
        if not isinstance(executor, concurrent.futures.Executor):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
        # internal: _default_executor is what run_in_executor(None, ...) and
        # shutdown_default_executor() use.
        _impl(self)._default_executor = executor

    # -- helpers for Loop._tick ------------------------------------------------------

    def _poll(self, timeout: float | None) -> None:
        """Wait up to *timeout* seconds for I/O, then queue the ready readers and writers."""
        # internal: _selector is the loop's selectors.BaseSelector and
        # _process_events() turns its events into _add_callback() calls.
        loop: Any = self
        self._polling = True
        try:
            ready_events = loop._selector.select(timeout)
        finally:
            if timeout != 0:
                # select() may have slept: restamp before the heartbeat shows again, so the
                # watchdog never reads a pre-sleep _now and what it wakes is queued from now.
                self._now = perf_counter()
            self._polling = False
        loop._process_events(ready_events)

    def _move_due_timers(self, end_time: float, stamp: float) -> None:
        """Queue every live timer due before *end_time*, stamped as queued at *stamp*."""
        push = self._ready.push
        timer: Any
        for timer, owner in self._timers.pop_due(end_time):
            timer._scheduled = False  # internal: see _timer_handle_cancelled
            push((timer, owner, stamp))

    def _stopping_now(self) -> bool:
        # internal: stop() sets _stopping; run_forever() checks it after each tick.
        loop: Any = self
        return bool(loop._stopping)

    def _clock_resolution_value(self) -> float:
        # internal: BaseEventLoop._clock_resolution, the slack _run_once gives timers
        # (asyncio's test loop sets its own).
        loop: Any = self
        return float(loop._clock_resolution)


# Allocates a _Handle without running an __init__ (call_soon sets its fields).
_new_handle: Any = events.Handle.__new__


def _new_timer(
    loop: GlueLoop, when: float, callback: Any, args: tuple[Any, ...], context: contextvars.Context | None
) -> asyncio.TimerHandle:
    """call_at for a loop not in debug mode: a TimerHandle built in place, pushed on the heap."""
    if loop._closed:
        raise RuntimeError("Event loop is closed")
    if context is None:
        context = contextvars.copy_context()
    # internal: the fields TimerHandle.__init__ sets for a loop not in debug
    # mode, set directly (two frames and a get_debug() call fewer per timer);
    # _scheduled is the flag BaseEventLoop keeps while a timer is in the heap.
    timer: Any = _new_handle(_TimerHandle)
    timer._context = context
    timer._loop = loop
    timer._callback = callback
    timer._args = args
    timer._cancelled = False
    timer._repr = None
    timer._source_traceback = None
    timer._when = when
    timer._scheduled = True
    loop._timers.push(when, timer, context.get(CURRENT, loop._root))
    return timer  # type: ignore[no-any-return]


# BaseEventLoop.create_task, called without super()'s lookup on the hot path.
_base_create_task = asyncio.base_events.BaseEventLoop.create_task


def _impl(obj: object) -> Any:
    """Return *obj* typed as ``Any``, to reach an asyncio internal (each use says which)."""
    return obj


def _report(loop: GlueLoop, handle: events.Handle, exc: BaseException) -> None:
    # internal: the message, context keys and traceback that Handle._run gives.
    h = _impl(handle)
    source = _impl(format_helpers)._format_callback_source(h._callback, h._args)
    context: dict[str, Any] = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if h._source_traceback:
        context["source_traceback"] = h._source_traceback
    loop.call_exception_handler(context)


def run_batch(
    loop: GlueLoop,
    pop: Callable[[], Entry],
    count: int,
    budget: float | None,
    charge: Callable[[TaskInfo, float], None] | None,
    slow: float,
    on_slow: Callable[[Entry, float], None],
    timed: bool = True,
) -> int:
    """Run up to *count* ready callbacks, in the order *pop* gives them.

    This is the only place where callbacks are actually *called*.  All other
    places just add them to the ready queue.  Each one's run time is charged
    to its owner here, and the watchdog's heartbeat (``loop._now``, the
    ``perf_counter()`` at which the running callback started) is set here.
    With a *budget*, the batch stops early once that many seconds have
    passed, so timers and I/O are polled again.  Returns how many entries it
    took from the queue.  An exception from *pop* or *charge* (a broken
    policy) propagates; exceptions from callbacks go to the loop's exception
    handler, as in asyncio.
    """
    debug = loop._debug
    if budget is None and charge is None and not debug:
        if not timed:
            return _run_untimed(loop, pop, count)
        return _run_plain(loop, pop, count, slow, on_slow)
    t = perf_counter()
    end = t + budget if budget is not None else math.inf
    done = 0
    try:
        for done in range(1, count + 1):  # noqa: B007 - done is the count taken
            entry = pop()
            handle: Any
            handle, info, queued = entry
            # internal: Handle._cancelled, _context, _callback and _args are the
            # fields Handle._run uses; we call them directly to save a frame.
            if handle._cancelled:
                continue
            loop._now = t  # the heartbeat, and the queued-at stamp for what this callback schedules
            try:
                if debug:
                    _run_debug(loop, handle)
                else:
                    handle._context.run(handle._callback, *handle._args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                _report(loop, handle, exc)
            now = perf_counter()
            ran = now - t
            info.run_time += ran
            info.wait_time += t - queued
            info.steps += 1
            if ran > info.longest_step:  # not max(): a call per callback costs
                info.longest_step = ran
            if ran >= slow:
                on_slow(entry, ran)
            if charge is not None:
                charge(info, ran)
            t = now
            if t > end:
                break
    finally:
        loop._now = t
    return done


def _run_plain(
    loop: GlueLoop, pop: Callable[[], Entry], count: int, slow: float, on_slow: Callable[[Entry, float], None]
) -> int:
    """run_batch for the common case: no budget, no charge() hook, no debug mode.

    The same loop as run_batch's without those three checks, which cost about
    3% of a task switch; keep the two in step.
    """
    t = perf_counter()
    try:
        for _ in range(count):
            entry = pop()
            handle: Any
            handle, info, queued = entry
            if handle._cancelled:  # internal: as in run_batch
                continue
            loop._now = t
            try:
                handle._context.run(handle._callback, *handle._args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                _report(loop, handle, exc)
            now = perf_counter()
            ran = now - t
            info.run_time += ran
            info.wait_time += t - queued
            info.steps += 1
            if ran > info.longest_step:  # not max(): a call per callback costs
                info.longest_step = ran
            if ran >= slow:
                on_slow(entry, ran)
            t = now
    finally:
        loop._now = t
    return count


def _run_untimed(loop: GlueLoop, pop: Callable[[], Entry], count: int) -> int:
    """run_batch for a loop made with ``stats=False``: no clock read, nothing charged.

    Reading the clock and charging each callback costs 12–15% of a bare
    task switch; this is the loop without that, for code that wants asyncio's
    speed more than trilane's accounting.  (No watchdog can watch it.)
    """
    loop._now = perf_counter()
    for _ in range(count):
        handle: Any = pop()[0]
        if handle._cancelled:  # internal: as in run_batch
            continue
        try:
            handle._context.run(handle._callback, *handle._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            _report(loop, handle, exc)
    return count


def _run_debug(loop: GlueLoop, handle: events.Handle) -> None:
    # internal: debug mode keeps _current_handle set while a callback runs and
    # warns about slow callbacks, as BaseEventLoop._run_once does.
    try:
        _impl(loop)._current_handle = handle
        t0 = loop.time()
        h = _impl(handle)
        h._context.run(h._callback, *h._args)
        dt = loop.time() - t0
        if dt >= loop.slow_callback_duration:
            # internal: base_events' own logger and _format_handle, looked up on
            # the module each time, as tests patch base_events.logger.
            base = _impl(asyncio.base_events)
            base.logger.warning("Executing %s took %.3f seconds", base._format_handle(handle), dt)
    finally:
        _impl(loop)._current_handle = None
