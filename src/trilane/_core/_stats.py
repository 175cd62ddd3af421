"""Scheduling owners and the statistics charged to them.

Every unit of work that a policy orders belongs to an *owner*: a task on the
loop, or a submitted task in a pool.  The owner carries the two knobs that
policies read (``priority`` and ``group``) and the counters that the run time
is charged to.  Run time is charged in exactly one place per engine: where the
loop runs a callback, and where a pool hands back a result.

Guarantees:

* Reading the counters never takes a lock; each is written by one thread only
  (the loop thread, or the pool's collector thread).
* ``vruntime`` belongs to the ``fair`` policy and means nothing to anyone else.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

__all__ = ["LoopStats", "TaskInfo", "TaskStats", "check_priority"]


def check_priority(priority: object) -> int:
    """Return *priority* if it is a plain ``int``; raise ``TypeError`` otherwise."""
    if type(priority) is not int:
        if isinstance(priority, int) and not isinstance(priority, bool):
            return int(priority)
        raise TypeError(f"priority must be an int (higher runs first), got {type(priority).__name__} {priority!r}")
    return priority


class TaskInfo:
    """The scheduling record of one task: its knobs and its counters.

    Policies read :attr:`priority` and :attr:`group`; engines add to the
    counters.  Users see a frozen copy through :meth:`snapshot`.
    """

    # Slots, all set here: a record is written once per callback, and a fixed
    # layout makes those writes cheaper than growing a per-record dict.
    __slots__ = (
        "__weakref__",
        "blocked_time",
        "group",
        "longest_step",
        "name",
        "priority",
        "run_time",
        "steps",
        "vruntime",
        "wait_time",
    )

    def __init__(self, priority: int = 0, group: Hashable | None = None, name: str = "") -> None:
        self.priority = priority
        self.group = group
        self.name = name
        self.run_time = 0.0
        self.wait_time = 0.0
        self.steps = 0
        self.longest_step = 0.0
        self.blocked_time = 0.0
        self.vruntime = 0.0

    def charge(self, ran: float, waited: float) -> None:
        """Account one step that waited *waited* seconds and ran *ran* seconds."""
        self.run_time += ran
        self.wait_time += waited
        self.steps += 1
        self.longest_step = max(self.longest_step, ran)

    def snapshot(self) -> TaskStats:
        """Return the counters as an immutable :class:`TaskStats`."""
        return TaskStats(
            name=self.name,
            priority=self.priority,
            group=self.group,
            run_time=self.run_time,
            wait_time=self.wait_time,
            steps=self.steps,
            longest_step=self.longest_step,
            blocked_time=self.blocked_time,
        )

    def __repr__(self) -> str:
        return f"<TaskInfo {self.name!r} priority={self.priority} group={self.group!r} steps={self.steps}>"


#: The attribute of an ``asyncio.Task`` that holds its TaskInfo.
INFO_ATTR: Final = "_trilane_info"

#: The record that work outside any task is charged to.
ROOT: Final = TaskInfo(0, None, "<loop>")

#: The record of the task whose context is current.  Each task's context holds
#: its own record (the loop's ``create_task`` sets it), so a callback is charged
#: to the task whose context it runs in, and child tasks inherit priority and
#: group by copying from it.
CURRENT: Final[ContextVar[TaskInfo]] = ContextVar("trilane_task_info")


@dataclass(frozen=True, slots=True)
class TaskStats:
    """How one task has spent its time so far (all durations in seconds).

    ``run_time`` is the time its steps ran on the loop thread, ``wait_time``
    the time its steps sat in the ready queue, ``steps`` how many times it ran,
    ``longest_step`` the longest single step, and ``blocked_time`` the part of
    ``run_time`` that the watchdog saw as blocking the loop.
    """

    name: str
    priority: int
    group: Hashable | None
    run_time: float
    wait_time: float
    steps: int
    longest_step: float
    blocked_time: float


@dataclass(frozen=True, slots=True)
class LoopStats:
    """Counters for one loop: ``ticks`` run, ``callbacks`` run, and the ready queue's
    ``ready_high_water`` (the most callbacks that were ever ready at once)."""

    ticks: int
    callbacks: int
    ready_high_water: int
