"""Scheduling policies: the order in which runnable work is taken.

A policy is a queue.  The loop's ready queue holds one, and so does each
pool's task queue, so the same four rules (and any rule a user writes) order
coroutines, threads and processes alike.  Each maps a note of the seed onto a
known scheduler:

=============  ==============================================================
``fifo``       The item that waited longest runs first: asyncio's order.
``priority``   Higher priority first, FIFO within a level.  Waiting ages an
               item: every ``level_wait`` seconds (50 ms by default) it waited
               count as one level more, so nothing starves.  A priority-0 item
               waits at most ``P * level_wait`` behind a stream of priority-P
               work (plus the time to run what was queued ahead of it).
``fair``       Least weighted run time first, as Linux CFS orders by vruntime.
               An owner's vruntime is its run time over ``1.25**priority``;
               one that slept comes back no more than ``sleeper_credit``
               seconds behind the queue's minimum.
``round_robin`` Groups take turns, one item per turn, in the order they first
               had work queued; FIFO within a group.  Items with no group
               share one group, ``None``.
=============  ==============================================================

Ties under every built-in policy break in push order, so each order is exactly
reproducible, and the tests assert the exact traces.

Writing a policy
----------------
Subclass :class:`Policy` and implement :meth:`~Policy.push`,
:meth:`~Policy.pop` and :meth:`~Policy.__len__`.  ``owner`` is a
:class:`~trilane.TaskInfo` whose ``priority`` and ``group`` you may read.
Override :meth:`~Policy.charge` to learn how long an owner ran.  Engines call
a policy from one thread at a time; they do the locking.

Engines handle a policy that raises: the loop reports the error through its
exception handler and carries on with a ``fifo`` queue that holds everything
the broken policy still held (see ``Loop``); a pool fails the task it was
handling and does the same.
"""

from __future__ import annotations

import heapq
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from ._stats import TaskInfo

__all__ = [
    "FairPolicy",
    "FifoPolicy",
    "Policy",
    "PolicySpec",
    "PriorityPolicy",
    "RoundRobinPolicy",
    "make_policy",
    "policy_names",
]

T = TypeVar("T")


class Policy(ABC, Generic[T]):
    """A queue of runnable items, ordered by a scheduling rule.

    ``slice`` is how long (in seconds) the loop may keep running callbacks in
    one tick before it polls timers and I/O again, so that newly woken urgent
    work can overtake queued work.  ``None`` means "run the whole batch that
    was ready when the tick began", which is asyncio's behaviour.
    """

    #: The name that ``policy=`` accepts for this class.
    name: ClassVar[str] = "custom"
    #: Time budget of one loop tick, or ``None`` for the whole ready batch.
    slice: float | None = None

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.monotonic

    def bind(self, clock: Callable[[], float]) -> None:
        """Called by the engine that owns this queue with the clock it runs on."""
        self.clock = clock

    @abstractmethod
    def push(self, item: T, owner: TaskInfo) -> None:
        """Add *item*, which belongs to *owner*."""

    @abstractmethod
    def pop(self) -> T:
        """Remove and return the item that should run next (the queue is not empty)."""

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of items queued."""

    def charge(self, owner: TaskInfo, seconds: float) -> None:
        """Learn that one of *owner*'s items just ran for *seconds*."""

    def drain(self) -> Iterator[T]:
        """Remove and yield every item, in the order :meth:`pop` gives them."""
        while len(self):
            yield self.pop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} queued={len(self)}>"


class FifoPolicy(Policy[T]):
    """First in, first out: asyncio's own order."""

    name = "fifo"

    def __init__(self) -> None:
        super().__init__()
        self._items: deque[T] = deque()

    def push(self, item: T, owner: TaskInfo) -> None:
        self._items.append(item)

    def pop(self) -> T:
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


