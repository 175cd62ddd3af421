"""trilane's exceptions.

::

    TrilaneError
     ├── PolicyError            a scheduling policy failed and lost work
     ├── NotACoroutine          (also TypeError and ValueError) run() got no coroutine
     ├── WorkerCrashed          a pool worker died while it held an item
     ├── TaskTimeout            (also TimeoutError) an item ran past its timeout
     ├── Quarantined            an item crashed workers max_crashes times
     ├── NotPicklable           (also TypeError) a process task cannot be sent
     ├── PoolShutdown           (also RuntimeError) work was submitted after shutdown
     ├── CheckpointError        (also ValueError) a map checkpoint file is corrupt
     └── RemoteError            carries a worker's traceback as the __cause__ text

Each message says which item, what happened, and what to do about it.
"""

from __future__ import annotations

import signal as _signal

__all__ = [
    "CheckpointError",
    "NotACoroutine",
    "NotPicklable",
    "PolicyError",
    "PoolShutdown",
    "Quarantined",
    "RemoteTraceback",
    "TaskTimeout",
    "TrilaneError",
    "WorkerCrashed",
]


class TrilaneError(Exception):
    """Base class of every error that trilane raises itself."""


class PolicyError(TrilaneError):
    """A scheduling policy raised and callbacks it held could not be recovered."""


class NotACoroutine(TrilaneError, TypeError, ValueError):
    """``trilane.run()`` was given something other than a coroutine.

    It is a ``TypeError``, and also a ``ValueError`` because that is what
    ``asyncio.run()`` raises on Python 3.11.
    """


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended: 'exit code 3', or 'SIGKILL (signal 9)' for a negative code."""
    if exitcode is None:
        return "an unknown exit status"
    if exitcode < 0:
        try:
            name = _signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"{name} (signal {-exitcode})"
    return f"exit code {exitcode}"


class WorkerCrashed(TrilaneError):
    """A pool worker process died while it was running an item.

    ``pid`` and ``exitcode`` say which worker and how (a negative exit code is
    the signal that killed it); ``item`` is a short description of the task.
    The pool has already replaced the worker.
    """

    def __init__(self, item: str, pid: int | None, exitcode: int | None, attempts: int = 1) -> None:
        self.item = item
        self.pid = pid
        self.exitcode = exitcode
        self.attempts = attempts
        super().__init__(
            f"worker pid {pid} died with {describe_exit(exitcode)} while running {item}; "
            "the pool replaced it. Pass retries= to retry the item, or check it for "
            "crashes (segfaults, os._exit, running out of memory)."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.item, self.pid, self.exitcode, self.attempts))


class Quarantined(WorkerCrashed):
    """An item crashed workers ``max_crashes`` times and will not be tried again."""

    def __init__(self, item: str, pid: int | None, exitcode: int | None, attempts: int = 1) -> None:
        super().__init__(item, pid, exitcode, attempts)
        TrilaneError.__init__(
            self,
            f"{item} was quarantined: it killed {attempts} workers (last: pid {pid}, "
            f"{describe_exit(exitcode)}), which is max_crashes, so it will not be retried. "
            "Run it alone to find out why it crashes.",
        )


class TaskTimeout(TrilaneError, TimeoutError):
    """An item ran past its timeout, and the work was stopped where possible.

    It is also a ``TimeoutError``, so ``except TimeoutError`` catches it.
    """

    def __init__(self, item: str, timeout: float, how: str = "") -> None:
        self.item = item
        self.timeout = timeout
        self.how = how
        message = f"{item} did not finish within its timeout of {timeout:g} s"
        super().__init__(f"{message}; {how}" if how else message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.item, self.timeout, self.how))


class NotPicklable(TrilaneError, TypeError):
    """A function, argument or result cannot be pickled to cross a process boundary."""

    def __init__(self, what: str, obj_repr: str, cause: str) -> None:
        self.what = what
        self.obj_repr = obj_repr
        self.cause = cause
        super().__init__(
            f"cannot pickle {what} {obj_repr} to send it between processes: {cause}. "
            "Define it at module top level (not a lambda, closure or local class), "
            "or use threads (ThreadPool, backend='thread') so it need not be pickled."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.what, self.obj_repr, self.cause))


class PoolShutdown(TrilaneError, RuntimeError):
    """Work was submitted to a pool that is shutting down or shut down."""


class CheckpointError(TrilaneError, ValueError):
    """A map checkpoint file is corrupt before its last line (a torn last line is not an error).

    ``path``, ``offset`` (bytes from the start) and ``line`` (1-based) say where.
    """

    def __init__(self, path: str, offset: int, line: int, cause: str) -> None:
        self.path = path
        self.offset = offset
        self.line = line
        self.cause = cause
        super().__init__(
            f"checkpoint {path} is corrupt at byte offset {offset} (line {line}): {cause}. "
            "Only a torn last line is repaired automatically; fix or truncate the file at that "
            "offset to resume, or delete it to start over."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.offset, self.line, self.cause))


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker.

    trilane sets it as the ``__cause__`` of the re-raised exception, so the
    worker's frames print under "The above exception was the direct cause".
    """

    def __init__(self, tb: str) -> None:
        self.tb = tb
        super().__init__(tb)

    def __str__(self) -> str:
        return self.tb
