"""What the parent knows about each worker process of a ProcessPool.

A worker is ``starting`` until it sends READY, then ``idle`` or ``busy``;
``retiring`` after its last task under ``max_tasks_per_worker``; ``stopping``
after STOP; ``dying`` once the pool has given up on it.  ``Worker.reader``
says which thread may read its pipe at this moment: nobody, the manager
thread (:data:`MANAGER`), or a caller's thread id (the direct path in
:mod:`._process`).  The start-method default and the forkserver preload live
here too, since they decide how a worker comes to exist.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.connection as mpc
import select
import sys
from typing import Any

from ._base import Task

__all__ = [
    "BUSY",
    "DYING",
    "IDLE",
    "MANAGER",
    "RETIRING",
    "STARTING",
    "STOPPING",
    "Worker",
    "default_start_method",
    "digest",
    "fits_ahead",
]

STARTING, IDLE, BUSY, RETIRING, STOPPING, DYING = "starting", "idle", "busy", "retiring", "stopping", "dying"


def default_start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), else ``spawn``.

    What Python 3.14 picks too.  ``fork`` starts a worker fastest but is
    unsafe in a process that has threads (the pool's own manager is one);
    ``spawn`` is the slowest.  The measurements are in docs/pools.md.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


#: ``Worker.reader`` value while the manager thread reads a worker's pipe.
MANAGER = -1


class Worker:
    """What the parent knows about one worker process: its pipe, its state, its task."""

    __slots__ = (
        "conn",
        "kill_at",
        "mprobe",
        "next",
        "pid",
        "probe",
        "proc",
        "reader",
        "sent",
        "started",
        "state",
        "stop_at",
        "task",
        "waiter",
    )

    def __init__(self, proc: Any, conn: mpc.Connection) -> None:
        self.proc = proc
        self.conn: mpc.Connection | None = conn
        self.pid: int = proc.pid
        self.state = STARTING
        self.started = False  # it sent READY
        self.task: Task | None = None
        self.next: Task | None = None  # sent ahead; runs after ``task``
        self.sent = 0
        self.kill_at: float | None = None
        self.stop_at: float | None = None
        self.reader: int | None = None  # who is reading conn now: MANAGER, a thread id, or nobody
        # Readiness seen by epoll can be stale (a caller may have read the
        # reply meanwhile), so the manager re-checks with ``probe`` once it
        # owns the pipe.  ``waiter`` is what a direct caller blocks on.
        self.probe = select.poll()
        self.probe.register(conn.fileno(), select.POLLIN)
        # The manager's own probe, used before it claims the pipe (a poll
        # object must not be polled from two threads at once).
        self.mprobe = select.poll()
        self.mprobe.register(conn.fileno(), select.POLLIN)
        self.waiter = select.poll()
        self.waiter.register(conn.fileno(), select.POLLIN)
        self.waiter.register(proc.sentinel, select.POLLIN)


#: Largest call sent ahead to a busy worker: well under a Unix socket's send buffer.
AHEAD_LIMIT = 128 * 1024


def fits_ahead(task: Task) -> bool:
    """Whether *task* is small enough to wait in a busy worker's socket buffer."""
    data, buffers = task.packed
    return not buffers and len(data) <= AHEAD_LIMIT


def digest(task: Task) -> bytes:
    """A call's identity for crash counting: a hash of its pickle."""
    data, _ = task.packed
    return hashlib.blake2b(data, digest_size=16).digest()


if sys.platform.startswith("linux"):
    # Make forkserver children cheap to start: preload our worker module in the
    # fork server (it only takes effect if the server has not started yet).
    try:
        from multiprocessing import forkserver as _fs

        _preload = list(getattr(_fs._forkserver, "_preload_modules", ["__main__"]))
        if "trilane._pools._worker" not in _preload:
            _fs.set_forkserver_preload([*_preload, "trilane._pools._worker"])
    except Exception:  # pragma: no cover
        pass
