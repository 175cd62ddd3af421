"""trilane: one runtime for processes, threads and coroutines.

Layers (imports point down only; see DESIGN.md)::

    front doors   cli (trilane run / bench / demo / trace)
    front end     map, amap
    backends      serial · thread · process · async · dask
    engines       ThreadPool, ProcessPool          Loop, Watchdog
    foundation    policies · clock · errors · stats       (trilane._core)

Every public name is re-exported here exactly once.
"""

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
from ._map import AsyncMapIterator as AsyncMapIterator
from ._map import Backoff as Backoff
from ._map import Failure as Failure
from ._map import MapIterator as MapIterator
from ._map import MapPlan as MapPlan
from ._map import Outcome as Outcome
from ._map import amap as amap
from ._map import map as map
from ._offload import to_process as to_process
from ._offload import to_thread as to_thread
from ._pools._base import PoolFuture as PoolFuture
from ._pools._options import TaskOptions as TaskOptions
from ._pools._process import ProcessPool as ProcessPool
from ._pools._thread import ThreadPool as ThreadPool
from ._version import __version__ as __version__
