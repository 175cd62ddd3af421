"""ProcessPool: supervised worker processes, fed by a scheduling policy.

::

    submit() ── pickle here (NotPicklable here) ── policy.push ── dispatch ──> idle worker
                                                  (under the lock, by whichever thread got there)

    manager thread: one epoll set of worker pipes (results, READY, RETIRE), process
    sentinels (a worker died) and a wake pipe (deadline, cancel, shutdown); its timeout
    is the next task deadline or SIGKILL.

A caller that blocks in ``result()`` reads its worker's pipe itself, with the
pipe taken out of the manager's set (:meth:`ProcessPool._direct_wait`): a
hand-off from the manager thread costs as much as the pipe round trip.
Everything else (crashes, deadlines, spawning, reaping) is the manager's.
Each worker runs one task at a time on its own duplex pipe, so when a worker
dies the pool knows which task it held:

* that task alone fails with ``WorkerCrashed`` (pid, exit code or signal,
  item), or is queued again if ``TaskOptions.retries`` allows;
* a task (or an identical call submitted again) that has killed
  ``max_crashes`` workers fails with ``Quarantined`` and is not run again;
* the worker is replaced at once and the pool keeps serving.

Stopping work: a task past ``TaskOptions.timeout``, a running future that is
``cancel()``-ed, and ``shutdown(cancel_futures=True)`` send SIGTERM to the
worker and SIGKILL ``term_grace`` seconds later.  The future ends at once
(TaskTimeout, or cancelled); a replacement starts while the old worker is
reaped in the background.

``max_tasks_per_worker``: a worker flags its last result as RETIRE and exits;
the manager never sends work to a retiring worker, which is what makes a
backlog finish (cpython#115634 deadlocked here).  The start method defaults
to ``forkserver`` (see :mod:`._worker_state` and docs/pools.md).
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.util  # its exit hook must be registered before ours (see _base)
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .._core._errors import PoolShutdown, Quarantined, TaskTimeout, WorkerCrashed, describe_exit
from .._core._policies import Policy
from . import _wire
from ._base import PoolBase, PoolFuture, Task, settle
from ._direct import PipeClaims
from ._options import TaskOptions
from ._poller import Poller as _Poller
from ._worker import worker_main
from ._worker_state import (
    BUSY,
    DYING,
    IDLE,
    MANAGER,
    RETIRING,
    STARTING,
    STOPPING,
    Worker,
    default_start_method,
    digest,
    fits_ahead,
)

__all__ = ["ProcessPool", "default_start_method"]

_MAX_START_FAILURES = 3
#: SIGTERM-to-SIGKILL grace used by shutdown(cancel_futures=True) and Ctrl-C.
SHUTDOWN_GRACE = 0.25
#: A worker that was told to stop and is still alive this long after is killed.
STOP_TIMEOUT = 5.0


class ProcessPool(PipeClaims, PoolBase):
    """A ``concurrent.futures.Executor`` of supervised worker processes.

    ``workers`` defaults to ``os.cpu_count()``.  ``start_method`` is
    ``"forkserver"`` on Linux unless given.  Workers are started when the
    first task is submitted.  See the module docstring (and docs/pools.md)
    for crash handling, timeouts, cancellation and shutdown.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        policy: str | Policy[Any] = "fifo",
        start_method: str | None = None,
        max_tasks_per_worker: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_crashes: int = 3,
        term_grace: float = 1.0,
    ) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        super().__init__(workers, policy)
        if max_tasks_per_worker is not None and (type(max_tasks_per_worker) is not int or max_tasks_per_worker < 1):
            raise ValueError(f"max_tasks_per_worker must be None or an int >= 1, got {max_tasks_per_worker!r}")
        if type(max_crashes) is not int or max_crashes < 1:
            raise ValueError(f"max_crashes must be an int >= 1, got {max_crashes!r}")
        if not term_grace >= 0:
            raise ValueError(f"term_grace must be >= 0 seconds, got {term_grace!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, got {initializer!r}")
        self.start_method = start_method or default_start_method()
        self._ctx = multiprocessing.get_context(self.start_method)
        self._max_tasks = max_tasks_per_worker
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._max_crashes = max_crashes
        self._term_grace = float(term_grace)
        self._workers: dict[int, Worker] = {}  # keyed by id(worker)
        self._idle: deque[Worker] = deque()
        self._manager: threading.Thread | None = None
        self._poller: _Poller | None = None
        self._deferred_exits: list[Worker] = []
        self._held: Task | None = None  # popped from the policy, waiting for a worker
        self._housekeep = False
        self._wake_r, self._wake_w = -1, -1
        self._broken: str | None = None
        # Workers in a row that died before they were ready: past _MAX_START_FAILURES
        # the pool is broken, rather than starting doomed workers forever.
        self._start_failures = 0
        self._crashes: dict[bytes, int] = {}  # digest of a call -> workers it killed
        self._cancel_grace = self._term_grace
        self.crashed_workers = 0
        self._count = itertools.count(1)

    # -- submitting --------------------------------------------------------------
    def _check_fn(self, fn: Callable[..., Any]) -> None:
        super()._check_fn(fn)
        _wire.dumps_call(fn, (), {}, lambda: "map")

    def _submit(
        self,
        options: TaskOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        desc: str | None,
        ahead: bool = False,
    ) -> PoolFuture[Any]:
        fut: PoolFuture[Any] = PoolFuture()
        task = Task(fn, args, kwargs, options, fut, desc)
        if self._shutdown:
            raise PoolShutdown(f"cannot submit {task.describe()}: {self._broken or 'the ProcessPool is shut down'}")
        task.packed = _wire.dumps_call(fn, args, kwargs, task.describe)
        task.ahead = ahead and options.timeout is None
        fut._cancel_running = self._cancel_running
        fut._direct_wait = self._direct_wait
        fut._pool_task = weakref.ref(task)
        with self._lock:
            if self._shutdown:
                raise PoolShutdown(f"cannot submit {task.describe()}: {self._broken or 'the ProcessPool is shut down'}")
            crashes = self._crashes.get(digest(task), 0) if self._crashes else 0
            if crashes >= self._max_crashes:
                fut.set_exception(Quarantined(task.describe(), None, None, crashes))
                return fut
            self._policy.push(task, task.owner)
            if self._manager is None:
                self._start_manager_locked()
                return fut
            claimed = self._dispatch_locked(own=task)
        if claimed is not None:
            self._after_own_send(claimed)
        return fut

    def _start_manager_locked(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._manager = threading.Thread(target=self._manage, name="trilane-process-manager", daemon=True)
        self._manager.start()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or closed at shutdown

    def _dispatch_locked(self, own: Task | None = None) -> Worker | None:
        """Send queued tasks to idle workers, then one more to each busy one.

        Called with the lock held.  The second task (``w.next``) waits in the
        worker's socket buffer, so the worker starts it the moment it sends
        the first reply instead of idling for a round trip through the
        parent.  Only map chunks that the map expects to be short are sent
        ahead (``Task.ahead``; a long one would hold its items behind the
        running chunk while another worker may free up first), only if they
        fit the socket buffer (or the send would block under the lock), and
        never past ``max_tasks_per_worker``.

        ``submit()`` passes its task as *own*: if that task goes to an idle
        worker, the calling thread claims the worker's pipe (muted from the
        manager) before sending, and gets the worker back to finish the claim
        (:meth:`_after_own_send`).
        """
        claimed: Worker | None = None
        poller = self._poller
        policy = self._policy
        while self._held is not None or len(policy):
            task = self._held or policy.pop()
            self._held = None
            if task.killed:
                continue  # cancelled while it waited for another attempt
            w = self._idle.popleft() if self._idle else self._ahead_candidate(task)
            if w is None:
                self._held = task  # next in line; it goes to the next free worker
                return claimed
            fut = task.future
            if not task.started:
                if not fut.set_running_or_notify_cancel():
                    if w.state == IDLE:
                        self._idle.appendleft(w)
                    continue
                task.started = True
            claim = (
                task is own
                and w.state == IDLE
                and w.reader is None
                and w.conn is not None
                and poller is not None
                and poller.can_mute
            )
            try:
                if w.conn is None:
                    raise OSError("the worker's pipe is closed")
                if claim:
                    assert poller is not None
                    w.reader = threading.get_ident()
                    poller.mute(w.conn.fileno())
                _wire.send_frame(w.conn, _wire.TASK, task.id, task.packed)
            except (OSError, ValueError):
                # It died meanwhile; its sentinel will fire and report the task
                # it was running.  Never pick it again (or this loop would spin
                # on the broken pipe), and requeue the task we could not send.
                if claim:
                    w.reader = None
                    self._watch_locked(w)
                w.state = DYING
                policy.push(task, task.owner)
                continue
            if claim:
                claimed = w
            elif w.reader is None:
                self._watch_locked(w)  # its reply is the manager's to read
            w.sent += 1
            fut.worker_pid = w.pid
            if w.state == BUSY:
                w.next = task  # starts when the current task's reply arrives
            else:
                w.state = BUSY
                self._start_locked(w, task)
        return claimed

    def _queued(self) -> int:
        return len(self._policy) + (self._held is not None)

    def _drain_locked(self) -> list[Task]:
        tasks = [] if self._held is None else [self._held]
        self._held = None
        tasks += self._policy.drain()
        return tasks

    def _ahead_candidate(self, task: Task) -> Worker | None:
        # Only short map chunks queue behind a running task, and only while no
        # worker is starting: a call sent ahead could wait behind a long call
        # while a fresh worker sits idle.
        if not task.ahead or not fits_ahead(task):
            return None
        if any(w.state == STARTING for w in self._workers.values()):
            return None
        for w in self._workers.values():
            if (
                w.state == BUSY
                and w.conn is not None
                and w.next is None
                and w.task is not None
                and (self._max_tasks is None or w.sent < self._max_tasks)
            ):
                return w
        return None

    def _start_locked(self, w: Worker, task: Task) -> None:
        w.task = task
        task.started_at = time.monotonic()
        if task.options.timeout is not None:
            task.deadline = task.started_at + task.options.timeout
            self._wake()

    # -- stopping running work -----------------------------------------------------
    def _cancel_running(self, fut: PoolFuture[Any]) -> bool:
        with self._lock:
            for w in self._workers.values():
                if w.state == BUSY and w.task is not None and w.task.future is fut:
                    self._kill_locked(w, self._cancel_grace)
                    self._wake()
                    return True
                if w.next is not None and w.next.future is fut:
                    w.next.killed = True  # not started yet: its reply will be dropped
                    return True
            task = fut._pool_task() if fut._pool_task is not None else None
            if task is not None and task.started and not task.killed and not fut.done():
                task.killed = True  # queued again (a retry, or sent back unstarted): never run it
                return True
        return False

    def _kill_locked(self, w: Worker, grace: float) -> None:
        if w.task is not None:
            w.task.killed = True
        if w.next is not None:
            # Sent ahead but never started: it goes back to the queue, unblamed.
            if not w.next.killed:
                self._policy.push(w.next, w.next.owner)
            w.next = None
        if w in self._idle:
            self._idle.remove(w)
        w.state = DYING
        w.kill_at = time.monotonic() + grace
        try:
            os.kill(w.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    # -- the manager thread ----------------------------------------------------------
    def _manage(self) -> None:
        # One epoll set for the pool's life: worker pipes and sentinels are
        # registered when a worker starts and removed when it is reaped (both
        # here, in this thread), so each turn costs one epoll_wait.
        poller = self._poller = _Poller()
        poller.add(self._wake_r, None)
        try:
            self._spawn_missing()
            while True:
                with self._lock:
                    if self._shutdown and not self._workers and not self._queued():
                        return
                    timeout = self._next_timeout_locked()
                    if self._deferred_exits:
                        timeout = 0.002 if timeout is None else min(timeout, 0.002)
                    exits = self._deferred_exits
                    self._deferred_exits = []
                due = None if timeout is None else time.monotonic() + timeout
                ready = poller.wait(timeout)
                # Housekeeping (deadlines, spawning) only when something asked
                # for it: a plain result goes straight back to waiting.
                housekeep = not ready or (due is not None and time.monotonic() >= due)
                for data in ready:
                    if data is None:
                        housekeep = True
                        try:
                            while os.read(self._wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    what, w = data
                    if what == "conn":
                        self._on_message(w, MANAGER)
                    elif w not in exits:
                        exits.append(w)
                for w in exits:  # after the messages: a RETIRE result precedes the exit
                    self._on_exit(w)
                if housekeep or exits or self._housekeep:
                    self._housekeep = False
                    self._on_clock()
                    self._spawn_missing()
        except BaseException as exc:
            # Should not happen (a bug, or workers that cannot start at all):
            # fail every waiting future instead of leaving them hanging.
            self._fail_everything(exc)
            raise
        finally:
            self._close_all()

    def _fail_everything(self, exc: BaseException) -> None:
        with self._lock:
            self._broken = f"the pool's manager thread failed: {exc!r}"
            self._shutdown = True
            tasks = self._drain_locked()
            tasks += [w.task for w in self._workers.values() if w.task is not None]
            tasks += [w.next for w in self._workers.values() if w.next is not None]
        for task in tasks:
            if task.started or task.future.set_running_or_notify_cancel():
                settle(task.future, exc=PoolShutdown(f"{task.describe()} was lost: {self._broken}"))

    def _next_timeout_locked(self) -> float | None:
        soonest: float | None = None
        for w in self._workers.values():
            for t in (
                w.task.deadline if (w.state == BUSY and w.task is not None) else None,
                w.kill_at,
                w.stop_at,
            ):
                if t is not None and (soonest is None or t < soonest):
                    soonest = t
        if soonest is None:
            return None
        return max(0.0, soonest - time.monotonic())

    def _handle(self, w: Worker, kind: int, ident: int, data: memoryview, buffers: list[Any]) -> None:
        """Act on one message from *w*, whose pipe the calling thread has claimed.

        The claim (``w.reader``) is released in the same locked section that
        records the reply (``w.task = None``), so a thread that sees
        ``w.task is task and w.reader is None`` knows the reply is still unread.
        """
        if kind != _wire.OK:
            self._housekeep = True  # a worker became ready, retires, or failed to start
        if kind == _wire.READY:
            with self._lock:
                w.reader = None
                if w.state == STARTING:
                    w.state = IDLE
                    w.started = True
                    self._start_failures = 0
                    self._idle.append(w)
                    self._dispatch_locked()
                    self._stop_idle_if_done_locked()
            return
        if kind == _wire.INIT_ERROR:
            self._release(w)
            err = _wire.loads(data, buffers)
            self._on_init_error(err.rebuild())
            return
        # Give the worker its next task first, then decode this result:
        # the worker computes while we unpickle.
        with self._lock:
            w.reader = None
            task = w.task
            if task is None or task.id != ident:
                if task is not None:
                    self._watch_locked(w)
                return  # a result from a worker we already gave up on
            w.task = None
            self._charge(task, time.monotonic() - task.started_at)
            if w.state == DYING:
                # Being killed, or its pipe broke: it gets no more work, but a
                # reply it finished before that still counts (unless we killed
                # the task, whose future has already ended).
                if w.next is not None and not w.next.killed:
                    w.task, w.next = w.next, None  # on_exit re-queues or reports it
            elif kind in (_wire.OK_RETIRE, _wire.ERR_RETIRE):
                w.state = RETIRING
            elif w.next is not None:
                nxt, w.next = w.next, None
                self._start_locked(w, nxt)
            else:
                w.state = IDLE
                self._idle.append(w)
            if w.task is not None:
                self._watch_locked(w)  # a task sent ahead runs now, and a direct reader muted the pipe
            self._dispatch_locked()
            self._stop_idle_if_done_locked()
        if task.killed:
            return  # its future already ended (timeout, cancel): drop the reply
        result: Any = None
        exc: BaseException | None = None
        try:
            value = _wire.loads(data, buffers)
        except Exception as e:
            exc = e
        else:
            if kind in (_wire.ERR, _wire.ERR_RETIRE):
                exc = value.rebuild() if isinstance(value, _wire.RemoteError) else value
            else:
                result = value
        del data, buffers
        settle(task.future, result, exc)

    def _forget_conn_locked(self, w: Worker) -> None:
        if w.conn is None:
            return
        # Its pipe hit EOF: the process is exiting.  Send it nothing more.
        if w in self._idle:
            self._idle.remove(w)
        if w.state in (STARTING, IDLE):
            w.state = DYING
        if self._poller is not None:
            self._poller.remove(w.conn.fileno())
        w.conn.close()
        w.conn = None

    def _on_exit(self, w: Worker) -> None:
        with self._lock:
            if w.reader is not None:
                # A caller is reading its pipe right now: come back shortly.
                self._deferred_exits.append(w)
                return
        # Read what it sent before it died (a RETIRE result, say) first.
        while w.conn is not None:
            try:
                if not w.conn.poll():
                    break
            except (EOFError, OSError):
                break
            self._on_message(w, MANAGER)
        w.proc.join(1.0)
        code = w.proc.exitcode
        failed: list[tuple[Task, BaseException]] = []
        if not w.started and not self._shutdown:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self._on_start_failure(w.pid, code)
        with self._lock:
            self._workers.pop(id(w), None)
            if w in self._idle:
                self._idle.remove(w)
            task, w.task = w.task, None
            nxt, w.next = w.next, None
            if nxt is not None and not nxt.killed:
                self._policy.push(nxt, nxt.owner)  # never started: not its fault
            if task is not None and not task.killed:
                self.crashed_workers += 1
                task.crashes += 1
                key = digest(task)
                self._crashes[key] = self._crashes.get(key, 0) + 1
                if task.crashes >= self._max_crashes:
                    failed.append((task, Quarantined(task.describe(), w.pid, code, task.crashes)))
                elif task.attempts <= task.options.retries and not self._shutdown:
                    task.attempts += 1
                    self._policy.push(task, task.owner)
                else:
                    failed.append((task, WorkerCrashed(task.describe(), w.pid, code, task.attempts)))
        with self._lock:
            self._forget_conn_locked(w)
            if self._poller is not None:
                self._poller.remove(w.proc.sentinel)
        try:
            w.proc.close()
        except ValueError:  # still running after join(1.0): cannot happen once the sentinel fired
            pass
        for task, exc in failed:
            settle(task.future, exc=exc)

    def _on_clock(self) -> None:
        now = time.monotonic()
        expired: list[Task] = []
        with self._lock:
            for w in list(self._workers.values()):
                task = w.task
                if w.state == BUSY and task is not None and task.deadline is not None and task.deadline <= now:
                    self._kill_locked(w, self._term_grace)
                    expired.append(task)
                elif w.kill_at is not None and w.kill_at <= now:
                    w.kill_at = None
                    try:
                        os.kill(w.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                elif w.stop_at is not None and w.stop_at <= now:
                    w.stop_at = None
                    self._kill_locked(w, 0.0)
        for task in expired:
            settle(
                task.future,
                exc=TaskTimeout(
                    task.describe(),
                    task.options.timeout or 0.0,
                    f"its worker was terminated (SIGTERM, then SIGKILL after {self._term_grace:g} s) "
                    "and replaced. Raise the timeout if the work needs longer.",
                ),
            )

    def _on_start_failure(self, pid: int | None, code: int | None) -> None:
        method = self._ctx.get_start_method()
        hint = (
            f"With the {method!r} start method each worker imports the main module again: run the program "
            "from a file whose top level is guarded by `if __name__ == '__main__':` (not from stdin or "
            "`python -c`), and make sure it imports cleanly."
            if method != "fork"
            else "Check the worker's stderr for the reason."
        )
        self._on_init_error(
            PoolShutdown(
                f"{_MAX_START_FAILURES} worker processes in a row died while starting (last: pid {pid}, "
                f"{describe_exit(code)}), so the ProcessPool gave up. {hint}"
            )
        )

    def _on_init_error(self, exc: BaseException) -> None:
        with self._lock:
            self._broken = f"the pool's initializer failed in a worker: {exc!r}"
            pending = self._drain_locked()
            self._shutdown = True
            for w in self._workers.values():
                if w.state in (IDLE, STARTING):
                    self._kill_locked(w, 0.0)
        for task in pending:
            if task.started or task.future.set_running_or_notify_cancel():
                settle(task.future, exc=exc)

    def _stop_idle_if_done_locked(self) -> None:
        if not self._shutdown or self._queued():
            return
        for w in list(self._idle):
            assert w.conn is not None
            try:
                _wire.send_frame(w.conn, _wire.STOP, 0)
            except (OSError, ValueError):
                pass
            w.state = STOPPING
            w.stop_at = time.monotonic() + STOP_TIMEOUT
        self._idle.clear()

    def _spawn_missing(self) -> None:
        while True:
            with self._lock:
                self._stop_idle_if_done_locked()
                live = sum(1 for w in self._workers.values() if w.state in (STARTING, IDLE, BUSY))
                # After shutdown(), queued work still needs workers to run on.
                if live >= self._max_workers or (self._shutdown and (self._broken or not self._queued())):
                    return
            self._spawn_one()

    def _spawn_one(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(child_conn, os.getpid(), self._initializer, self._initargs, self._max_tasks),
            name=f"trilane-worker-{next(self._count)}",
        )
        try:
            proc.start()
        finally:
            child_conn.close()
        w = Worker(proc, parent_conn)
        with self._lock:
            assert self._poller is not None
            self._poller.add(parent_conn.fileno(), ("conn", w))
            self._poller.add(proc.sentinel, ("exit", w))
            self._workers[id(w)] = w

    def _close_all(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._idle.clear()
            wake_r, wake_w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = -1
        for w in workers:  # only after an unexpected error in the manager
            try:
                os.kill(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            w.proc.join()
            w.proc.close()
            if w.conn is not None:
                w.conn.close()
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        for fd in (wake_r, wake_w):
            if fd >= 0:
                os.close(fd)

    # -- lifetime ------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work.

        Without ``cancel_futures`` queued and running tasks finish first.  With
        it, queued tasks are cancelled and *running* tasks are stopped too:
        their workers get SIGTERM, then SIGKILL after 0.25 s, and their futures
        end cancelled.  ``wait=True`` returns once every worker is reaped.
        """
        cancelled: list[Task] = []
        running: list[PoolFuture[Any]] = []
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                cancelled = self._drain_locked()
                for w in list(self._workers.values()):
                    if w.next is not None:
                        w.next.killed = True
                        running.append(w.next.future)
                        w.next = None
                    if w.state == BUSY and w.task is not None:
                        running.append(w.task.future)
                        self._kill_locked(w, min(self._term_grace, SHUTDOWN_GRACE))
                    elif w.state in (STARTING, IDLE):
                        self._kill_locked(w, 0.0)
            manager = self._manager
            if manager is not None:
                self._wake()
        for task in cancelled:
            if not task.future.cancel():  # a retry waiting for another attempt is RUNNING
                task.future._force_cancel()
        for fut in running:
            fut._force_cancel()
        if wait and manager is not None and manager is not threading.current_thread():
            manager.join()

    def __repr__(self) -> str:
        return (
            f"<ProcessPool workers={self._max_workers} start_method={self.start_method!r} "
            f"live={len(self._workers)} queued={self._queued()}{' shutdown' if self._shutdown else ''}>"
        )
