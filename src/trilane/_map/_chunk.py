"""The chunk runner every map backend shares, in a module that imports almost nothing.

A process backend's worker unpickles :func:`run_chunk` by name, which imports
this module there: it must not pull in asyncio, the driver or the front end
(that would cost each new worker ~50 ms before its first item).

:func:`run_chunk` calls the function on each item of a chunk and catches each
item's exception separately, so a failing item never takes its chunk mates
with it.  A :data:`ChunkResult` is ``(values, failures, seconds)``: values in
input order (``None`` at failed positions), ``{position: exception}`` or
``None`` when all succeeded, and the chunk's run time.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ChunkResult", "run_chunk"]

ChunkResult = tuple[list[Any], dict[int, BaseException] | None, float]


def _picklable(exc: BaseException) -> BaseException:
    # An exception that cannot cross the process boundary would fail the whole
    # chunk's result; send a RuntimeError that carries its text instead.
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc} (the original exception could not be pickled)")
    return exc


def run_chunk(fn: Callable[[Any], Any], items: list[Any], to_pickle: bool = False) -> ChunkResult:
    """Call *fn* on each item; return ``(values, failures or None, seconds)``.

    Module level, so that a process pool can pickle it by reference.  The fast
    path is one plain loop; an exception drops to a slower loop only for the
    rest of that chunk.
    """
    start = time.perf_counter()
    values: list[Any] = []
    append = values.append
    failures: dict[int, BaseException] | None = None
    n = len(items)
    i = 0
    while i < n:
        try:
            for x in items[i:] if i else items:
                append(fn(x))
            break
        except Exception as exc:
            if failures is None:
                failures = {}
            i = len(values)
            failures[i] = _picklable(exc) if to_pickle else exc
            append(None)
            i += 1
    return values, failures, time.perf_counter() - start
