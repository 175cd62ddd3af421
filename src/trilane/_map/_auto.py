"""``backend="auto"``: measure the first items, then pick a backend and say why.

::

    coroutine function ───────────────────────────────▶ async
    run the first few items in a probe thread, timing wall and CPU:
      CPU / wall < 0.5            (waits on I/O)       ▶ thread
      CPU-bound, 1 CPU            (nothing to gain)    ▶ serial
      CPU-bound, too little work  (< 2 × pool start)   ▶ serial
      CPU-bound, not picklable    (cannot be sent)     ▶ thread, saying why
      CPU-bound, picklable                             ▶ process

The probed items are real work: their results are kept and never run again.
Costs come from the saved machine profile (``trilane bench`` writes it) when
there is one, and from conservative defaults otherwise; the plan says which.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .._profile import MachineProfile
from ._backends._process import default_process_workers
from ._outcome import MapPlan

__all__ = ["IO_BOUND_BELOW", "PROBE_ITEMS", "PROBE_SECONDS", "Probe", "choose"]

#: How many items the probe runs at most, and for how long (it stops at whichever comes first).
PROBE_ITEMS: Final = 3
PROBE_SECONDS: Final = 0.5
#: A CPU/wall ratio below this means the function mostly waits: threads overlap the waits.
IO_BOUND_BELOW: Final = 0.5
#: Defaults when no machine profile is saved (typical of a Linux laptop).
DEFAULT_PROCESS_ROUNDTRIP: Final = 200e-6
DEFAULT_PROCESS_STARTUP: Final = 0.1


@dataclass
class Probe:
    """What the probe measured: per item (wall seconds, CPU seconds)."""

    samples: list[tuple[float, float]]
    sample_item: Any = None

    @property
    def wall(self) -> float:
        """Total wall seconds of the probed items."""
        return sum(w for w, _ in self.samples)

    @property
    def cpu(self) -> float:
        """Total CPU seconds (of the probing thread) of the probed items."""
        return sum(c for _, c in self.samples)


def _pickle_problem(obj: Any) -> str | None:
    try:
        pickle.dumps(obj)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def choose(
    fn: Callable[..., Any],
    is_async: bool,
    probe: Probe | None,
    remaining: int | None,
    profile: MachineProfile | None,
) -> MapPlan:
    """Return the plan for *fn*; *remaining* is how many items are left after the probe, if known."""
    if is_async:
        return MapPlan("async", "the function is a coroutine function, so its items run as tasks on the loop")
    if probe is None or not probe.samples:
        return MapPlan("serial", "there were no items to measure")
    n = len(probe.samples)
    wall = max(probe.wall, 1e-9)
    ratio = min(1.0, probe.cpu / wall)
    per_item = wall / n
    measured = {"cpu_ratio": round(ratio, 3), "seconds_per_item": per_item, "probed_items": float(n)}
    roundtrip = profile.process_roundtrip if profile else DEFAULT_PROCESS_ROUNDTRIP
    startup = profile.process_startup if profile else DEFAULT_PROCESS_STARTUP
    cpus = profile.cpus if profile else default_process_workers()
    source = (
        "costs from the saved machine profile"
        if profile
        else "default costs: no machine profile saved (`trilane bench` measures one)"
    )
    seen = f"the first {n} item{'s' if n != 1 else ''} took {per_item * 1e3:.3g} ms each with CPU/wall {ratio:.2f}"
    if ratio < IO_BOUND_BELOW:
        return MapPlan("thread", f"I/O-bound: {seen}, so threads overlap the waiting", measured=measured)
    if cpus < 2:
        return MapPlan(
            "serial",
            f"CPU-bound ({seen}) on 1 CPU: no backend runs it faster than serial; {source}",
            measured=measured,
            profile=profile is not None,
        )
    if remaining is not None and per_item * remaining < 2 * startup:
        return MapPlan(
            "serial",
            f"CPU-bound ({seen}), but the {remaining} items left are about {per_item * remaining * 1e3:.3g} ms "
            f"of work, less than twice a process pool's start-up ({startup * 1e3:.3g} ms); {source}",
            measured=measured,
            profile=profile is not None,
        )
    for what, obj in (("the function", fn), ("the items", probe.sample_item)):
        problem = _pickle_problem(obj)
        if problem is not None:
            return MapPlan(
                "thread",
                f"CPU-bound ({seen}), but {what} cannot be pickled ({problem}), so it cannot go to worker "
                "processes; threads share the GIL and will not run it in parallel: define the function at "
                "module top level to get processes",
                measured=measured,
            )
    chunk_note = (
        f"; items are chunked because one process round trip (~{roundtrip * 1e6:.0f} µs) is more than an item"
        if per_item < 10 * roundtrip
        else ""
    )
    return MapPlan(
        "process",
        f"CPU-bound: {seen}, and it pickles, so {cpus} processes run it in parallel{chunk_note}; {source}",
        measured=measured,
        profile=profile is not None,
    )
