"""The loop that runs inside each ProcessPool worker process.

::

    parent (manager thread)                      worker (this module)
    ───────────────────────                      ────────────────────
                                   <── READY      after initializer(*initargs)
    TASK id, (fn, args, kwargs) ──>               run fn
                                   <── OK id, result        (or ERR id, RemoteError)
    ...                                                      OK_RETIRE / ERR_RETIRE when
    STOP ──>                                                 max_tasks_per_worker is reached
                                   (exit 0)

The worker holds at most one task, so when it dies the parent knows exactly
which task it held.  It ignores SIGINT (Ctrl-C is the parent's to handle; the
parent then kills its workers), and it exits on its own within a fraction of a
second if the parent dies: ``PR_SET_PDEATHSIG`` where Linux offers it, and a
watcher thread that notices the re-parenting.

A task that raises ``SystemExit`` (``sys.exit``) ends the worker, like
``os._exit`` does: the parent reports ``WorkerCrashed`` with the exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .._core._errors import NotPicklable
from . import _wire
from ._options import _repr

__all__ = ["PARENT_POLL", "worker_main"]

#: How often the watcher thread checks that the parent is alive (seconds).
PARENT_POLL = 0.2


def _die_with_parent(parent_pid: int) -> None:
    ppid = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except Exception:  # pragma: no cover - no libc prctl: the thread below still works
            pass

    def watch() -> None:
        # Re-parenting (to init or a subreaper) means our parent, or the
        # forkserver that forked us, is gone.
        while True:
            time.sleep(PARENT_POLL)
            if os.getppid() != ppid:
                os._exit(70)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(70)
            except OSError:
                pass

    threading.Thread(target=watch, name="trilane-parent-watch", daemon=True).start()


def worker_main(
    conn: Connection,
    parent_pid: int,
    initializer: Callable[..., Any] | None,
    initargs: tuple[Any, ...],
    max_tasks: int | None,
) -> None:
    """Entry point of a worker process (the ``target`` of its ``Process``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            _wire.send_frame(conn, _wire.INIT_ERROR, 0, _wire.dumps(_wire.RemoteError.picklable(exc)))
            conn.close()
            sys.exit(1)
    _wire.send_frame(conn, _wire.READY, os.getpid())
    done = 0
    while True:
        try:
            kind, ident, data, buffers = _wire.recv_frame(conn)
        except (EOFError, OSError):
            return
        if kind == _wire.STOP:
            return
        done += 1
        retire = max_tasks is not None and done >= max_tasks
        _run_one(conn, ident, data, buffers, retire)
        del data, buffers
        if retire:
            return


def _run_one(conn: Connection, ident: int, data: memoryview, buffers: list[Any], retire: bool) -> None:
    ok_kind = _wire.OK_RETIRE if retire else _wire.OK
    err_kind = _wire.ERR_RETIRE if retire else _wire.ERR
    try:
        fn, args, kwargs = _wire.loads_call(data, buffers)
    except Exception as exc:
        # The arguments pickled in the parent but cannot be rebuilt here
        # (a __setstate__ that raises, a module missing in the worker, ...).
        _wire.send_frame(conn, err_kind, ident, _wire.dumps(_wire.RemoteError.picklable(exc)))
        return
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        del fn, args, kwargs
        _wire.send_frame(conn, err_kind, ident, _wire.dumps(_wire.RemoteError.picklable(exc)))
        return
    del fn, args, kwargs
    try:
        packed = _wire.dumps(result)
    except Exception as exc:
        err = NotPicklable("the result", _repr.repr(result), f"{type(exc).__name__}: {exc}")
        err.__cause__ = exc
        _wire.send_frame(conn, err_kind, ident, _wire.dumps(_wire.RemoteError(err)))
        return
    del result
    _wire.send_frame(conn, ok_kind, ident, packed)
