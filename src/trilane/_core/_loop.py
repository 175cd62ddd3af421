"""trilane's event loop: a Ready list and a Waiting set, as the seed describes.

::

               ┌──────────────── waiting set ────────────────┐
               │ TimerHeap      selectors       inbox         │
               │ (call_at)      (readers,       (call_soon_   │
               │                 writers)        threadsafe)  │
               └──────┬─────────────┬──────────────┬──────────┘
                      │ due         │ ready        │ drained
                      ▼             ▼              ▼
               ┌──────────── ready queue (policy) ────────────┐
               │ fifo · priority · fair · round_robin · yours │
               └──────────────────────┬───────────────────────┘
                                      ▼
                              run_batch(): the only place
                              callbacks run; run time is
                              charged to each task here

One tick (``Loop._tick``):

1. move what other threads queued (the inbox) into the ready queue;
2. poll I/O: without blocking when work is ready or the loop is stopping,
   otherwise until the next timer is due (the clock decides how long that
   is in real time: a :class:`MockClock` jumps instead of sleeping);
3. move due timers to the ready queue;
4. run the batch that was ready at this point, in the policy's order.  A
   policy with a ``slice`` ends the batch early once that much time has
   passed, leaving the rest queued, so newly due urgent work can overtake.

Steps 2 and 3 come in asyncio's order (I/O, then timers), so that with the
``fifo`` policy every callback runs exactly when it would under asyncio.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine, Hashable
from typing import Any, Final, TypeVar

from ._clock import Clock, MonotonicClock
from ._errors import PolicyError
from ._glue import GlueLoop, run_batch
from ._policies import Policy
from ._ready import Entry
from ._stats import CURRENT, INFO_ATTR, ROOT, LoopStats, TaskInfo, TaskStats, check_priority

__all__ = ["BlockHook", "Loop", "new_event_loop", "set_priority", "spawn", "task_stats"]

T = TypeVar("T")

# asyncio's cap on one select() call (base_events.MAXIMUM_SELECT_TIMEOUT).
_MAX_SELECT: Final = 24 * 3600.0


class BlockHook:
    """What a loop tells a watchdog.  The watchdog module implements it."""

    threshold: float = math.inf

    def attach(self, loop: Loop) -> None:
        """The loop starts running in the calling thread."""

    def detach(self, loop: Loop) -> None:
        """The loop stopped running."""

    def callback_ended(self, loop: Loop, info: TaskInfo, handle: asyncio.Handle, seconds: float) -> None:
        """A callback that ran at least ``threshold`` seconds has returned."""


class Loop(GlueLoop):
    """An asyncio event loop whose ready queue is ordered by a scheduling policy.

    ``policy`` is a name (``"fifo"``, ``"priority"``, ``"fair"``,
    ``"round_robin"``) or a :class:`trilane.Policy` instance, which then
    belongs to this loop alone.  ``clock`` is a :class:`trilane.Clock`; pass a
    :class:`trilane.MockClock` to run timers on virtual time.  ``stats=False``
    turns off the per-callback timing behind :func:`trilane.task_stats` and
    the watchdog under the ``fifo`` policy (it costs 12–15% of a bare task
    switch); policies with a time slice still time their callbacks.

    Everything else is asyncio's ``SelectorEventLoop``: transports, servers,
    subprocesses, SSL, signals and executors all work unchanged.

    If the policy raises, the loop reports it through its exception handler
    (context keys ``message``, ``exception`` and ``policy``) and goes on with
    a ``fifo`` queue holding everything the policy gave back from ``drain()``.
    If ``drain()`` raises too, callbacks were lost, and the next tick raises
    :class:`trilane.PolicyError` out of ``run_forever()`` instead of letting
    their tasks wait forever.
    """

    def __init__(
        self,
        selector: Any = None,
        *,
        policy: Policy[Any] | str = "fifo",
        clock: Clock | None = None,
        stats: bool = True,
    ) -> None:
        self._clock: Clock = MonotonicClock() if clock is None else clock
        self._timed = bool(stats)
        self._ticks = 0
        self._callbacks = 0
        self._lost: BaseException | None = None
        self._block_hook: BlockHook | None = None
        self._slow = math.inf
        # The real clock hands policies time.monotonic itself: one frame less per push.
        clock_fn = time.monotonic if type(self._clock) is MonotonicClock else self._clock.time
        super().__init__(selector, policy, clock_fn)
        if clock_fn is time.monotonic and type(self).time is Loop.time:
            # time() is called once per timer (call_later): on the real clock,
            # make it time.monotonic itself rather than two Python frames.
            self.time = time.monotonic  # type: ignore[method-assign]

    # -- the tick ----------------------------------------------------------------

    def _tick(self) -> None:
        if self._lost is not None:
            exc, self._lost = self._lost, None
            raise PolicyError(
                f"scheduling policy {self._ready.policy!r} failed and lost queued callbacks; "
                "their tasks cannot finish. Fix the policy's drain()."
            ) from exc
        ready = self._ready
        clock = self._clock
        if ready.inbox:
            ready.take_inbox()
        timers = self._timers
        if ready.size() or self._stopping_now():
            timeout: float | None = 0.0
        else:
            deadline = timers.next_deadline() if timers.heap else None
            if deadline is None:
                timeout = None
            else:
                timeout = clock.sleep_time(min(max(0.0, deadline - clock.time()), _MAX_SELECT))
        self._poll(timeout)
        if ready.inbox:
            ready.take_inbox()
        if timers.heap:
            self._move_due_timers(clock.time() + self._clock_resolution_value(), self._now)
        count = ready.size()
        if count > ready.high_water:
            ready.high_water = count
        self._ticks += 1
        if count:
            try:
                self._callbacks += run_batch(
                    self, ready.pop, count, ready.policy.slice, ready.charge, self._slow, self._on_slow, self._timed
                )
            except Exception as exc:  # only the policy's pop() or charge() can raise here
                ready.replace_policy(exc)

    def _on_slow(self, entry: Entry, seconds: float) -> None:
        info = entry[1]
        info.blocked_time += seconds
        hook = self._block_hook
        if hook is not None:
            hook.callback_ended(self, info, entry[0], seconds)

    def _policy_failed(self, exc: BaseException, policy: Policy[Any], complete: bool) -> None:
        self.call_exception_handler(
            {
                "message": f"scheduling policy {policy!r} raised; the loop goes on with the fifo policy",
                "exception": exc,
                "policy": policy,
            }
        )
        if not complete:
            self._lost = exc

    # -- time -----------------------------------------------------------------------

    def time(self) -> float:
        """Return the loop's time, read from its clock."""
        return self._clock.time()

    @property
    def clock(self) -> Clock:
        """The clock this loop reads its time from."""
        return self._clock

    @property
    def policy(self) -> Policy[Any]:
        """The policy that orders this loop's ready queue."""
        return self._ready.policy

    # -- watchdog -----------------------------------------------------------------------

    def set_block_hook(self, hook: BlockHook | None) -> None:
        """Install (or, with ``None``, remove) the watchdog that watches this loop."""
        if hook is not None and not self._timed:
            raise ValueError("a loop made with stats=False times no callback, so no watchdog can watch it")
        self._block_hook = hook
        self._slow = math.inf if hook is None else hook.threshold

    def run_forever(self) -> None:
        hook = self._block_hook
        if hook is not None:
            hook.attach(self)
        try:
            super().run_forever()
        finally:
            if hook is not None:
                hook.detach(self)

    # -- introspection ------------------------------------------------------------------

    def stats(self) -> LoopStats:
        """Return this loop's counters: ticks, callbacks run, and the ready queue's high-water mark."""
        return LoopStats(ticks=self._ticks, callbacks=self._callbacks, ready_high_water=self._ready.high_water)

    def callback_started(self) -> float:
        """Return when (``time.perf_counter()``) the running callback started, or 0.0 while polling.

        Safe to call from any thread: the watchdog reads it as the loop's heartbeat.
        """
        return 0.0 if self._polling else self._now

    def __repr__(self) -> str:
        return (
            f"<trilane.Loop running={self.is_running()} closed={self.is_closed()} "
            f"debug={self.get_debug()} policy={self._ready.policy.name}>"
        )


