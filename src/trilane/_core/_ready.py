"""The ready queue: runnable callbacks, in the order the policy chooses.

An entry is ``(handle, owner, queued_at)``: the asyncio handle to run, the
:class:`TaskInfo` its run time is charged to, and when it was queued (on the
``perf_counter`` clock; ``0.0`` for an entry that came from another thread,
whose wait is not measured).

The queue has two doors.  The loop thread pushes straight into the policy.
Other threads and signal handlers append to :attr:`ReadyQueue.inbox`, a
``deque`` whose ``append`` is atomic, and the loop moves the inbox into the
policy at the start of each tick.  So a policy is only ever called from the
loop thread and needs no lock.  (Under the built-in ``fifo`` policy they
append straight to its ``deque`` instead, as asyncio does, which keeps
asyncio's order between ``call_soon_threadsafe`` and ``call_soon``.)

A policy that raises is reported through ``on_failure`` and replaced by a
``fifo`` queue holding every entry it still gives up (see ``Loop``).
"""

from __future__ import annotations

from asyncio import Handle
from collections import deque
from collections.abc import Callable
from typing import Any

from ._policies import FifoPolicy, Policy
from ._stats import ROOT, TaskInfo

__all__ = ["Entry", "ReadyQueue"]

Entry = tuple[Handle, TaskInfo, float]


class ReadyQueue:
    """A policy plus a thread-safe inbox, shaped like the ``deque`` asyncio expects."""

    __slots__ = (
        "_on_failure",
        "charge",
        "fast_push",
        "high_water",
        "inbox",
        "policy",
        "policy_push",
        "pop",
        "push",
        "push_threadsafe",
        "root",
        "size",
    )

    def __init__(
        self,
        policy: Policy[Any],
        on_failure: Callable[[BaseException, Policy[Any], bool], None],
        root: TaskInfo = ROOT,
    ) -> None:
        self.root = root
        self.inbox: deque[Entry] = deque()
        self.high_water = 0
        self._on_failure = on_failure
        self._use(policy)

    def _use(self, policy: Policy[Any]) -> None:
        self.policy = policy
        self.size: Callable[[], int] = policy.__len__  # what the policy holds (not the inbox)
        self.pop: Callable[[], Entry] = policy.pop
        self.push: Callable[[Entry], None] = self._safe_push
        # The hot path (call_soon) calls fast_push(entry) when it is set, and
        # otherwise policy_push(entry, owner) itself, catching what it raises.
        self.fast_push: Callable[[Entry], None] | None = None
        self.policy_push: Callable[[Entry, TaskInfo], None] = policy.push
        # For any thread: the inbox, drained at the start of the next tick.
        self.push_threadsafe: Callable[[Entry], None] = self.inbox.append
        if type(policy) is FifoPolicy:
            # The default order needs neither the owner nor a Python frame per push.
            self.push = self.fast_push = policy._items.append
            self.pop = policy._items.popleft
            self.size = policy._items.__len__
            # deque.append is atomic, so other threads append in place, and keep
            # asyncio's order between call_soon_threadsafe and call_soon.
            self.push_threadsafe = policy._items.append
        # Only call charge() on policies that use it.
        self.charge: Callable[[TaskInfo, float], None] | None = (
            policy.charge if type(policy).charge is not Policy.charge else None
        )

    def _safe_push(self, entry: Entry) -> None:
        try:
            self.policy.push(entry, entry[1])
        except Exception as exc:
            self.replace_policy(exc)
            self.push(entry)

    def replace_policy(self, exc: BaseException) -> None:
        """Swap a policy that raised *exc* for ``fifo``, keeping what it still holds.

        The entries are taken out with the broken policy's own ``drain()``.
        If that raises too, the entries left inside are lost, and
        ``on_failure`` is told so that it can stop the loop rather than let
        their tasks wait forever.
        """
        broken = self.policy
        fifo: FifoPolicy[Entry] = FifoPolicy()
        complete = True
        try:
            for entry in broken.drain():
                fifo.push(entry, entry[1])
        except Exception:
            complete = False
        self._use(fifo)
        self._on_failure(exc, broken, complete)

    def take_inbox(self) -> None:
        """Move everything other threads queued into the policy (loop thread only)."""
        inbox = self.inbox
        push = self.push
        while inbox:
            push(inbox.popleft())

    def append(self, handle: Handle) -> None:
        """Queue *handle* on behalf of no task (asyncio's ``_ready.append``)."""
        self.push((handle, self.root, 0.0))

    def clear(self) -> None:
        """Drop every queued entry (asyncio calls this from ``close()``)."""
        self.inbox.clear()
        try:
            for _ in self.policy.drain():
                pass
        except Exception as exc:
            self.replace_policy(exc)

    def __len__(self) -> int:
        return len(self.policy) + len(self.inbox)

    def __bool__(self) -> bool:
        return bool(self.inbox) or len(self.policy) > 0
