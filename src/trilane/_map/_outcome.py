"""What one item of a map run came to, and what the run decided to do.

Three small records cross the public boundary:

* :class:`Failure` is what ``errors="collect"`` yields in place of a result:
  the item, its exception, and how many attempts were made.
* :class:`Outcome` is the full record of one item, as
  :meth:`MapIterator.outcomes` yields it: index, key, item, result or error,
  attempts, and the seconds the attempts ran.  It is what the checkpoint
  stores and what ``trilane run`` writes.
* :class:`MapPlan` says which backend runs the map and why (``auto`` fills in
  its measurements), and is logged at INFO on the ``trilane.map`` logger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Failure", "MapPlan", "Outcome"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Failure(Generic[T]):
    """A failed item, yielded by ``trilane.map(..., errors="collect")`` in place of its result.

    ``exception`` is the last attempt's exception; ``attempts`` counts every
    call of the function for this item (1 + the retries used).  ``index`` is
    the item's position in the input and ``key`` its checkpoint key.
    """

    item: T
    exception: BaseException
    attempts: int
    index: int
    key: Any = None

    def __repr__(self) -> str:
        return f"Failure(item={self.item!r}, exception={self.exception!r}, attempts={self.attempts})"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """Everything known about one finished item.

    Exactly one of ``result`` and ``error`` is meaningful: ``ok`` is true when
    the item succeeded.  ``seconds`` is the time its attempts ran (for items
    run together in a chunk, the chunk's mean).  ``resumed`` is true when the
    outcome was read back from the checkpoint instead of computed (only
    successes are: failed items in a checkpoint are run again on resume).
    """

    index: int
    key: Any
    item: T
    result: Any = None
    error: BaseException | None = None
    attempts: int = 1
    seconds: float = 0.0
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True when the item succeeded (``error`` is ``None``)."""
        return self.error is None


@dataclass(slots=True)
class MapPlan:
    """Which backend runs a map, why, and with what settings.

    ``reason`` is one sentence a person can read; ``measured`` holds what
    ``auto`` measured (``cpu_ratio``, ``seconds_per_item``, ...) and
    ``profile`` whether a saved machine profile was used.
    """

    backend: str
    reason: str
    workers: int | None = None
    concurrency: int | None = None
    chunksize: int | str = "auto"
    measured: dict[str, float] = field(default_factory=dict)
    profile: bool = False

    def __str__(self) -> str:
        return f"backend={self.backend!r}: {self.reason}"