class PriorityPolicy(Policy[T]):
    """Higher priority first, FIFO within a level, with aging.

    An item's rank is its push time minus ``priority * level_wait``: a
    priority-``p`` item ranks as though it had already waited
    ``p * level_wait`` seconds, and the lowest rank runs first.  Waiting
    therefore raises every item's effective priority by one level per
    ``level_wait`` seconds.

    Items sit in one FIFO per level, so only the head of each level can have
    the lowest rank: a pop compares as many heads as there are levels with
    work queued (usually one or two), and a push is a dictionary lookup and an
    append.
    """

    name = "priority"
    slice = 0.001

    def __init__(self, level_wait: float = 0.05) -> None:
        super().__init__()
        if not level_wait > 0:
            raise ValueError(f"level_wait must be > 0 seconds, got {level_wait!r}")
        self.level_wait = level_wait
        # level -> FIFO of (rank, item).  Levels stay once created (few exist),
        # so that push and pop never add or drop dictionary keys on the hot path.
        self._levels: dict[int, deque[tuple[float, T]]] = {}
        # The same FIFOs, highest level first: what pop() scans.
        self._scan: tuple[deque[tuple[float, T]], ...] = ()

    def push(self, item: T, owner: TaskInfo) -> None:
        level = owner.priority
        try:
            queue = self._levels[level]
        except KeyError:
            queue = self._new_level(level)
        queue.append((self.clock() - level * self.level_wait, item))

    def _new_level(self, level: int) -> deque[tuple[float, T]]:
        # Keep levels highest first, so that pop()'s strict "<" gives ties to the higher level.
        queue: deque[tuple[float, T]] = deque()
        self._levels[level] = queue
        self._levels = dict(sorted(self._levels.items(), reverse=True))
        self._scan = tuple(self._levels.values())
        return queue

    def pop(self) -> T:
        scan = self._scan
        if len(scan) == 1:
            return scan[0].popleft()[1]
        best: deque[tuple[float, T]] | None = None
        best_rank = 0.0
        for queue in scan:
            # The lowest rank among the heads; on a tie, the higher level (it comes first).
            if queue:
                rank = queue[0][0]
                if best is None or rank < best_rank:
                    best = queue
                    best_rank = rank
        if best is None:
            raise IndexError("pop from an empty PriorityPolicy")
        return best.popleft()[1]

    def __len__(self) -> int:
        return sum(map(len, self._scan))


