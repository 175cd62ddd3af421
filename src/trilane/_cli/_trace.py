"""Run a Python script on trilane's loop with the watchdog on, then report where it blocked.

    trilane trace [--threshold MS] [--json FILE] script.py [args...]
    python -m trilane trace ...                 (the same)

Options go before the script; everything after it is the script's own.

Every ``asyncio.run()`` and ``asyncio.Runner()`` in the script that does not
choose its own ``loop_factory`` runs on a trilane Loop watched by one
:class:`trilane.Watchdog`, and so does every ``trilane.run()`` that leaves
its ``watchdog`` at the default.  When the script ends, the report lists:

* blocking incidents by call site: count, total and longest time, and a hint
  that names the fix;
* run, wait and blocked time per coroutine function, and the top tasks.

``--threshold MS`` sets how long one callback may run before it counts as
blocking (default 100), ``--json FILE`` also writes the report as JSON.
The exit code is the script's.

How: while the script runs (through ``runpy``, as ``python script.py``
would), ``asyncio.Runner.__init__`` is wrapped so that a missing
``loop_factory`` becomes ours; ``asyncio.run`` builds a Runner, so it is
covered too.  Our factory also installs a task factory that keeps each
task's statistics when it finishes (a script that sets its own task factory
keeps it, and its tasks are not listed).  Everything is restored afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import runpy
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._core import _run as _run_module
from .._core._loop import Loop
from .._core._stats import INFO_ATTR, TaskInfo
from .._core._watchdog import BlockingSite, Watchdog

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``trace``'s arguments to *parser*."""
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    parser.add_argument(
        "--threshold",
        type=float,
        default=100.0,
        metavar="MS",
        help="a callback running this many milliseconds counts as blocking the loop (default: 100)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="rows per table (default: 10)")
    parser.add_argument(
        "--policy", default="fifo", help="scheduling policy of the loop: fifo, priority, fair, round_robin"
    )


@dataclass
class _TaskRecord:
    name: str
    coro: str
    info: TaskInfo


class _Collector:
    """The task factory: keeps each task's TaskInfo, under its name, when the task ends."""

    def __init__(self) -> None:
        self.records: list[_TaskRecord] = []
        self.live: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self.loops = 0

    def factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        self.live.add(task)
        task.add_done_callback(self._done)
        return task

    def _record(self, task: asyncio.Task[Any]) -> _TaskRecord | None:
        info = getattr(task, INFO_ATTR, None)
        coro = task.get_coro()
        qualname = getattr(coro, "__qualname__", None) or type(coro).__name__
        if not isinstance(info, TaskInfo) or str(qualname).startswith("BaseEventLoop."):
            return None  # never ran, or asyncio.run's own clean-up tasks
        return _TaskRecord(task.get_name(), str(qualname), info)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.live.discard(task)
        record = self._record(task)
        if record is not None:
            self.records.append(record)

    def all(self) -> list[_TaskRecord]:
        """Every finished task, then every task still alive."""
        live = [r for r in (self._record(t) for t in list(self.live)) if r is not None]
        return self.records + live


@contextmanager
def _loops_routed_to(make_loop: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[None]:
    """While active, ``asyncio.Runner()`` (and so ``asyncio.run()``) without a loop_factory uses *make_loop*."""
    runner_cls = asyncio.Runner
    original = runner_cls.__init__

    def __init__(
        self: asyncio.Runner,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        original(self, debug=debug, loop_factory=make_loop if loop_factory is None else loop_factory)

    runner_cls.__init__ = __init__  # type: ignore[method-assign]
    try:
        yield
    finally:
        runner_cls.__init__ = original  # type: ignore[method-assign]


def _run_script(script: str, args: list[str]) -> int:
    """Run *script* as ``__main__`` with *args*; return its exit code, as ``python script.py`` would."""
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [script, *args]
    script_dir = os.path.dirname(os.path.abspath(script))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0


def _short(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _site_json(site: BlockingSite) -> dict[str, Any]:
    return {
        "file": site.filename,
        "line": site.lineno,
        "function": site.function,
        "count": site.count,
        "total_s": site.total,
        "max_s": site.longest,
        "hint": {"kind": site.hint.kind, "cause": site.hint.cause, "fix": site.hint.fix},
        "tasks": list(site.tasks),
        "frames": [
            {"file": f.filename, "line": f.lineno, "function": f.function, "package": f.package, "folded": f.folded}
            for f in site.last.frames
        ],
    }


def _by_coroutine(records: list[_TaskRecord]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in records:
        g = groups.setdefault(
            r.coro, {"coroutine": r.coro, "tasks": 0, "run_s": 0.0, "wait_s": 0.0, "blocked_s": 0.0, "steps": 0}
        )
        g["tasks"] += 1
        g["run_s"] += r.info.run_time
        g["wait_s"] += r.info.wait_time
        g["blocked_s"] += r.info.blocked_time
        g["steps"] += r.info.steps
    return sorted(groups.values(), key=lambda g: -float(g["run_s"]))


def build_report(
    script: str, args: list[str], code: int, wall: float, watchdog: Watchdog, collector: _Collector, top: int
) -> dict[str, Any]:
    """Return the trace report as a JSON-ready dict."""
    records = collector.all()
    tasks = sorted(records, key=lambda r: -r.info.run_time)
    return {
        "script": script,
        "args": args,
        "exit_code": code,
        "wall_s": wall,
        "threshold_s": watchdog.threshold,
        "loops": collector.loops,
        "incidents": watchdog.incidents,
        "sites": [_site_json(s) for s in watchdog.sites()],
        "coroutines": _by_coroutine(records),
        "top_tasks": [
            {
                "name": r.name,
                "coroutine": r.coro,
                "run_s": r.info.run_time,
                "wait_s": r.info.wait_time,
                "blocked_s": r.info.blocked_time,
                "steps": r.info.steps,
                "longest_step_s": r.info.longest_step,
            }
            for r in tasks[:top]
        ],
        "task_count": len(records),
    }


def print_report(report: dict[str, Any], console: Console, top: int) -> None:
    """Print the trace report as rich tables."""
    threshold = report["threshold_s"]
    console.print()
    console.rule(f"[bold]trilane trace[/]: {escape(report['script'])}")
    console.print(
        f"exit code {report['exit_code']}, {report['wall_s']:.2f} s, {report['loops']} event loop(s), "
        f"{report['task_count']} task(s); threshold {threshold * 1000:g} ms"
    )
    if report["loops"] == 0:
        console.print(
            "[yellow]The script never ran an event loop through asyncio.run() or asyncio.Runner(), "
            "so there was nothing to watch.[/]"
        )
        return
    sites = report["sites"]
    if not sites:
        console.print(f"[green]No callback blocked the event loop for {threshold * 1000:g} ms or more.[/]")
    else:
        table = Table(title=f"Where the loop blocked ({report['incidents']} incidents at {len(sites)} call sites)")
        table.add_column("count", justify="right")
        table.add_column("total ms", justify="right")
        table.add_column("max ms", justify="right")
        table.add_column("call site")
        table.add_column("hint")
        for s in sites[:top]:
            where = f"{_short(s['file'])}:{s['line']}\nin {s['function']}()"
            hint = f"[bold]{escape(s['hint']['cause'])}[/]\n{escape(s['hint']['fix'])}"
            table.add_row(str(s["count"]), _ms(s["total_s"]), _ms(s["max_s"]), escape(where), hint)
        console.print(table)
    coroutines = report["coroutines"]
    if coroutines:
        table = Table(title="Time per coroutine function (run = on the loop, wait = ready but queued)")
        for name in ("coroutine", "tasks", "run ms", "wait ms", "blocked ms", "steps"):
            table.add_column(name, justify="left" if name == "coroutine" else "right")
        for g in coroutines[:top]:
            table.add_row(
                escape(g["coroutine"]),
                str(g["tasks"]),
                _ms(g["run_s"]),
                _ms(g["wait_s"]),
                _ms(g["blocked_s"]),
                f"{g['steps']:,}",
            )
        console.print(table)
        table = Table(title="Top tasks by run time")
        for name in ("task", "coroutine", "run ms", "wait ms", "blocked ms", "longest step ms"):
            table.add_column(name, justify="left" if name in ("task", "coroutine") else "right")
        for t in report["top_tasks"]:
            table.add_row(
                escape(t["name"]),
                escape(t["coroutine"]),
                _ms(t["run_s"]),
                _ms(t["wait_s"]),
                _ms(t["blocked_s"]),
                _ms(t["longest_step_s"]),
            )
        console.print(table)


def trace(
    script: str, args: list[str], *, threshold: float = 0.1, policy: str = "fifo", top: int = 10
) -> tuple[int, dict[str, Any]]:
    """Run *script* with *args* under the watchdog; return (its exit code, the report)."""
    watchdog = Watchdog(threshold=threshold, log=False)
    collector = _Collector()

    def make_loop() -> Loop:
        loop = Loop(policy=policy)
        loop.set_block_hook(watchdog)
        loop.set_task_factory(collector.factory)
        collector.loops += 1
        return loop

    def instrument(loop: Loop, default_watchdog: bool) -> None:
        # trilane.run() in the script: watch it with our watchdog unless it chose its own.
        if default_watchdog:
            loop.set_block_hook(watchdog)
        loop.set_task_factory(collector.factory)
        collector.loops += 1

    started = time.perf_counter()
    saved_hook, _run_module.trace_hook = _run_module.trace_hook, instrument
    try:
        with _loops_routed_to(make_loop):
            code = _run_script(script, args)
    finally:
        _run_module.trace_hook = saved_hook
    wall = time.perf_counter() - started
    return code, build_report(script, args, code, wall, watchdog, collector, top)


def run(args: argparse.Namespace) -> int:
    """``trilane trace``: run the script, print the report, return the script's exit code."""
    console = Console()
    err = Console(stderr=True)
    if not Path(args.script).is_file():
        err.print(f"[red]trilane trace: no such script: {escape(args.script)}[/]")
        return 2
    if not args.threshold > 0:
        err.print(f"[red]trilane trace: --threshold must be a positive number of ms, got {args.threshold}[/]")
        return 2
    try:
        Loop(policy=args.policy).close()
    except (ValueError, TypeError) as exc:
        err.print(f"[red]trilane trace: {escape(str(exc))}[/]")
        return 2
    args_list = list(args.args[1:] if args.args[:1] == ["--"] else args.args)
    code, report = trace(args.script, args_list, threshold=args.threshold / 1000, policy=args.policy, top=args.top)
    sys.stdout.flush()
    print_report(report, console, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        console.print(f"report written to {escape(args.json)}")
    return code
