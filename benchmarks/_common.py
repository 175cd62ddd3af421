"""Shared helpers for trilane's benchmark scripts: loop configurations, repetition, tables.

Every benchmark in ``benchmarks/`` runs trilane side by side with its peers in
one run and prints a table of ratios against a baseline (stock asyncio for
the loop benchmarks).  This module holds the parts they share::

    configs (asyncio, uvloop, trilane <policy>, ...)
        │
        ▼
    repeat(configs, n, measure)      round r: config 1, config 2, ... config k
        │                            (alternating, so slow drift on a shared
        │                             machine hits every config alike)
        ▼
    {config name: [result of each round]}  ──►  best()  ──►  print_table()

Each measurement gets a fresh event loop (``asyncio.Runner(loop_factory=...)``)
and a ``gc.collect()`` first, so no run inherits another's garbage.

Other benchmark authors may import it: ``from _common import print_table``
works when the script runs from ``benchmarks/``, since Python puts a
script's own directory first on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import perf_counter, process_time
from typing import Any, TypeVar

T = TypeVar("T")


_CLOCKS: dict[str, Callable[[], float]] = {"wall": perf_counter, "cpu": process_time}
_clock_name = "wall"


def set_clock(name: str) -> None:
    """Choose what :func:`now` reads: ``"wall"`` (``perf_counter``, the default) or ``"cpu"``.

    ``cpu`` is this process's CPU time (``process_time``: user + system, all
    threads), which other processes on a busy machine disturb far less than
    wall time.  The loops run in this one process, so for the CPU-bound
    benchmarks it measures the same work; it leaves out time spent idle.
    """
    global _clock_name
    if name not in _CLOCKS:
        raise ValueError(f"unknown clock {name!r}; choose from {', '.join(_CLOCKS)}")
    _clock_name = name


def clock_name() -> str:
    """The clock :func:`now` reads: ``"wall"`` or ``"cpu"``."""
    return _clock_name


def now() -> float:
    """Read the benchmark clock chosen with :func:`set_clock`, in seconds."""
    return _CLOCKS[_clock_name]()


@dataclass(frozen=True)
class LoopConfig:
    """One event loop to benchmark: a display name and how to run a coroutine on a fresh one."""

    name: str
    #: Runs the coroutine to completion on a new loop and returns its result.
    runner: Callable[[Coroutine[Any, Any, Any]], Any]
    #: True for trilane loops, where ``trilane.spawn(..., priority=)`` means something.
    trilane: bool = False
    policy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def run(self, make: Callable[[LoopConfig], Coroutine[Any, Any, T]]) -> T:
        """Run ``make(self)`` on a fresh loop of this kind and return its result."""
        gc.collect()
        return self.runner(make(self))  # type: ignore[no-any-return]


def _run_with_factory(factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def asyncio_config() -> LoopConfig:
    """Stock asyncio's selector loop."""
    return LoopConfig("asyncio", partial(_run_with_factory, asyncio.new_event_loop))


def uvloop_config() -> LoopConfig | None:
    """uvloop, or ``None`` (with a note on stderr) when it is not installed."""
    try:
        import uvloop
    except ImportError:
        print("note: uvloop is not installed (pip install 'trilane[bench]'); skipping it", file=sys.stderr)
        return None
    return LoopConfig("uvloop", partial(_run_with_factory, uvloop.new_event_loop))


def trilane_config(policy: str) -> LoopConfig:
    """trilane's loop with the named policy, built through ``asyncio.Runner(loop_factory=...)``."""
    import trilane

    factory = partial(trilane.new_event_loop, policy=policy)
    return LoopConfig(f"trilane {policy}", partial(_run_with_factory, factory), trilane=True, policy=policy)


def stats_off_configs(policy: str = "fifo") -> list[LoopConfig]:
    """trilane with per-callback timing off (``new_event_loop(stats=False)``), if this trilane has the option."""
    import trilane

    if "stats" not in inspect.signature(trilane.new_event_loop).parameters:
        return []
    make: Any = trilane.new_event_loop  # typed loosely: older trilanes have no stats parameter
    factory = partial(make, policy=policy, stats=False)
    return [LoopConfig(f"trilane {policy} stats=off", partial(_run_with_factory, factory), trilane=True, policy=policy)]


def watchdog_configs(policy: str = "fifo") -> list[LoopConfig]:
    """trilane with its watchdog off and on, through ``trilane.run(..., watchdog=...)``.

    Empty when this trilane's ``run()`` has no ``watchdog`` parameter.
    """
    import trilane

    if "watchdog" not in inspect.signature(trilane.run).parameters:
        return []
    watchdog_cls = getattr(trilane, "Watchdog", None)

    run: Any = trilane.run  # typed loosely: older trilanes have no watchdog parameter

    def off(coro: Coroutine[Any, Any, T]) -> T:
        return run(coro, policy=policy, watchdog=None)  # type: ignore[no-any-return]

    def on(coro: Coroutine[Any, Any, T]) -> T:
        if watchdog_cls is None:  # the default of run() is "on"
            return run(coro, policy=policy)  # type: ignore[no-any-return]
        return run(coro, policy=policy, watchdog=watchdog_cls())  # type: ignore[no-any-return]

    return [
        LoopConfig(f"trilane {policy} wd=off", off, trilane=True, policy=policy),
        LoopConfig(f"trilane {policy} wd=on", on, trilane=True, policy=policy),
    ]


