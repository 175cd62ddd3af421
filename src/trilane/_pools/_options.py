"""Per-task options for the pools, and how a task is named in messages.

Options travel in their own object so that they can never clash with the
keyword arguments of the function being called::

    pool.submit_with(TaskOptions(priority=5, timeout=2.0), fetch, url, timeout=30)
                     ^^^^^^^^^^^^^^^^ pool's knobs ^^^^^^^^  ^^^^ fn's own kwargs ^^^^

``timeout`` is per attempt; ``retries`` only re-runs a task whose worker
process died (``WorkerCrashed``): an exception raised by the function itself
is a result, not a reason to run it again.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .._core._stats import check_priority

__all__ = ["DEFAULT_OPTIONS", "TaskOptions", "describe_call"]


@dataclass(frozen=True)
class TaskOptions:
    """How a pool should run one task (or each chunk of a ``map``).

    ``priority``: higher runs first under the ``priority`` and ``fair`` policies.
    ``group``: tenant key for ``round_robin`` and ``fair``.
    ``timeout``: seconds per attempt; a process task past it is killed, a thread
    task fails at the deadline (its thread is counted as lost).
    ``retries``: how many times to re-run a task whose worker process died.
    ``name``: used in error messages instead of a repr of the call.
    """

    priority: int = 0
    group: Hashable | None = None
    timeout: float | None = None
    retries: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", check_priority(self.priority))
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, got {self.timeout!r}")
            if not (self.timeout > 0 and math.isfinite(self.timeout)):
                raise ValueError(f"timeout must be a positive finite number of seconds, got {self.timeout!r}")
        if type(self.retries) is not int or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0 (re-runs after a worker crash), got {self.retries!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a str or None, got {self.name!r}")
        try:
            hash(self.group)
        except TypeError:
            raise TypeError(f"group must be hashable, got {self.group!r}") from None


DEFAULT_OPTIONS = TaskOptions()

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = 4
_repr.maxtuple = 4
_repr.maxdict = 3


def _fn_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else _repr.repr(fn)


def describe_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str | None) -> str:
    """Return a short description of a call for error messages, e.g. ``task fetch('http://…')``."""
    if name is not None:
        return f"task {name!r}"
    parts = [_repr.repr(a) for a in args[:4]]
    if len(args) > 4:
        parts.append("...")
    parts += [f"{k}={_repr.repr(v)}" for k, v in list(kwargs.items())[:3]]
    return f"task {_fn_name(fn)}({', '.join(parts)})"
