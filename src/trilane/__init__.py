"""trilane: one runtime for processes, threads and coroutines.

Layers (imports point down only; see DESIGN.md)::

    front doors   cli (trilane run / bench / demo / trace)
    front end     map, amap
    backends      serial · thread · process · async · dask
    engines       ThreadPool, ProcessPool          Loop, Watchdog
    foundation    policies · clock · errors · stats       (trilane._core)

Every public name is re-exported here exactly once.  They load on first use
(PEP 562), so ``import trilane`` costs about a millisecond, and a process
that only needs the loop (or a pool worker that only needs the wire format)
never imports the rest.  The ``TYPE_CHECKING`` block is what type checkers
and readers see; ``_EXPORTS`` is what runs, and a test keeps the two equal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._core._clock import Clock as Clock
    from ._core._clock import MockClock as MockClock
    from ._core._clock import MonotonicClock as MonotonicClock
    from ._core._errors import CheckpointError as CheckpointError
    from ._core._errors import NotACoroutine as NotACoroutine
    from ._core._errors import NotPicklable as NotPicklable
    from ._core._errors import PolicyError as PolicyError
    from ._core._errors import PoolShutdown as PoolShutdown
    from ._core._errors import Quarantined as Quarantined
    from ._core._errors import RemoteTraceback as RemoteTraceback
    from ._core._errors import TaskTimeout as TaskTimeout
    from ._core._errors import TrilaneError as TrilaneError
    from ._core._errors import WorkerCrashed as WorkerCrashed
    from ._core._hints import BlockingHint as BlockingHint
    from ._core._hints import StackFrame as StackFrame
    from ._core._loop import Loop as Loop
    from ._core._loop import new_event_loop as new_event_loop
    from ._core._loop import set_priority as set_priority
    from ._core._loop import spawn as spawn
    from ._core._loop import task_stats as task_stats
    from ._core._policies import FairPolicy as FairPolicy
    from ._core._policies import FifoPolicy as FifoPolicy
    from ._core._policies import Policy as Policy
    from ._core._policies import PriorityPolicy as PriorityPolicy
    from ._core._policies import RoundRobinPolicy as RoundRobinPolicy
    from ._core._policies import policy_names as policy_names
    from ._core._run import run as run
    from ._core._stats import LoopStats as LoopStats
    from ._core._stats import TaskInfo as TaskInfo
    from ._core._stats import TaskStats as TaskStats
    from ._core._watchdog import BlockingReport as BlockingReport
    from ._core._watchdog import BlockingSite as BlockingSite
    from ._core._watchdog import Watchdog as Watchdog
    from ._map._front import AsyncMapIterator as AsyncMapIterator
    from ._map._front import MapIterator as MapIterator
    from ._map._front import amap as amap
    from ._map._front import map as map
    from ._map._options import Backoff as Backoff
    from ._map._outcome import Failure as Failure
    from ._map._outcome import MapPlan as MapPlan
    from ._map._outcome import Outcome as Outcome
    from ._offload import to_process as to_process
    from ._offload import to_thread as to_thread
    from ._pools._base import PoolFuture as PoolFuture
    from ._pools._options import TaskOptions as TaskOptions
    from ._pools._process import ProcessPool as ProcessPool
    from ._pools._thread import ThreadPool as ThreadPool

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Clock": "._core._clock",
    "MockClock": "._core._clock",
    "MonotonicClock": "._core._clock",
    "CheckpointError": "._core._errors",
    "NotACoroutine": "._core._errors",
    "NotPicklable": "._core._errors",
    "PolicyError": "._core._errors",
    "PoolShutdown": "._core._errors",
    "Quarantined": "._core._errors",
    "RemoteTraceback": "._core._errors",
    "TaskTimeout": "._core._errors",
    "TrilaneError": "._core._errors",
    "WorkerCrashed": "._core._errors",
    "BlockingHint": "._core._hints",
    "StackFrame": "._core._hints",
    "Loop": "._core._loop",
    "new_event_loop": "._core._loop",
    "set_priority": "._core._loop",
    "spawn": "._core._loop",
    "task_stats": "._core._loop",
    "FairPolicy": "._core._policies",
    "FifoPolicy": "._core._policies",
    "Policy": "._core._policies",
    "PriorityPolicy": "._core._policies",
    "RoundRobinPolicy": "._core._policies",
    "policy_names": "._core._policies",
    "run": "._core._run",
    "LoopStats": "._core._stats",
    "TaskInfo": "._core._stats",
    "TaskStats": "._core._stats",
    "BlockingReport": "._core._watchdog",
    "BlockingSite": "._core._watchdog",
    "Watchdog": "._core._watchdog",
    "AsyncMapIterator": "._map._front",
    "Backoff": "._map._options",
    "Failure": "._map._outcome",
    "MapIterator": "._map._front",
    "MapPlan": "._map._outcome",
    "Outcome": "._map._outcome",
    "amap": "._map._front",
    "map": "._map._front",
    "to_process": "._offload",
    "to_thread": "._offload",
    "PoolFuture": "._pools._base",
    "TaskOptions": "._pools._options",
    "ProcessPool": "._pools._process",
    "ThreadPool": "._pools._thread",
}

__all__ = [
    "AsyncMapIterator",
    "Backoff",
    "BlockingHint",
    "BlockingReport",
    "BlockingSite",
    "CheckpointError",
    "Clock",
    "Failure",
    "FairPolicy",
    "FifoPolicy",
    "Loop",
    "LoopStats",
    "MapIterator",
    "MapPlan",
    "MockClock",
    "MonotonicClock",
    "NotACoroutine",
    "NotPicklable",
    "Outcome",
    "Policy",
    "PolicyError",
    "PoolFuture",
    "PoolShutdown",
    "PriorityPolicy",
    "ProcessPool",
    "Quarantined",
    "RemoteTraceback",
    "RoundRobinPolicy",
    "StackFrame",
    "TaskInfo",
    "TaskOptions",
    "TaskStats",
    "TaskTimeout",
    "ThreadPool",
    "TrilaneError",
    "Watchdog",
    "WorkerCrashed",
    "__version__",
    "amap",
    "map",
    "new_event_loop",
    "policy_names",
    "run",
    "set_priority",
    "spawn",
    "task_stats",
    "to_process",
    "to_thread",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trilane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
