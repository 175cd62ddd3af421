"""ThreadPool: worker threads fed by a scheduling policy, with timeouts.

::

    submit ──> policy (under the pool lock) ──> idle worker thread ──> fn(*args)
                                                      │
    deadline monitor (one thread, only once a task has a timeout)
        at a task's deadline: the future fails with TaskTimeout, the thread
        is marked *lost* (it cannot be killed) and a replacement is started,
        so the pool keeps its capacity.  A lost thread exits when its call
        returns; its result is thrown away.

Guarantees:

* A waiting task is popped by exactly one thread; the policy is only touched
  with ``_lock`` held.
* Futures are settled outside the lock, so a done-callback may submit more
  work to the same pool.
* ``shutdown(wait=True)`` joins the live workers but never a lost thread: it
  logs how many are still running instead of hanging on them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .._core._errors import PoolShutdown, TaskTimeout
from .._core._policies import Policy
from ._base import PoolBase, PoolFuture, Task, settle
from ._options import TaskOptions

__all__ = ["ThreadPool"]

logger = logging.getLogger("trilane.pools")


class _Slot:
    """One worker thread and what it runs."""

    __slots__ = ("lost", "task", "thread")

    def __init__(self) -> None:
        self.task: Task | None = None
        self.lost = False
        self.thread: threading.Thread | None = None


class ThreadPool(PoolBase):
    """A ``concurrent.futures.Executor`` of threads, ordered by a scheduling policy.

    ``workers`` defaults to ``min(32, cpu_count + 4)`` like ``ThreadPoolExecutor``.
    Use :meth:`submit_with` to pass a :class:`~trilane.TaskOptions` (priority,
    group, timeout).  A task past its timeout fails with
    :class:`~trilane.TaskTimeout`; its thread is counted in :attr:`lost_threads`
    and replaced.
    """

    def __init__(
        self, workers: int | None = None, *, policy: str | Policy[Any] = "fifo", name: str = "trilane-thread"
    ) -> None:
        if workers is None:
            workers = min(32, (os.cpu_count() or 1) + 4)
        super().__init__(workers, policy)
        self._name = name
        self._work = threading.Condition(self._lock)
        self._slots: set[_Slot] = set()  # live (not lost) worker threads
        self._idle = 0
        self._lost_total = 0
        self._lost_running: set[_Slot] = set()
        self._deadlines: list[tuple[float, int, _Slot, Task]] = []
        self._seq = itertools.count()
        self._monitor: threading.Thread | None = None
        self._monitor_wake = threading.Condition(self._lock)
        self._thread_ids = itertools.count()

    @property
    def lost_threads(self) -> int:
        """How many threads were abandoned because a task ran past its timeout."""
        return self._lost_total

    @property
    def lost_threads_running(self) -> int:
        """How many abandoned threads are still running their call."""
        with self._lock:
            return len(self._lost_running)

    def _submit(
        self,
        options: TaskOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        desc: str | None,
        ahead: bool = False,  # threads share one queue: nothing to send ahead
    ) -> PoolFuture[Any]:
        self._check_fn(fn)
        fut: PoolFuture[Any] = PoolFuture()
        task = Task(fn, args, kwargs, options, fut, desc)
        with self._lock:
            if self._shutdown:
                raise PoolShutdown(f"cannot submit {task.describe()}: the ThreadPool {self._name!r} is shut down")
            self._policy.push(task, task.owner)
            if self._idle:
                self._work.notify()
            if len(self._policy) > self._idle and len(self._slots) < self._max_workers:
                self._start_thread_locked()
        return fut

    def _start_thread_locked(self) -> None:
        slot = _Slot()
        t = threading.Thread(
            target=self._worker, args=(slot,), name=f"{self._name}-{next(self._thread_ids)}", daemon=True
        )
        slot.thread = t
        self._slots.add(slot)
        t.start()

    def _worker(self, slot: _Slot) -> None:
        lock = self._lock
        policy = self._policy
        while True:
            with lock:
                while not len(policy):
                    if self._shutdown:
                        self._slots.discard(slot)
                        return
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
                task = policy.pop()
                fut = task.future
                if not fut.set_running_or_notify_cancel():
                    continue
                task.started = True
                task.started_at = time.monotonic()
                slot.task = task
                if task.options.timeout is not None:
                    task.deadline = task.started_at + task.options.timeout
                    heapq.heappush(self._deadlines, (task.deadline, next(self._seq), slot, task))
                    self._ensure_monitor_locked()
            t0 = time.perf_counter()
            try:
                result = task.fn(*task.args, **task.kwargs)
                exc: BaseException | None = None
            except BaseException as e:
                result, exc = None, e
            ran = time.perf_counter() - t0
            with lock:
                slot.task = None
                self._charge(task, ran)
                lost = slot.lost
                if lost:
                    self._lost_running.discard(slot)
            if lost:
                # The monitor already failed this future and replaced us.
                del result, exc
                return
            settle(fut, result, exc)
            del result, exc, task, fut

    # -- timeouts ----------------------------------------------------------------
    def _ensure_monitor_locked(self) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name=f"{self._name}-deadlines", daemon=True)
            self._monitor.start()
        else:
            self._monitor_wake.notify()

    def _watch(self) -> None:
        while True:
            expired: list[Task] = []
            with self._lock:
                while True:
                    now = time.monotonic()
                    while self._deadlines and (
                        self._deadlines[0][2].task is not self._deadlines[0][3] or self._deadlines[0][0] <= now
                    ):
                        _, _, slot, task = heapq.heappop(self._deadlines)
                        if slot.task is task and not slot.lost:
                            # Abandon the thread: it cannot be stopped from outside.
                            slot.lost = True
                            self._slots.discard(slot)
                            self._lost_running.add(slot)
                            self._lost_total += 1
                            expired.append(task)
                            if not self._shutdown:
                                self._start_thread_locked()
                    if expired:
                        break
                    if self._shutdown and not self._deadlines:
                        self._monitor = None
                        return
                    delay = self._deadlines[0][0] - now if self._deadlines else None
                    self._monitor_wake.wait(delay)
            for task in expired:
                settle(
                    task.future,
                    exc=TaskTimeout(
                        task.describe(),
                        task.options.timeout or 0.0,
                        "a thread cannot be killed, so it keeps running in the background and is counted "
                        "in pool.lost_threads; a replacement thread took its place. Make the call honour a "
                        "timeout of its own, or use ProcessPool to have the work killed.",
                    ),
                )

    # -- lifetime ----------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work and (if *wait*) wait for live workers to finish.

        ``cancel_futures=True`` cancels tasks that have not started.  Running
        calls cannot be interrupted; lost threads (past their timeout) are not
        waited for, and a warning on the ``trilane.pools`` logger says how many
        are still running.
        """
        cancelled: list[Task] = []
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                cancelled = list(self._policy.drain())
            self._work.notify_all()
            self._monitor_wake.notify_all()
            threads = [s.thread for s in self._slots if s.thread is not None]
            monitor = self._monitor
        for task in cancelled:
            task.future.cancel()
        if wait:
            me = threading.current_thread()
            for t in threads:
                if t is not me:
                    t.join()
            if monitor is not None and monitor is not me:
                monitor.join()
        with self._lock:
            lost = len(self._lost_running)
        if lost:
            logger.warning(
                "ThreadPool %r shut down with %d lost thread(s) still running calls that passed their "
                "timeout; they will exit when those calls return.",
                self._name,
                lost,
            )

    def __repr__(self) -> str:
        return (
            f"<ThreadPool {self._name!r} workers={self._max_workers} threads={len(self._slots)} "
            f"queued={len(self._policy)} lost={self._lost_total}{' shutdown' if self._shutdown else ''}>"
        )