class _Record:
    """A per-task record the size of trilane's TaskInfo (nine fields), for the floor configs."""

    __slots__ = ("a", "b", "c", "d", "e", "f", "g", "h", "i")

    def __init__(self) -> None:
        self.a = self.b = self.c = self.d = self.e = self.f = self.g = self.h = self.i = 0.0


_RECORD: contextvars.ContextVar[_Record] = contextvars.ContextVar("bench_record")


class _RecordLoop(asyncio.SelectorEventLoop):
    """Stock asyncio, plus one record object per task, kept alive with the task."""

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        task = super().create_task(coro, name=name, context=context)
        task._bench_record = _Record()  # type: ignore[attr-defined]
        return task


class _ContextRecordLoop(asyncio.SelectorEventLoop):
    """Stock asyncio, plus one record per task set in the task's own context (trilane's design)."""

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        if context is None:
            context = contextvars.copy_context()
            context.run(_RECORD.set, _Record())
        return super().create_task(coro, name=name, context=context)


def floor_configs() -> list[LoopConfig]:
    """Stock asyncio with the per-task bookkeeping trilane needs, and nothing else of trilane.

    These show what keeping a record per task costs by itself, on asyncio's
    own C tasks: the floor for any pure-Python loop that accounts per task.
    """
    return [
        LoopConfig("floor: asyncio + record/task", partial(_run_with_factory, _RecordLoop)),
        LoopConfig("floor: asyncio + ctx record/task", partial(_run_with_factory, _ContextRecordLoop)),
    ]


def standard_configs(policies: Sequence[str]) -> list[LoopConfig]:
    """asyncio, uvloop (when installed), then trilane with each of *policies*."""
    configs = [asyncio_config()]
    uv = uvloop_config()
    if uv is not None:
        configs.append(uv)
    configs.extend(trilane_config(p) for p in policies)
    return configs


def repeat(
    configs: Sequence[LoopConfig],
    rounds: int,
    make: Callable[[LoopConfig], Coroutine[Any, Any, T]],
    *,
    progress: bool = True,
) -> dict[str, list[T]]:
    """Run *make* on every config, *rounds* times, alternating configs within each round."""
    results: dict[str, list[T]] = {c.name: [] for c in configs}
    for r in range(rounds):
        # Alternate the order too, so no config always runs right after the same one.
        order = list(configs) if r % 2 == 0 else list(reversed(configs))
        for config in order:
            if progress:
                print(f"  round {r + 1}/{rounds}: {config.name:<24}", end="\r", file=sys.stderr, flush=True)
            results[config.name].append(config.run(make))
    if progress:
        print(" " * 60, end="\r", file=sys.stderr, flush=True)
    return results


def ratio(value: float, base: float) -> str:
    """Format ``value / base`` as ``1.23x`` (``-`` when undefined)."""
    if base == 0 or value != value or base != base:
        return "-"
    return f"{value / base:.2f}x"


_markdown = False


def set_markdown(on: bool) -> None:
    """Make :func:`print_table` print GitHub Markdown tables (for pasting into docs) instead of plain text."""
    global _markdown
    _markdown = on


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], note: str = "") -> None:
    """Print a table: the first column left-aligned, the others right-aligned (Markdown after ``set_markdown``)."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    sep = " | " if _markdown else "  "

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        text = sep.join([first, *rest])
        return f"| {text} |" if _markdown else text.rstrip()

    print()
    print(f"**{title}**\n" if _markdown else title)
    print(line(cells[0]))
    if _markdown:
        print("|" + "|".join(("-" * (w + 1)) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    else:
        print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    if note:
        print(f"\n{note}" if _markdown else note)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def gc_collections() -> tuple[int, ...]:
    """How many collections the garbage collector has run so far, per generation."""
    return tuple(s["collections"] for s in gc.get_stats())


def gc_delta(before: tuple[int, ...]) -> str:
    """Format the collections run since *before* as ``gen0/gen1/gen2``."""
    return "/".join(str(a - b) for a, b in zip(gc_collections(), before, strict=True))


def percentile(values: Sequence[float], q: float) -> float:
    """Return the *q*-quantile (0..1) of *values* by nearest rank (``nan`` when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=repo, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine_note() -> str:
    """One line about where and on what the numbers were taken, and which trilane source ran."""
    try:
        import trilane

        version = trilane.__version__
        package = Path(trilane.__file__).resolve().parent
    except ImportError:  # pragma: no cover - benchmarks run with trilane installed
        return "trilane is not importable"
    repo = Path(__file__).resolve().parent.parent
    if package == repo / "src" / "trilane":
        source = f"this repo @ {_git(repo, 'rev-parse', '--short', 'HEAD') or '?'}"
        if _git(repo, "status", "--porcelain", "--", "src"):
            source += " + uncommitted changes in src/"
    else:
        # For example a clean copy of one commit (see docs/loop-benchmarks.md), with the
        # commit's name in a COMMIT file next to its src/.
        source = str(package)
        marker = package.parent.parent / "COMMIT"
        if marker.is_file():
            source += f" ({marker.read_text().strip()})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"python {platform.python_version()} ({platform.machine()}), {os.cpu_count()} cpus, "
        f"load avg {load}; trilane {version} from {source}"
    )
