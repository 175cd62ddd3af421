"""trilane.map: one front end over serial, thread, process, async and dask backends.

Modules: ``_front`` (map, amap, the iterators), ``_driver`` (the one engine
that gives every option its meaning), ``_options`` (validation, Backoff,
rates), ``_rate`` (token bucket), ``_checkpoint`` (JSONL resume),
``_progress`` (rich bar), ``_auto`` (backend choice), ``_outcome`` (public
records), and ``_backends`` (one module per backend, loaded by name).
"""

from __future__ import annotations

from ._front import AsyncMapIterator, MapIterator, amap, map
from ._options import Backoff
from ._outcome import Failure, MapPlan, Outcome

__all__ = ["AsyncMapIterator", "Backoff", "Failure", "MapIterator", "MapPlan", "Outcome", "amap", "map"]
