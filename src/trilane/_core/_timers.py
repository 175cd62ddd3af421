"""The timer heap: the part of the waiting set that waits on time.

Timers sit in a binary heap ordered by deadline (ties by push order, since
``heapq`` is stable for equal keys only through the handle's own ordering, so
each entry carries a sequence number).  Cancelling a timer only marks it; the
heap drops marked timers when they reach the top, and rebuilds itself without
them once they are more than half of a heap of over 100 timers, so a program
that sets and cancels many timeouts keeps a small heap.
"""

from __future__ import annotations

import heapq
import itertools
from asyncio import TimerHandle

from ._stats import TaskInfo

__all__ = ["TimerHeap"]

_COMPACT_MIN = 100
_COMPACT_FRACTION = 0.5


class TimerHeap:
    """Pending :class:`asyncio.TimerHandle` objects ordered by deadline."""

    __slots__ = ("_cancelled", "_seq", "heap")

    def __init__(self) -> None:
        #: (deadline, sequence, timer, owner) entries; the loop tests it for
        #: emptiness directly, one Python call less per tick than ``bool(heap)``.
        self.heap: list[tuple[float, int, TimerHandle, TaskInfo]] = []
        self._cancelled = 0
        self._seq = itertools.count()

    def push(self, when: float, timer: TimerHandle, owner: TaskInfo) -> None:
        """Add *timer*, due at *when* (its ``when()``), whose run time is charged to *owner*."""
        heapq.heappush(self.heap, (when, next(self._seq), timer, owner))

    def note_cancelled(self) -> None:
        """Count one timer in the heap as cancelled (compacting the heap when they are too many)."""
        self._cancelled += 1
        # Compact here too, not only when the loop is about to block: a loop that
        # always has work ready would otherwise keep every cancelled timeout.
        if self._cancelled > _COMPACT_MIN and self._cancelled > _COMPACT_FRACTION * len(self.heap):
            self._compact()

    def next_deadline(self) -> float | None:
        """Return the earliest live deadline, or ``None`` when no timer is pending."""
        self._compact()
        heap = self.heap
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[tuple[TimerHandle, TaskInfo]]:
        """Remove and return every live timer due before *now*, earliest first."""
        heap = self.heap
        due = []
        while heap and heap[0][0] < now:
            _, _, timer, owner = heapq.heappop(heap)
            if timer.cancelled():
                self._cancelled -= 1
            else:
                due.append((timer, owner))
        return due

    def _compact(self) -> None:
        heap = self.heap
        if len(heap) > _COMPACT_MIN and self._cancelled > _COMPACT_FRACTION * len(heap):
            self.heap = [entry for entry in heap if not entry[2].cancelled()]
            heapq.heapify(self.heap)
            self._cancelled = 0
            return
        while heap and heap[0][2].cancelled():
            heapq.heappop(heap)
            self._cancelled -= 1

    def clear(self) -> None:
        """Forget every timer."""
        self.heap.clear()
        self._cancelled = 0

    def __len__(self) -> int:
        return len(self.heap)

    def __bool__(self) -> bool:
        return bool(self.heap)
