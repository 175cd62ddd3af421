"""What both pools share: the task record, the future, submit and the executor face.

::

    submit(fn, *a)  ─┐                         ┌─> ThreadPool: worker threads pop
    submit_with(o,…) ├─> _Task ─> policy.push ─┤
    map(fn, items)  ─┘   (chunks)   (one lock) └─> ProcessPool: manager thread pops,
                                                    sends to an idle worker process

A pool's queue of waiting tasks is a scheduling policy from ``trilane._core``
(``fifo``, ``priority``, ``fair``, ``round_robin`` or a user's own), guarded by
the pool's lock.  Each task owns a :class:`~trilane.TaskInfo` (priority,
group, name) and its run time is charged to the policy where its result
returns.

Futures are ``concurrent.futures.Future`` subclasses (:class:`PoolFuture`),
so ``wait``, ``as_completed``, ``asyncio.wrap_future`` and
``loop.run_in_executor`` all work.  A process pool's future can also be
cancelled while it runs: the pool kills the worker and replaces it.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures._base import (  # the Future state machine, stable since 3.2
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    RUNNING,
)
from types import TracebackType
from typing import Any, TypeVar

from .._core._policies import Policy, make_policy
from .._core._stats import TaskInfo
from ._options import DEFAULT_OPTIONS, TaskOptions, describe_call

__all__ = ["PoolBase", "PoolFuture", "Task", "settle"]

T = TypeVar("T")

_ids = itertools.count(1)


class PoolFuture(Future[T]):
    """A ``concurrent.futures.Future`` from a trilane pool.

    ``worker_pid`` is the pid of the process worker running the task (set when
    it starts; ``None`` for thread pools and for tasks that have not started).
    """

    worker_pid: int | None

    def __init__(self) -> None:
        super().__init__()
        self.worker_pid = None
        self._cancel_running: Callable[[PoolFuture[Any]], bool] | None = None
        self._direct_wait: Callable[[PoolFuture[Any], float | None], None] | None = None
        # A weak reference to the pool's Task record, for cancel(): a strong one
        # would make a future<->task cycle that only the GC frees (and a long
        # map would hold every chunk's data until it ran).
        self._pool_task: Callable[[], Any] | None = None

    def result(self, timeout: float | None = None) -> T:
        """Return the result, waiting up to *timeout* seconds (see ``Future.result``)."""
        if self._direct_wait is not None and self._state == RUNNING:
            self._direct_wait(self, timeout)
        # FINISHED is final and set after _result/_exception (under the
        # condition), so a plain read is safe: no lock for the common case.
        if self._state == FINISHED and self._exception is None:
            return self._result  # type: ignore[return-value]
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Return the exception, waiting up to *timeout* seconds (see ``Future.exception``)."""
        if self._direct_wait is not None and self._state == RUNNING:
            self._direct_wait(self, timeout)
        return super().exception(timeout)

    def cancel(self) -> bool:
        """Cancel the task; a *running* process task is stopped by killing its worker."""
        hook = self._cancel_running
        if hook is not None and self._state == RUNNING and hook(self):
            return self._force_cancel()
        return super().cancel()

    def _force_cancel(self) -> bool:
        # Future.cancel() refuses RUNNING futures; the pool has stopped the work,
        # so end the future cancelled and tell wait()/as_completed() waiters.
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            if self._state == FINISHED:
                return False
            self._state = CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private but stable since 3.2
        return True


