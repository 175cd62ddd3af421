"""The seed's story, told on this machine against an embedded mock API (offline, under a minute).

  1. the seed's count() example: three coroutines finish in about 1 s, not 3;
  2. checking 500 "risk items" against an API with ~50 ms latency: serially
     (a sample, extrapolated), with threads, with processes, async, and auto,
     in a table of wall time, items/s and failures; some calls hang, and
     timeouts + retries keep them from stalling the run;
  3. the requests-in-async trap (a blocking HTTP call inside `async def`),
     caught by trilane's watchdog, with the fix;
  4. priority: an urgent task's latency under bulk load, fifo vs priority.

The API is a stdlib HTTP server on 127.0.0.1 (a random free port) that this
command starts and stops; the clients are the stdlib's urllib (blocking) and
a small asyncio-streams HTTP GET, so nothing beyond `pip install trilane` is
needed.

examples:
  trilane demo            # the full story, about 30 s
  trilane demo --quick    # a smaller version for CI, about 10 s
  python -m trilane demo
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import trilane

from ._mockapi import MockAPI, afetch_risk, ahttp_get, behaviour, fetch_risk, http_get

__all__ = ["add_arguments", "run"]

TIMEOUT = 0.5  # per attempt
RETRIES = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``trilane demo``'s arguments to *parser*."""
    parser.add_argument("--quick", action="store_true", help="a smaller version (100 items), for CI")


def run(args: argparse.Namespace) -> int:
    """Run ``trilane demo``; return the exit code."""
    console = Console(highlight=False)
    started = time.perf_counter()
    quick: bool = args.quick
    with MockAPI(latency=0.05) as api:
        console.rule("[bold]trilane demo[/]")
        console.print(f"mock risk API on {api.url}: ~50 ms per call; some calls are slow, hang or fail")
        step_count(console)
        step_risk_items(console, api, 100 if quick else 500, quick)
        step_trap(console, api, 4 if quick else 8)
        step_priority(console, 60 if quick else 100, 5 if quick else 10)
        requests = api.requests
    console.rule()
    console.print(
        f"demo finished in {time.perf_counter() - started:.1f} s ({requests} API calls). "
        "Next: `trilane run MODULE:FUNCTION items.jsonl -o out.jsonl` for your own items, "
        "and `trilane bench` to see which model suits this machine."
    )
    return 0


# -- 1. count() ----------------------------------------------------------------------------------


def step_count(console: Console) -> None:
    """The seed's count() example: three coroutines, each sleeping 1 s, together in about 1 s."""
    console.rule("1. three coroutines, one thread: the seed's count()")

    async def count() -> None:
        console.print("One")
        await asyncio.sleep(1)
        console.print("Two")

    async def main() -> None:
        await asyncio.gather(count(), count(), count())

    start = time.perf_counter()
    trilane.run(main())
    console.print(
        f"[bold]three count() coroutines took {time.perf_counter() - start:.2f} s[/] on trilane's loop "
        "(each sleeps 1 s: they wait together, not one after another)"
    )


# -- 2. risk items -------------------------------------------------------------------------------


@dataclass
class Trial:
    """One row of the risk-items table."""

    how: str
    wall: float
    items: int
    failed: int
    retried: int
    hung: list[int]
    plan: str
    setting: str
    extrapolated: bool = False


