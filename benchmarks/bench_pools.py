"""Benchmark trilane's pools against their peers, side by side in one run.

    python benchmarks/bench_pools.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_pools.py --quick    # smaller sizes, fewer rounds

Sections (each prints a table with ratios):

1. throughput: 100k trivial ``inc(x)`` tasks with 2 workers.
   ProcessPool.map vs multiprocessing.Pool.map (auto chunksize), joblib,
   mpire, ProcessPoolExecutor.map (chunksize=1); ThreadPool.map vs
   ThreadPoolExecutor.map.
2. round trip: one task carrying 1 KiB / 1 MiB / 10 MiB of bytes, and a numpy
   array, there and back, against a raw ``multiprocessing.Pipe`` ``send_bytes``
   echo and ProcessPoolExecutor.
3. CPU-bound: 100 items of ~25 ms pure Python on 2 workers vs serial, and vs
   the machine's ceiling: two bare processes, already started, each running
   half the items (no pool at all).
4. start-up to the first result with 2 workers, for each start method, vs
   ProcessPoolExecutor with the same method (each trial in a fresh interpreter).

Rounds alternate between the configurations so that drift on a shared machine
hits all of them alike; each figure is the best of the rounds.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import trilane


def inc(x: int) -> int:
    return x + 1


def echo(x: Any) -> Any:
    return x


_SPIN = 0


def spin(_: object) -> int:
    """About 25 ms of pure-Python work (calibrated at start-up)."""
    total = 0
    for i in range(_SPIN):
        total += i * i % 7
    return total


def calibrate(target: float = 0.025) -> int:
    global _SPIN
    _SPIN = 100_000
    t = min(_timed(lambda: spin(0)) for _ in range(3))
    _SPIN = int(_SPIN * target / t)
    return _SPIN


def set_spin(n: int) -> None:
    global _SPIN
    _SPIN = n


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def best_of(rounds: int, configs: dict[str, Callable[[], object]]) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(rounds):
        for name, fn in configs.items():
            times[name].append(_timed(fn))
    return {k: min(v) for k, v in times.items()}


# -- 1. throughput -----------------------------------------------------------------
def bench_throughput(n: int, rounds: int) -> None:
    items = range(n)
    expect = sum(range(1, n + 1))
    ctx = mp.get_context("forkserver")
    from joblib import Parallel, delayed
    from mpire import WorkerPool

    small = max(n // 20, 1000)  # ProcessPoolExecutor chunksize=1 is far too slow for n items
    with (
        trilane.ProcessPool(2) as tpp,
        ctx.Pool(2) as mpp,
        cf.ProcessPoolExecutor(2, mp_context=ctx) as ppe,
        WorkerPool(n_jobs=2) as mpire_pool,
        trilane.ThreadPool(2) as ttp,
        cf.ThreadPoolExecutor(2) as tpe,
        Parallel(n_jobs=2) as joblib_par,
    ):
        for warm in (tpp.map, mpp.map, ppe.map, ttp.map, tpe.map):
            list(warm(inc, range(100)))
        mpire_pool.map(inc, range(100))
        joblib_par(delayed(inc)(i) for i in range(100))

        def check(total: int) -> None:
            assert total == expect, total

        configs: dict[str, Callable[[], object]] = {
            "trilane ProcessPool.map": lambda: check(sum(tpp.map(inc, items))),
            "multiprocessing.Pool.map": lambda: check(sum(mpp.map(inc, items))),
            "joblib Parallel(n_jobs=2)": lambda: check(sum(joblib_par(delayed(inc)(i) for i in items))),
            "mpire WorkerPool.map": lambda: check(sum(mpire_pool.map(inc, items, progress_bar=False))),
            "trilane ThreadPool.map": lambda: check(sum(ttp.map(inc, items))),
            "ThreadPoolExecutor.map": lambda: check(sum(tpe.map(inc, items))),
        }
        best = best_of(rounds, configs)
        ppe_best = best_of(max(1, rounds // 2), {"ppe": lambda: list(ppe.map(inc, range(small)))})["ppe"]
    rates = {k: n / v for k, v in best.items()}
    rates[f"ProcessPoolExecutor.map chunksize=1 ({small} items)"] = small / ppe_best
    base_p = rates["multiprocessing.Pool.map"]
    base_t = rates["ThreadPoolExecutor.map"]
    rows = []
    for name, rate in rates.items():
        base = base_t if "Thread" in name else base_p
        rows.append((name, f"{rate / 1e3:,.0f}k/s", f"{rate / base:.2f}x"))
    table(
        f"1. throughput: {n:,} x inc(x), 2 workers (ratio vs multiprocessing.Pool / ThreadPoolExecutor)",
        rows,
        ("config", "tasks/s", "ratio"),
    )


# -- 2. round trip -------------------------------------------------------------------
def _pipe_echo(conn: Any) -> None:
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        conn.send_bytes(data)


def bench_round_trip(rounds: int) -> None:
    ctx = mp.get_context("forkserver")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_pipe_echo, args=(child,))
    proc.start()
    child.close()
    payloads: dict[str, Any] = {
        "1 KiB bytes": os.urandom(1024),
        "1 MiB bytes": os.urandom(1 << 20),
        "10 MiB bytes": os.urandom(10 << 20),
        "1 MiB numpy": np.random.default_rng(0).random((1 << 20) // 8),
        "10 MiB numpy": np.random.default_rng(0).random((10 << 20) // 8),
    }
    reps = {"1 KiB bytes": 200}
    rows = []
    with trilane.ProcessPool(1) as tpp, cf.ProcessPoolExecutor(1, mp_context=ctx) as ppe:
        tpp.submit(echo, 1).result()
        ppe.submit(echo, 1).result()
        for label, payload in payloads.items():
            n = reps.get(label, 10)

            def raw(p: Any = payload, n: int = n) -> None:
                for _ in range(n):
                    parent.send_bytes(p)
                    parent.recv_bytes()

            def tri(p: Any = payload, n: int = n) -> None:
                for _ in range(n):
                    tpp.submit(echo, p).result()

            def std(p: Any = payload, n: int = n) -> None:
                for _ in range(n):
                    ppe.submit(echo, p).result()

            best = best_of(rounds, {"raw": raw, "trilane": tri, "ppe": std})
            us = {k: v / n * 1e6 for k, v in best.items()}
            rows.append(
                (
                    label,
                    f"{us['raw']:,.0f}",
                    f"{us['trilane']:,.0f}",
                    f"{us['trilane'] / us['raw']:.2f}x",
                    f"{us['ppe']:,.0f}",
                    f"{us['ppe'] / us['raw']:.2f}x",
                )
            )
    parent.close()
    proc.join()
    table(
        "2. one task's round trip, microseconds (ratio vs a raw Pipe send_bytes echo)",
        rows,
        ("payload", "raw pipe", "ProcessPool", "ratio", "ProcessPoolExecutor", "ratio"),
    )


# -- 3. CPU-bound ----------------------------------------------------------------------
def _ceiling_worker(conn: Any, spins: int) -> None:
    """A bare process: on each start signal run its share of the items, then report."""
    set_spin(spins)
    while True:
        try:
            n = conn.recv()
        except EOFError:
            return
        for i in range(n):
            spin(i)
        conn.send(None)


class Ceiling:
    """Two (or *workers*) bare ``multiprocessing.Process`` es, already started, no pool.

    Each runs its fixed share of the items from a start signal to its done
    message: the best any pool can do on this machine (no dispatch, no
    results, perfect balance).
    """

    def __init__(self, ctx: Any, workers: int, spins: int) -> None:
        self.conns = []
        self.procs = []
        for _ in range(workers):
            a, b = ctx.Pipe()
            proc = ctx.Process(target=_ceiling_worker, args=(b, spins))
            proc.start()
            b.close()
            self.conns.append(a)
            self.procs.append(proc)

    def run(self, n_items: int) -> None:
        share, extra = divmod(n_items, len(self.conns))
        for i, c in enumerate(self.conns):
            c.send(share + (i < extra))
        for c in self.conns:
            c.recv()

    def close(self) -> None:
        for c in self.conns:
            c.close()
        for p in self.procs:
            p.join()


def bench_cpu(n_items: int, rounds: int) -> None:
    spins = calibrate()
    ctx = mp.get_context("forkserver")
    ceiling = Ceiling(ctx, 2, spins)
    try:
        with (
            trilane.ProcessPool(2, initializer=set_spin, initargs=(spins,)) as tpp,
            ctx.Pool(2, initializer=set_spin, initargs=(spins,)) as mpp,
        ):
            list(tpp.map(spin, range(4)))
            mpp.map(spin, range(4))
            ceiling.run(4)
            best = best_of(
                rounds,
                {
                    "serial": lambda: [spin(i) for i in range(n_items)],
                    "ceiling: 2 bare processes, no pool": lambda: ceiling.run(n_items),
                    "trilane ProcessPool.map": lambda: list(tpp.map(spin, range(n_items))),
                    "multiprocessing.Pool.map": lambda: mpp.map(spin, range(n_items)),
                },
            )
    finally:
        ceiling.close()
    top = best["ceiling: 2 bare processes, no pool"]
    rows = [(k, f"{v:.3f}", f"{best['serial'] / v:.2f}x", f"{top / v:.3f}") for k, v in best.items()]
    table(
        f"3. CPU-bound: {n_items} items x ~25 ms, 2 workers (speed-up vs serial; share of the ceiling)",
        rows,
        ("config", "s", "speed-up", "vs ceiling"),
    )


# -- 4. start-up -------------------------------------------------------------------------
def startup_child(method: str, kind: str) -> None:
    # Both packages import their pool modules on first use: do that before the
    # clock starts, so that the figure is the pool's start-up, not an import.
    process_pool, executor = trilane.ProcessPool, cf.ProcessPoolExecutor
    t0 = time.perf_counter()
    if kind == "trilane":
        with process_pool(2, start_method=method) as pool:
            pool.submit(inc, 1).result()
            t1 = time.perf_counter()
    else:
        with executor(2, mp_context=mp.get_context(method)) as ex:
            ex.submit(inc, 1).result()
            t1 = time.perf_counter()
    print(f"{t1 - t0:.6f}")


def bench_startup(rounds: int) -> None:
    rows = []
    for method in ("fork", "forkserver", "spawn"):
        got: dict[str, list[float]] = {"trilane": [], "ppe": []}
        for _ in range(rounds):
            for kind, samples in got.items():
                out = subprocess.run(
                    [sys.executable, __file__, "--startup-child", method, kind],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                samples.append(float(out.split()[-1]))
        t, p = min(got["trilane"]), min(got["ppe"])
        rows.append((method, f"{t * 1e3:.1f}", f"{p * 1e3:.1f}", f"{t / p:.2f}x"))
    table(
        "4. start-up to first result, 2 workers, fresh interpreter, ms (ratio trilane / ProcessPoolExecutor)",
        rows,
        ("start method", "ProcessPool", "ProcessPoolExecutor", "ratio"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    ap.add_argument("--only", choices=["throughput", "roundtrip", "cpu", "startup"], action="append")
    ap.add_argument("--startup-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.startup_child:
        startup_child(*args.startup_child)
        return
    only = set(args.only or ["throughput", "roundtrip", "cpu", "startup"])
    print(
        f"trilane {trilane.__version__} · Python {sys.version.split()[0]} · {os.cpu_count()} CPUs · "
        f"{'quick' if args.quick else 'full'} run · threads now: {threading.active_count()}"
    )
    if "throughput" in only:
        bench_throughput(100_000, 3 if args.quick else 7)
    if "roundtrip" in only:
        bench_round_trip(3 if args.quick else 7)
    if "cpu" in only:
        bench_cpu(40 if args.quick else 100, 1 if args.quick else 5)
    if "startup" in only:
        bench_startup(2 if args.quick else 5)


if __name__ == "__main__":
    main()
