"""Run CPython's ``test.test_asyncio`` on the stock loop and on ``trilane.Loop``, and compare.

Usage (from the repository root)::

    python conformance/run.py                 # full suite, both loops, 2 jobs at a time
    python conformance/run.py --debug         # the same with PYTHONASYNCIODEBUG=1
    python conformance/run.py --subset        # the CI subset
    python conformance/run.py -m test_tasks -m test_events --policy fifo

Each test module runs twice, in fresh interpreters: once on the stock loop and
once with every real event loop routed to ``trilane.Loop`` (see
``conformance/_child.py`` for exactly what is routed and what is not).  Jobs
run in parallel (``--jobs``, default 2).  The per-module table shows passes,
failures (fail + error + crashed), skips and expected failures for each loop.

A test *regresses* when it passes on the stock loop but not on trilane.  Each
regression is rerun alone on trilane (``--reruns``, default 2); one that then
passes is reported as flaky (timing-sensitive tests on a loaded machine), not
as a regression.  Exit status: 0 when nothing regressed, 1 otherwise.

::

    run.py ──┬─ job: _child.py --loop stock   test_x ─► results/stock/test_x.jsonl
             ├─ job: _child.py --loop trilane test_x ─► results/trilane/test_x.jsonl
             │      ... 2 at a time ...
             └─ compare per test id ─► table, regressions ─► rerun alone ─► exit status
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import test.test_asyncio

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_child.py"
PACKAGE = "test.test_asyncio"

#: Modules left out of every run, with the reason (also listed in docs/conformance.md).
EXCLUDED: dict[str, str] = {}

#: The CI subset: every module in which tests run on trilane.Loop.  Left out:
#: modules that create no loop (test_protocols, test_transports), or only
#: asyncio's mock base-class loops (test_pep492, test_runners), or test
#: Windows code (test_proactor_events, test_windows_*).  The full run takes
#: about 10 seconds more.
SUBSET = [
    "test_base_events",
    "test_buffered_proto",
    "test_context",
    "test_events",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_queues",
    "test_selector_events",
    "test_sendfile",
    "test_server",
    "test_sock_lowlevel",
    "test_ssl",
    "test_sslproto",
    "test_streams",
    "test_subprocess",
    "test_taskgroups",
    "test_tasks",
    "test_threads",
    "test_timeouts",
    "test_unix_events",
    "test_waitfor",
]

#: Rough stock run times (seconds), to start the longest jobs first.
_WEIGHT = {"test_subprocess": 11, "test_ssl": 9, "test_tasks": 14, "test_taskgroups": 6, "test_events": 5}

PASSED = {"pass", "xfail"}


def all_modules() -> list[str]:
    """Return every ``test_*`` module of the installed ``test.test_asyncio``."""
    folder = Path(test.test_asyncio.__file__).parent
    return sorted(p.stem for p in folder.glob("test_*.py"))


def _run_job(loop: str, names: list[str], out: Path, args: argparse.Namespace) -> tuple[float, int, str]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    if args.debug:
        env["PYTHONASYNCIODEBUG"] = "1"
    cmd = [sys.executable, str(CHILD), "--loop", loop, "--policy", args.policy, "--out", str(out)]
    cmd += ["--timeout", str(args.test_timeout), *names]
    if args.keep_test_loop:
        cmd.insert(2, "--keep-test-loop")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.job_timeout, check=False)
    except subprocess.TimeoutExpired as exc:  # the tests it finished are in its results file
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return time.monotonic() - t0, -9, f"killed after --job-timeout {args.job_timeout:g} s\n{stderr[-3000:]}"
    return time.monotonic() - t0, proc.returncode, proc.stderr[-3000:]


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """Return the final outcome of each test in a job's JSON lines file.

    A test that started and never finished (the child crashed or hung) is ``crashed``.
    """
    results: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return results
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row["outcome"] == "info":
            continue
        if row["outcome"] == "started":
            results.setdefault(row["id"], {"id": row["id"], "outcome": "crashed"})
            continue
        previous = results.get(row["id"])
        # Subtest failures and the test's own outcome share an id: keep the worst.
        if previous is None or previous["outcome"] in ("crashed", "pass"):
            results[row["id"]] = row
    return results


def count_loops(path: Path) -> tuple[int, int]:
    """Return how many loops a job created on trilane, and how many not (from its ``<loops>`` line)."""
    routed = other = 0
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"<loops>"' in line:
                for name, n in json.loads(line)["created"].items():
                    if name == "debug mode":
                        continue
                    if name.startswith("trilane: "):
                        routed += n
                    else:
                        other += n
    return routed, other


def summarize(results: dict[str, dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in results.values():
        outcome = row["outcome"]
        counts["pass" if outcome == "pass" else "fail" if outcome in ("fail", "error", "crashed") else outcome] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--module", action="append", default=[], help="run only this module (repeatable)")
    parser.add_argument("--subset", action="store_true", help="run the CI subset")
    parser.add_argument("--debug", action="store_true", help="asyncio debug mode on (PYTHONASYNCIODEBUG=1)")
    parser.add_argument("--policy", default="fifo", help="trilane policy for the trilane runs (default fifo)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs run at once (default 2)")
    parser.add_argument("--reruns", type=int, default=2, help="reruns of a regressed test before it counts")
    parser.add_argument("--test-timeout", type=float, default=120.0, help="seconds before a test counts as hung")
    parser.add_argument("--job-timeout", type=float, default=900.0, help="seconds before a job is killed")
    parser.add_argument("--keep-test-loop", action="store_true", help="do not rebase utils.TestLoop on trilane")
    parser.add_argument("--only-trilane", action="store_true", help="skip the stock runs (no comparison)")
    parser.add_argument("--results", type=Path, help="keep the JSON lines results in this directory")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    modules = args.module or (SUBSET if args.subset else all_modules())
    modules = [m for m in modules if m not in EXCLUDED]
    loops = ["trilane"] if args.only_trilane else ["stock", "trilane"]
    workdir = args.results or Path(tempfile.mkdtemp(prefix="trilane-conformance-"))
    for loop in loops:
        (workdir / loop).mkdir(parents=True, exist_ok=True)
        for module in modules:
            (workdir / loop / f"{module}.jsonl").unlink(missing_ok=True)

    jobs = sorted(((loop, m) for m in modules for loop in loops), key=lambda j: -_WEIGHT.get(j[1], 1))
    mode = f"policy={args.policy}, debug={'on' if args.debug else 'off'}"
    print(f"conformance: {len(modules)} modules × {loops}, {mode}, {args.jobs} jobs", flush=True)
    t_start = time.monotonic()
    job_info: dict[tuple[str, str], tuple[float, int, str]] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            job: pool.submit(_run_job, job[0], [f"{PACKAGE}.{job[1]}"], workdir / job[0] / f"{job[1]}.jsonl", args)
            for job in jobs
        }
        for job, future in futures.items():
            job_info[job] = future.result()

    rows = []
    regressions: list[tuple[str, dict[str, Any]]] = []
    broken_jobs: list[str] = []
    totals: dict[str, Counter[str]] = {loop: Counter() for loop in loops}
    for module in modules:
        per_loop = {loop: read_results(workdir / loop / f"{module}.jsonl") for loop in loops}
        counts = {loop: summarize(per_loop[loop]) for loop in loops}
        for loop in loops:
            totals[loop].update(counts[loop])
            _, rc, stderr = job_info[(loop, module)]
            if rc != 0 or not per_loop[loop]:
                broken_jobs.append(f"{loop} {module} (exit status {rc})")
                print(f"!! {loop} job for {module} exited with {rc}:\n{stderr}", flush=True)
        if "stock" in per_loop:
            for test_id, row in per_loop["stock"].items():
                if row["outcome"] not in PASSED:
                    continue
                mine = per_loop["trilane"].get(test_id, {"id": test_id, "outcome": "missing"})
                if mine["outcome"] not in PASSED:  # failed, crashed, missing, or skipped on trilane only
                    regressions.append((module, mine))
        seconds = {loop: job_info[(loop, module)][0] for loop in loops}
        rows.append((module, counts, seconds, count_loops(workdir / "trilane" / f"{module}.jsonl")))

    flaky: list[str] = []
    hard: list[tuple[str, dict[str, Any]]] = []
    for module, row in regressions:
        test_id = row["id"]
        if " (" in test_id or row["outcome"] == "missing":
            hard.append((module, row))  # a subtest, or a test trilane never ran: cannot rerun alone
            continue
        for attempt in range(args.reruns):
            out = workdir / "trilane" / f"rerun-{test_id}-{attempt}.jsonl"
            _run_job("trilane", [test_id], out, args)
            again = read_results(out).get(test_id, {"outcome": "missing"})
            if again["outcome"] in PASSED:
                flaky.append(f"{test_id} (failed, then passed on rerun {attempt + 1})")
                break
        else:
            hard.append((module, row))

    print_table(rows, totals, loops, args.markdown)
    print(f"\nwall time {time.monotonic() - t_start:.0f} s; results in {workdir}")
    for line in flaky:
        print(f"flaky: {line}")
    if broken_jobs:
        print(f"\n{len(broken_jobs)} job(s) did not finish cleanly: {', '.join(broken_jobs)}")
    if hard:
        print(f"\n{len(hard)} test(s) pass on the stock loop but not on trilane.Loop:")
        for _module, row in hard:
            print(f"  {row['id']}: {row['outcome']}")
            detail = row.get("detail", "")
            if detail:
                print("    " + "\n    ".join(detail.strip().splitlines()[-12:]))
        return 1
    if broken_jobs:
        return 1
    if "stock" in loops:
        print("\nevery test that passes on the stock loop passes on trilane.Loop")
    return 0


def print_table(
    rows: list[tuple[str, dict[str, Counter[str]], dict[str, float], tuple[int, int]]],
    totals: dict[str, Counter[str]],
    loops: list[str],
    markdown: bool,
) -> None:
    head = ["module"]
    for loop in loops:
        head += [f"{loop} pass", f"{loop} fail", f"{loop} skip", f"{loop} s"]
    head.append("loops on trilane / not")
    lines = []
    all_loops = [0, 0]
    for module, counts, seconds, (routed, other) in rows:
        cells = [module]
        for loop in loops:
            c = counts[loop]
            cells += [str(c["pass"] + c["xfail"]), str(c["fail"]), str(c["skip"]), f"{seconds[loop]:.1f}"]
        cells.append(f"{routed} / {other}")
        all_loops[0] += routed
        all_loops[1] += other
        lines.append(cells)
    total = ["total"]
    for loop in loops:
        c = totals[loop]
        total += [str(c["pass"] + c["xfail"]), str(c["fail"]), str(c["skip"]), ""]
    total.append(f"{all_loops[0]} / {all_loops[1]}")
    lines.append(total)
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
        for cells in lines:
            print("| " + " | ".join(cells) + " |")
        return
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    for cells in [head, *lines]:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        print("  ".join(padded))


if __name__ == "__main__":
    sys.exit(main())
