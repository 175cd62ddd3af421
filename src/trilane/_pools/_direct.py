"""Who reads a ProcessPool worker's pipe: the claim protocol and the direct path.

Exactly one thread reads a worker's pipe at a time, the one named by
``Worker.reader``: the manager thread (:data:`MANAGER`), or a caller.

* ``submit()`` claims an idle worker's pipe before it sends the task, and
  reads the reply itself if it is already there (:meth:`_after_own_send`).
* A caller that blocks in ``result()`` on a running task claims the pipe and
  waits on it (and on the worker's sentinel) itself (:meth:`_direct_wait`).
* The manager claims a pipe when epoll says it is readable and nobody else
  holds it (:meth:`_on_message`).

A pipe a caller claims is muted: taken out of the manager's epoll set, so
the reply does not wake the manager for a message someone else reads.  A
hand-off from the manager thread to a waiting caller costs a thread wake-up
and a GIL switch, about as much as the pipe round trip itself.  After a
caller reads a reply, the now idle worker's pipe stays muted (an idle worker
sends nothing; its death shows on the sentinel).  The rule that keeps
replies from being lost:

    whenever a worker has a task in flight and nobody holds its pipe,
    the pipe is in the manager's set.

So whoever releases a claim while a task is in flight, or sends a task to a
worker nobody has claimed, puts the pipe back (:meth:`_watch_locked`).
Crashes, deadlines and cancels stay with the manager: a dying worker wakes
the direct wait, the pipe goes back, and the caller falls back to waiting on
the future.
"""

from __future__ import annotations

import select
import threading
from typing import Any

from . import _wire
from ._base import PoolFuture
from ._poller import Poller
from ._worker_state import BUSY, MANAGER, Worker

__all__ = ["PipeClaims"]


class PipeClaims:
    """The claim protocol, mixed into :class:`~trilane._pools._process.ProcessPool`.

    The pool provides the lock, the epoll set, the workers, and what to do
    with a message once read (``_handle``, which releases the claim).
    """

    _lock: threading.Lock
    _poller: Poller | None
    _workers: dict[int, Worker]

    def _handle(self, w: Worker, kind: int, ident: int, data: memoryview, buffers: list[Any]) -> None:
        raise NotImplementedError

    def _forget_conn_locked(self, w: Worker) -> None:
        raise NotImplementedError

    def _after_own_send(self, w: Worker) -> None:
        """End the claim that ``submit()`` took on *w*'s pipe before sending it a task.

        A quick task's reply can arrive before ``submit()`` has even returned
        (on a busy machine the caller is often preempted by the worker it
        woke); without the claim, the manager thread would take that reply
        and hand it over, which costs a thread wake-up and a GIL switch, a
        third of the round trip.  So: if the reply is already here, handle it
        in this thread; otherwise give the pipe back to the manager (and a
        caller that blocks in ``result()`` takes it again, see
        :meth:`_direct_wait`).
        """
        conn = w.conn
        frame = None
        try:
            if conn is not None and w.probe.poll(0):
                frame = _wire.recv_frame(conn)
        except (EOFError, OSError):
            frame = None  # it died: the manager sees the sentinel and reports it
        finally:
            # A reply still due goes back to the manager, whatever happened
            # above.  Once read, the pipe stays muted (see _watch_locked).
            if frame is None:
                with self._lock:
                    w.reader = None
                    self._watch_locked(w)
        if frame is not None:
            self._handle(w, *frame)  # releases the claim

    def _watch_locked(self, w: Worker) -> None:
        """Put *w*'s pipe back in the manager's epoll set (a reply is due, and no thread reads it).

        A direct reader leaves the pipe muted after it reads a reply: an idle
        worker sends nothing (its death shows on the sentinel), so the next
        ``submit()`` that claims it saves two ``epoll_ctl`` calls.  Whoever
        sends the worker a task nobody has claimed, or lets go of a claim
        while a reply is due, calls this.  (Called with the lock held.)
        """
        if w.conn is not None and self._poller is not None:
            self._poller.unmute(w.conn.fileno())

    def _direct_wait(self, fut: PoolFuture[Any], timeout: float | None) -> None:
        """Let a thread blocked on *fut* read its worker's pipe itself.

        It claims and mutes the pipe, waits on it and on the worker's
        sentinel, and handles the reply in its own thread.  If the pipe is
        held by someone else, or the wait ends without a reply (a timeout, a
        dying worker), it returns and the caller waits on the future.
        """
        poller = self._poller
        if poller is None or not poller.can_mute:
            return
        me = threading.get_ident()
        with self._lock:
            for w in self._workers.values():
                if w.task is not None and w.task.future is fut:
                    break
            else:
                return
            # Unclaimed and still holding this task: its reply is unread.
            if w.state != BUSY or w.reader is not None or w.conn is None:
                return
            w.reader = me
            conn = w.conn
            fd = conn.fileno()
            poller.mute(fd)
        handled = False
        try:
            events = w.waiter.poll(None if timeout is None else max(0.0, timeout) * 1000)
            if any(efd == fd and ev & select.POLLIN for efd, ev in events):
                try:
                    frame = _wire.recv_frame(conn)
                except (EOFError, OSError):
                    pass  # it died: the manager sees the sentinel and reports it
                else:
                    handled = True
        finally:
            if not handled:  # the reply is still due: give the pipe back to the manager
                with self._lock:
                    w.reader = None
                    self._watch_locked(w)
        if handled:
            self._handle(w, *frame)  # releases the claim

    def _claim(self, w: Worker, reader: int) -> bool:
        with self._lock:
            if w.reader is not None or w.conn is None:
                return False
            w.reader = reader
            return True

    def _release(self, w: Worker) -> None:
        with self._lock:
            w.reader = None

    def _on_message(self, w: Worker, reader: int) -> None:
        """Read and handle one message from *w*, if nobody else is reading its pipe."""
        if reader == MANAGER and not w.mprobe.poll(0):
            # A stale wake-up (a direct reader took the message meanwhile).
            # Claiming the pipe now would turn the next caller that blocks on
            # this worker away from the direct path, onto the slow hand-off.
            return
        if not self._claim(w, reader):
            return
        try:
            assert w.conn is not None
            if not w.probe.poll(0):
                with self._lock:
                    w.reader = None  # someone else read it before we owned the pipe
                    if w.task is not None:
                        # Work sent while we held the pipe (a direct reader may
                        # have left it muted): its reply is ours to wait for.
                        self._watch_locked(w)
                return
            frame = _wire.recv_frame(w.conn)
        except BaseException as exc:
            with self._lock:
                w.reader = None
                if isinstance(exc, (EOFError, OSError)):
                    self._forget_conn_locked(w)  # it exited; the sentinel says how
                    return
            raise
        self._handle(w, *frame)  # releases the claim
