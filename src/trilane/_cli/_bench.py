"""Measure processes, threads and coroutines on this machine, and fill in the seed's table.

It measures, for each of the three models: switch cost; communication cost
by payload (1 KiB, 1 MiB, 10 MiB); start-up time; memory per unit; I/O-bound
throughput at 1, 10, 100 and 1000 concurrent waits; CPU-bound speedup.  Then
it prints the seed's table (model | advantages | costs | when to use) with the
numbers filled in; the "when to use" column is derived from the measurements
by the rules in docs/bench.md.

It writes DIR/bench.md, DIR/bench.json and DIR/bench.png (the chart needs
matplotlib: pip install "trilane[plot]"), and saves the machine profile that
trilane.map(backend="auto") reads: $TRILANE_PROFILE, else
$XDG_CACHE_HOME/trilane/profile.json, else ~/.cache/trilane/profile.json.

A full run takes about a minute or two (under 5 on 2 cores); --quick about 10 s.
Other programs running at the same time make the numbers worse: each timing
is the best of several runs.

examples:
  trilane bench                      # full run, writes ./bench.{md,json,png}
  trilane bench --quick --out /tmp/b # a fast, rougher run
  trilane bench --no-profile         # measure without saving the machine profile
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._profile import MachineProfile, profile_path, save_profile
from . import _bench_measure as measure
from ._bench_report import busy_note, table_rows, to_json, to_markdown, write_chart

__all__ = ["add_arguments", "run", "run_bench"]

# How much each measurement does.  quick: ~10 s; full: ~1 min on 2 idle cores.
SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "repeat": 3,
        "switch": (1000, 10_000),
        "rounds": {"1 KiB": 100, "1 MiB": 10, "10 MiB": 3},
        "roundtrip": (200, 500),
        "startup": (5, 100, 2000),
        "memory": (5000, 100, 3),
        "io": (3, 16),
        "cpu": (0.02, 4),
    },
    "full": {
        "repeat": 5,
        "switch": (5000, 50_000),
        "rounds": {"1 KiB": 500, "1 MiB": 30, "10 MiB": 5},
        "roundtrip": (1000, 2000),
        "startup": (20, 500, 10_000),
        "memory": (20_000, 300, 6),
        "io": (10, 64),
        "cpu": (0.05, 8),
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``trilane bench``'s arguments to *parser*."""
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run (about 10 s)")
    parser.add_argument("--out", default=".", metavar="DIR", help="where to write bench.md/json/png (default: .)")
    parser.add_argument("--no-profile", action="store_true", help="do not save the machine profile")


def run_bench(quick: bool, step: Callable[[str], None]) -> dict[str, Any]:
    """Take every measurement; call *step* with a label before each; return the results dict."""
    s = SETTINGS["quick" if quick else "full"]
    repeat: int = s["repeat"]
    cpus = os.cpu_count() or 1
    started = time.perf_counter()
    results: dict[str, Any] = {
        "quick": quick,
        "repeat": repeat,
        "io_wait": measure.IO_WAIT,
        "machine": {
            "cpus": cpus,
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "start_method": measure.start_method(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_before": os.getloadavg()[0],
        },
    }
    step("switch cost")
    results["switch"] = measure.switch_cost(repeat, *s["switch"])
    step("pool round trips")
    rt_proc, rt_thread = s["roundtrip"]
    results["roundtrip"] = {
        "process": measure.pool_roundtrip("process", repeat, rt_proc),
        "thread": measure.pool_roundtrip("thread", repeat, rt_thread),
    }
    step("communication cost by payload")
    results["communication"] = measure.communication(repeat, s["rounds"])
    step("start-up time")
    results["startup"] = measure.startup(repeat, *s["startup"])
    step("memory per unit")
    results["memory"] = measure.memory(*s["memory"])
    step("I/O-bound throughput")
    waits_each, cap = s["io"]
    results["io_throughput"] = measure.io_throughput(repeat, waits_each, cap)
    step("CPU-bound speedup")
    item_seconds, per_cpu = s["cpu"]
    results["cpu_speedup"] = measure.cpu_speedup(repeat, item_seconds, per_cpu * cpus)
    results["cpu_speedup"]["items"] = per_cpu * cpus
    results["machine"]["load_after"] = os.getloadavg()[0]
    results["machine"]["cpu_share"] = results["cpu_speedup"]["cpu_share"]
    results["seconds"] = time.perf_counter() - started
    return results


def profile_of(results: dict[str, Any]) -> MachineProfile:
    """The machine profile that ``trilane.map(backend="auto")`` reads, from bench results."""
    return MachineProfile(
        cpus=results["machine"]["cpus"],
        process_roundtrip=results["roundtrip"]["process"],
        thread_roundtrip=results["roundtrip"]["thread"],
        async_switch=results["switch"]["async"],
        process_startup=results["startup"]["process_pool"],
        measured_at=time.time(),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``trilane bench``; return the exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(highlight=False, markup=False)  # it prints paths and pip extras like [plot]
    err = Console(stderr=True, highlight=False)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.print(f"[bold red]trilane bench:[/] cannot create {escape(str(out))!r}: {exc.strerror}")
        return 2
    steps = 7
    with Progress(
        TextColumn("[bold]bench[/] {task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("starting", total=steps)
        first = [True]

        def step(label: str) -> None:
            if not first[0]:
                progress.advance(task)
            first[0] = False
            progress.update(task, description=label)

        results = run_bench(args.quick, step)
        progress.update(task, completed=steps, description="done")

    table = Table(title=f"processes, threads and coroutines on this machine ({results['machine']['cpus']} CPUs)")
    for column, ratio in (("model", 1), ("advantages", 3), ("costs", 4), ("when to use", 4)):
        table.add_column(column, ratio=ratio, overflow="fold")
    for row in table_rows(results):
        table.add_row(*row)
    console.print(table)
    if busy := busy_note(results):
        console.print(busy)

    (out / "bench.md").write_text(to_markdown(results), encoding="utf-8")
    (out / "bench.json").write_text(to_json(results), encoding="utf-8")
    wrote = ["bench.md", "bench.json"]
    if write_chart(results, out / "bench.png"):
        wrote.append("bench.png")
    else:
        console.print(
            'no chart: matplotlib is not installed. Install it with: pip install "trilane[plot]"', markup=False
        )
    console.print(f"wrote {', '.join(str(out / name) for name in wrote)} in {results['seconds']:.1f} s")
    if args.no_profile:
        console.print(f"machine profile not saved (--no-profile); it would go to {profile_path()}")
    else:
        try:
            console.print(
                f'machine profile saved to {save_profile(profile_of(results))} (read by backend="auto")', markup=False
            )
        except OSError as exc:
            console.print(f"could not save the machine profile to {profile_path()}: {exc}")
    sys.stdout.flush()
    return 0