class FairPolicy(Policy[T]):
    """Least weighted run time (vruntime) first, like Linux's CFS.

    An owner's vruntime is its run time divided by ``1.25**priority``, so a
    priority-10 owner gets about 9.3 times the CPU of a priority-0 one when
    both always have work.  An owner that comes back after sleeping starts no
    more than ``sleeper_credit`` behind the smallest vruntime in the queue, so
    sleeping banks no unbounded credit.  A new owner starts ``start_debit``
    (1 ms) divided by its weight *behind* that minimum.  The vruntime is derived from the
    ``run_time`` the engine charges, at push time, so the policy needs no
    per-step ``charge()`` call; a change of priority rescales the owner's
    whole history.

    Like CFS's minimum granularity, vruntimes are compared in steps of
    ``granularity`` seconds (100 µs by default): items whose vruntimes fall in
    the same step run in push order.  That keeps a push and a pop O(1) when,
    as usual, most owners are within a few steps of each other; ``len()``
    counts the items of each queued step.
    """

    name = "fair"
    slice = 0.001

    def __init__(self, sleeper_credit: float = 0.005, granularity: float = 0.0001, start_debit: float = 0.001) -> None:
        super().__init__()
        if not granularity > 0:
            raise ValueError(f"granularity must be > 0 seconds, got {granularity!r}")
        self.sleeper_credit = sleeper_credit
        self.start_debit = start_debit
        self.granularity = granularity
        # vruntime step (vruntime // granularity, a whole float) -> FIFO of items
        self._steps: dict[float, deque[T]] = {}
        self._order: list[float] = []  # heap of the steps in _steps
        self._min_step = 0.0
        self._floor = -sleeper_credit  # the least vruntime a push may have: min step - sleeper_credit

    def push(self, item: T, owner: TaskInfo) -> None:
        try:
            scale = _INVERSE_WEIGHT[owner.priority]
        except KeyError:
            scale = 1.0 / _weight(owner.priority)
        vruntime = owner.run_time * scale + owner.vruntime  # owner.vruntime holds the sleeper offset
        if vruntime == 0.0 and owner.steps == 0:
            # A new owner starts just behind the queue's minimum, by start_debit
            # weighted by its priority (as CFS places new tasks), so a crowd of new
            # low-priority tasks cannot all run before a high-priority one.
            vruntime = owner.vruntime = self._min_step * self.granularity + self.start_debit * scale
        if vruntime < self._floor:
            owner.vruntime += self._floor - vruntime
            vruntime = self._floor
        step = vruntime // self.granularity
        try:
            self._steps[step].append(item)
        except KeyError:
            self._steps[step] = deque((item,))
            heapq.heappush(self._order, step)

    def pop(self) -> T:
        step = self._order[0]
        queue = self._steps[step]
        item = queue.popleft()
        if not queue:
            heapq.heappop(self._order)
            del self._steps[step]
        if step > self._min_step:
            self._min_step = step
            self._floor = step * self.granularity - self.sleeper_credit
        return item

    def __len__(self) -> int:
        # Counted here, not on every push and pop (that costs ~10% of push+pop):
        # engines ask once or twice per tick, and the queued steps are few.
        return sum(map(len, self._steps.values()))

    def drain(self) -> Iterator[T]:
        while self._order:
            yield self.pop()


def _weight(priority: int) -> float:
    # Clamp the exponent so that extreme priorities cannot overflow a float.
    return float(1.25 ** max(-100, min(100, priority)))


_INVERSE_WEIGHT: dict[int, float] = {p: 1.0 / _weight(p) for p in range(-20, 21)}


class RoundRobinPolicy(Policy[T]):
    """Groups take turns, one item each, so a busy group cannot crowd out the rest."""

    name = "round_robin"
    slice = 0.001

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[Hashable | None, deque[T]] = {}
        self._turns: deque[Hashable | None] = deque()
        self._count = 0

    def push(self, item: T, owner: TaskInfo) -> None:
        group = owner.group
        queue = self._queues.get(group)
        if queue is None:
            queue = self._queues[group] = deque()
            self._turns.append(group)
        queue.append(item)
        self._count += 1

    def pop(self) -> T:
        group = self._turns.popleft()
        queue = self._queues[group]
        item = queue.popleft()
        if queue:
            self._turns.append(group)
        else:
            del self._queues[group]
        self._count -= 1
        return item

    def __len__(self) -> int:
        return self._count


_BUILTIN: dict[str, type[Policy[Any]]] = {
    "fifo": FifoPolicy,
    "priority": PriorityPolicy,
    "fair": FairPolicy,
    "round_robin": RoundRobinPolicy,
}

#: What ``policy=`` accepts: a built-in policy's name, or a policy instance.
PolicySpec = str | Policy[Any]


def policy_names() -> list[str]:
    """Return the names that ``policy=`` accepts, in a stable order."""
    return list(_BUILTIN)


def make_policy(spec: object) -> Policy[Any]:
    """Return a new policy for a name, or *spec* itself if it is a :class:`Policy`."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str):
        key = spec.replace("-", "_")
        cls = _BUILTIN.get(key)
        if cls is None:
            raise ValueError(f"unknown scheduling policy {spec!r}; valid names are: {', '.join(_BUILTIN)}")
        return cls()
    raise TypeError(f"policy must be one of {', '.join(_BUILTIN)} or a trilane.Policy instance, got {spec!r}")