def _trial(
    console: Console,
    label: str,
    fn: Callable[[int], Any],
    items: list[int],
    total: int,
    **options: Any,
) -> Trial:
    failed = retried = 0
    hung: list[int] = []
    with Progress(
        TextColumn(f"  {label:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a bar that cannot redraw only leaves blank lines behind
    ) as progress:
        task = progress.add_task(label, total=len(items))
        start = time.perf_counter()
        results = trilane.map(fn, items, timeout=TIMEOUT, retries=RETRIES, errors="collect", **options)
        for outcome in results.outcomes():
            if not outcome.ok:
                failed += 1
            if outcome.attempts > 1:
                retried += 1
                if behaviour(outcome.item) == "hang":
                    hung.append(outcome.item)
            progress.advance(task)
        wall = time.perf_counter() - start
    scale = total / len(items)
    return Trial(
        label,
        wall * scale,
        total,
        round(failed * scale),
        round(retried * scale),
        sorted(hung),
        f"{results.plan.backend}: {results.plan.reason}",
        f"{results.plan.backend}, {results.plan.workers or results.plan.concurrency} workers",
        extrapolated=scale != 1,
    )


def step_risk_items(console: Console, api: MockAPI, n: int, quick: bool) -> None:
    """Check n risk items against the API five ways, and print the table."""
    console.rule(f"2. checking {n} risk items against the API")
    console.print(
        f"every way uses timeout={TIMEOUT} s per attempt and retries={RETRIES}; "
        f"items with n % 100 == 13 hang on their first call, n % 50 == 7 get a 503 first, "
        f"n % 100 == 77 always fail"
    )
    items = list(range(n))
    sample = items[:: max(1, n // 20)][:20]  # evenly spaced: ordinary items only, as most are

    def sync(run: str) -> Callable[[int], Any]:
        return functools.partial(fetch_risk, api.url, run, timeout=TIMEOUT + 0.5)

    def asyn(run: str) -> Callable[[int], Any]:
        return functools.partial(afetch_risk, api.url, run)

    threads, procs, conc = (32, 8, 100) if quick else (64, 16, 200)
    # A thread whose call passed its timeout cannot be killed: the pool warns that it is still
    # running when the map ends.  Here that is the point being made, so keep the story readable.
    pool_logger = logging.getLogger("trilane")
    level = pool_logger.level
    pool_logger.setLevel(logging.ERROR)
    try:
        trials = [
            _trial(console, "serial", sync("serial"), sample, n, backend="serial"),
            _trial(console, "threads", sync("threads"), items, n, backend="thread", workers=threads),
            _trial(console, "processes", sync("processes"), items, n, backend="process", workers=procs),
            _trial(console, "async", asyn("async"), items, n, backend="async", concurrency=conc),
            _trial(console, "auto", sync("auto"), items, n, backend="auto", workers=threads),
        ]
    finally:
        pool_logger.setLevel(level)
    table = Table(title=f"{n} risk items, ~50 ms per API call")
    for column in ("how", "wall time", "items/s", "failed", "retried", "speedup"):
        table.add_column(column, justify="left" if column == "how" else "right")
    base = trials[0].wall
    settings = {
        "serial": "1 at a time",
        "threads": f"{threads} threads",
        "processes": f"{procs} processes",
        "async": f"{conc} coroutines",
    }
    for t in trials:
        how = f"{t.how} ({settings.get(t.how, t.setting)})"
        wall = f"{t.wall:.2f} s" + (" *" if t.extrapolated else "")
        failed, retried = ("*", "*") if t.extrapolated else (str(t.failed), str(t.retried))
        table.add_row(how, wall, f"{t.items / t.wall:.0f}", failed, retried, f"{base / t.wall:.0f}×")
    console.print(table)
    console.print(
        f"* serial ran a sample of {len(sample)} evenly spaced items (ordinary ones, as most are) "
        f"and its time is scaled to {n} items; serially, each hanging item would add its timeouts too."
    )
    console.print(f"auto chose {trials[-1].plan}")
    hung = trials[1].hung
    if hung:
        console.print(
            f"[bold]timeouts + retries:[/] item(s) {', '.join(map(str, hung))} hung on their first call "
            f"(the server holds them for 30 s). Each attempt was cut off at {TIMEOUT} s and retried, "
            f"so no run stalled; without a timeout, each would have held its worker for 30 s."
        )
    broken = [i for i in items if behaviour(i) == "broken"]
    console.print(
        f"failed: item(s) {', '.join(map(str, broken))}, on every attempt ({RETRIES + 1} attempts each); "
        "errors='collect' reports them and the run goes on."
    )


# -- 3. the trap ----------------------------------------------------------------------------------


def step_trap(console: Console, api: MockAPI, k: int) -> None:
    """A blocking HTTP call inside async def: the watchdog catches it; then the fix."""
    console.rule("3. the trap: a blocking call (like requests.get) inside async def")
    url = f"{api.url}/slow?s=0.25"
    reports: list[trilane.BlockingReport] = []
    watchdog = trilane.Watchdog(threshold=0.1, on_block=reports.append, log=False)

    async def check_blocking(i: int) -> Any:
        return http_get(url)  # the trap: blocks the whole loop for 250 ms

    async def check_async(i: int) -> Any:
        return await ahttp_get(url)

    async def check_in_thread(i: int) -> Any:
        return await trilane.to_thread(http_get, url)

    async def gather(check: Callable[[int], Any]) -> None:
        await asyncio.gather(*(check(i) for i in range(k)))

    timings = {}
    for label, check in (
        ("blocking call in async def", check_blocking),
        ("await an async client", check_async),
        ("await trilane.to_thread(...)", check_in_thread),
    ):
        start = time.perf_counter()
        trilane.run(gather(check), watchdog=watchdog)
        timings[label] = time.perf_counter() - start
    table = Table(title=f"{k} concurrent calls of 250 ms each")
    table.add_column("how")
    table.add_column("wall time", justify="right")
    for label, seconds in timings.items():
        table.add_row(label, f"{seconds:.2f} s")
    console.print(table)
    if reports:
        r = reports[0]
        console.print(
            f"[bold]the watchdog caught it[/] ({len(reports)} incidents) while the loop was still blocked: "
            f"task {r.task!r}, {r.duration * 1000:.0f} ms so far, in"
        )
        # The loop's own frames say nothing about the trap: show the call's side of the stack.
        frames = [f for f in r.frames if "/trilane/_core/" not in f.filename]
        for frame in frames[-4:]:
            console.print(f"  {frame}", markup=False)
        console.print(f"  hint: {r.hint}", markup=False)
    else:
        console.print("[bold red]the watchdog saw no blocking call[/] (it should have: please report this)")
    console.print(
        "The blocking version runs the calls one after another: each holds the only thread the loop has. "
        "The fixes let them wait together."
    )


# -- 4. priority ---------------------------------------------------------------------------------


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _latency_under_load(bulk_tasks: int, samples: int) -> tuple[list[float], float]:
    loop = asyncio.get_running_loop()
    stop = False
    steps = 0

    async def bulk() -> None:
        nonlocal steps
        while not stop:
            _busy(0.001)  # one step of bulk work: 1 ms of CPU, then yield
            steps += 1
            await asyncio.sleep(0)

    lateness: list[float] = []

    async def urgent() -> None:
        for _ in range(samples):
            due = loop.time() + 0.05
            await asyncio.sleep(0.05)
            lateness.append(loop.time() - due)

    started = time.perf_counter()
    workers = [trilane.spawn(bulk(), priority=0) for _ in range(bulk_tasks)]
    await trilane.spawn(urgent(), priority=10)
    stop = True
    await asyncio.gather(*workers)
    return lateness, steps / (time.perf_counter() - started)


def step_priority(console: Console, bulk_tasks: int, samples: int) -> None:
    """An urgent task wakes every 50 ms while bulk tasks keep the loop busy: how late is it?"""
    console.rule("4. priority: an urgent task under bulk load")
    console.print(
        f"{bulk_tasks} bulk tasks each run 1 ms steps without pause; an urgent task (priority=10) "
        f"sleeps 50 ms, {samples} times, and we measure how late it wakes."
    )
    table = Table(title="urgent task's wake-up delay")
    for column in ("policy", "median delay", "worst delay", "bulk steps/s"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for policy in ("fifo", "priority"):
        lateness, rate = trilane.run(_latency_under_load(bulk_tasks, samples), policy=policy, watchdog=None)
        table.add_row(
            policy,
            f"{statistics.median(lateness) * 1000:.1f} ms",
            f"{max(lateness) * 1000:.1f} ms",
            f"{rate:.0f}",
        )
    console.print(table)
    console.print(
        "fifo (asyncio's order) puts the urgent task behind every bulk step that was ready first; "
        "priority lets it go next. The price is some bulk throughput (priority polls timers every 1 ms "
        "slice instead of once per batch); aging means the bulk work never starves."
    )