def new_event_loop(*, policy: Policy[Any] | str = "fifo", clock: Clock | None = None, stats: bool = True) -> Loop:
    """Return a new :class:`Loop`; use it as ``asyncio.Runner(loop_factory=trilane.new_event_loop)``.

    ``stats=False`` skips timing callbacks under the ``fifo`` policy (no run
    or wait times, no watchdog), for about 15% more task switches per second.
    """
    return Loop(policy=policy, clock=clock, stats=stats)


_UNSET: Final[Any] = object()


def _info_of(task: asyncio.Task[Any]) -> TaskInfo:
    info = getattr(task, INFO_ATTR, None)
    if not isinstance(info, TaskInfo):
        info = TaskInfo()
        setattr(task, INFO_ATTR, info)
    return info


def spawn(
    coro: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    priority: int | None = None,
    group: Hashable | None = _UNSET,
) -> asyncio.Task[T]:
    """Start *coro* as a task on the running loop, with a priority and a group.

    Without ``priority`` or ``group``, the task takes its creator's (as every
    task created inside it will take its own).  Policies read them:
    ``priority`` (an ``int``, higher first) under ``priority`` and ``fair``,
    ``group`` under ``round_robin``.  On a loop that is not a trilane
    :class:`Loop` they are recorded but do not change the order.
    """
    loop = asyncio.get_running_loop()
    parent = CURRENT.get(ROOT)
    info = TaskInfo(
        parent.priority if priority is None else check_priority(priority),
        parent.group if group is _UNSET else group,
    )
    task: asyncio.Task[T]
    if isinstance(loop, Loop):
        loop._spawn_info = info
        try:
            task = loop.create_task(coro, name=name)
        finally:
            loop._spawn_info = None
        if getattr(task, INFO_ATTR, None) is not info:
            # A task factory made something whose first step was not a task step.
            setattr(task, INFO_ATTR, info)
    else:
        task = loop.create_task(coro, name=name)
        setattr(task, INFO_ATTR, info)
    return task


def set_priority(
    priority: int | None = None, *, group: Hashable | None = _UNSET, task: asyncio.Task[Any] | None = None
) -> None:
    """Change the priority and/or group of *task* (default: the current task).

    Work the task already queued keeps its place; its next steps use the new values.
    """
    if task is None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("set_priority() without task= must be called from inside a task")
    info = _info_of(task)
    if priority is not None:
        info.priority = check_priority(priority)
    if group is not _UNSET:
        info.group = group


def task_stats(task: asyncio.Task[Any] | None = None) -> TaskStats:
    """Return how *task* (default: the current task) has spent its time on a trilane loop."""
    if task is None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("task_stats() without a task must be called from inside a task")
    info = _info_of(task)
    info.name = task.get_name()
    return info.snapshot()