def settle(fut: Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Finish *fut* unless it already ended (cancelled or timed out meanwhile)."""
    try:
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
    except Exception:  # InvalidStateError: it was cancelled a moment ago
        pass


class Task:
    """One queued unit of work (a call, or a chunk of a map)."""

    __slots__ = (
        "__weakref__",
        "ahead",
        "args",
        "attempts",
        "crashes",
        "deadline",
        "desc",
        "fn",
        "future",
        "id",
        "killed",
        "kwargs",
        "options",
        "owner",
        "packed",
        "queued_at",
        "started",
        "started_at",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        future: PoolFuture[Any],
        desc: str | None = None,
    ) -> None:
        self.id = next(_ids)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.future = future
        self.desc = desc
        self.owner = TaskInfo(options.priority, options.group, options.name or "")
        self.packed: Any = None
        self.ahead = False  # may be queued behind a running task (ProcessPool map chunks)
        self.attempts = 1
        self.crashes = 0
        self.deadline: float | None = None
        self.killed = False
        self.started = False
        self.queued_at = time.monotonic()
        self.started_at = 0.0

    def describe(self) -> str:
        """A short name for error messages (computed once, only when needed)."""
        if self.desc is None:
            self.desc = describe_call(self.fn, self.args, self.kwargs, self.options.name)
        return self.desc


_live_pools: weakref.WeakSet[PoolBase] = weakref.WeakSet()
_exit_hook_registered = False


def _register_exit_hook() -> None:
    # Registered when the first pool is made, so it runs *before*
    # multiprocessing's own exit hook (atexit is last-in, first-out), which
    # would otherwise join our idle worker processes forever.
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(_shutdown_at_exit)


def _shutdown_at_exit() -> None:
    # The program is ending: nobody can read the results any more, so stop
    # the work rather than hang on it (and leave no orphan processes).
    for pool in list(_live_pools):
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except Exception:  # pragma: no cover - best effort at exit
            pass


class PoolBase(Executor):
    """The executor face and the policy-ordered queue shared by both pools."""

    _max_workers: int

    def __init__(self, workers: int, policy: str | Policy[Any]) -> None:
        if type(workers) is not int or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self._max_workers = workers
        self._policy: Policy[Task] = make_policy(policy)
        self._policy.bind(time.monotonic)
        self._lock = threading.Lock()
        self._shutdown = False
        _register_exit_hook()
        _live_pools.add(self)

    @property
    def workers(self) -> int:
        """The number of workers the pool keeps."""
        return self._max_workers

    @property
    def policy(self) -> Policy[Any]:
        """The scheduling policy that orders the queue of waiting tasks."""
        return self._policy

    # -- submitting ----------------------------------------------------------
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> PoolFuture[T]:
        """Schedule ``fn(*args, **kwargs)`` with default options; return its future."""
        return self._submit(DEFAULT_OPTIONS, fn, args, kwargs, None)

    def submit_with(self, options: TaskOptions, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> PoolFuture[T]:
        """Schedule ``fn(*args, **kwargs)`` with per-task *options* (priority, group, timeout, ...)."""
        if not isinstance(options, TaskOptions):
            raise TypeError(f"options must be a trilane.TaskOptions, got {options!r}")
        return self._submit(options, fn, args, kwargs, None)

    def _submit(
        self,
        options: TaskOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        desc: str | None,
        ahead: bool = False,
    ) -> PoolFuture[Any]:
        """Queue one call.  *ahead*: a short map chunk, which a process pool may
        send to a busy worker to run next (see ``ProcessPool._dispatch_locked``)."""
        raise NotImplementedError

    def _check_fn(self, fn: Callable[..., Any]) -> None:
        """Raise early if *fn* cannot be run by this pool (a process pool pickles it)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")

    def _charge(self, task: Task, ran: float) -> None:
        # Called with the lock held, where a result returns.
        task.owner.charge(ran, max(0.0, task.started_at - task.queued_at))
        self._policy.charge(task.owner, ran)

    # -- map -------------------------------------------------------------------
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        chunksize: int | str = "auto",
        ordered: bool = True,
        timeout: float | None = None,
        buffersize: int | None = None,
        options: TaskOptions | None = None,
    ) -> Iterator[T]:
        """Lazily map *fn* over *iterables*; see :func:`trilane._pools._map.lazy_map`."""
        from ._map import lazy_map

        return lazy_map(
            self,
            fn,
            iterables,
            chunksize=chunksize,
            ordered=ordered,
            timeout=timeout,
            buffersize=buffersize,
            options=options or DEFAULT_OPTIONS,
        )

    # -- lifetime --------------------------------------------------------------
    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Ctrl-C (or SystemExit) inside the block: stop now instead of waiting
        # for the queue to drain.
        interrupted = exc_type is not None and not issubclass(exc_type, Exception)
        self.shutdown(wait=True, cancel_futures=interrupted)
        return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; see the subclass for what happens to running tasks."""
        raise NotImplementedError
