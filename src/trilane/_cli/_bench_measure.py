"""The measurements behind ``trilane bench``: what a process, a thread and a coroutine cost here.

Each function measures one row of the issue's list for all three models and
returns plain numbers (seconds, bytes, items per second), so the results go
straight into JSON::

    switch_cost        ping-pong between two units: one hand-off, one way
    communication      send a payload (1 KiB, 1 MiB, 10 MiB) to a unit and get a reply
    startup            start one unit and wait for it to finish doing nothing
    memory             resident memory each extra unit adds
    io_throughput      N units each waiting on simulated I/O (sleep): waits/s
    cpu_speedup        pure-Python CPU work on `cpus` units, against one unit

The operating-system primitives (switch, start-up, memory) are measured with
the stdlib's ``threading`` and ``multiprocessing`` directly: that is what they
cost.  Processes are started the way trilane's ProcessPool starts its workers
(``forkserver`` where the platform has it), so the numbers are the ones a
pool pays.  Work that goes through an executor (communication, throughput, CPU
speedup) uses trilane's own pools when they are importable, the stdlib's
``concurrent.futures`` otherwise, and coroutines always run on trilane's loop.
Each timing is the best of ``repeat`` runs: other programs share the machine,
and the minimum is the least disturbed.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

import trilane

__all__ = [
    "communication",
    "cpu_speedup",
    "io_throughput",
    "make_pool",
    "memory",
    "pool_roundtrip",
    "startup",
    "switch_cost",
]

PAYLOADS = {"1 KiB": 1024, "1 MiB": 1024**2, "10 MiB": 10 * 1024**2}
IO_LEVELS = (1, 10, 100, 1000)
IO_WAIT = 0.02  # seconds of simulated I/O per wait


def _best(repeat: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(max(1, repeat)))


def _run_async(coro: Coroutine[Any, Any, float]) -> float:
    # No watchdog: the memory test blocks the loop on purpose while it creates 10,000 tasks.
    return trilane.run(coro, watchdog=None)


def make_pool(kind: str, workers: int) -> Executor:
    """A thread or process pool: trilane's if it is there, else concurrent.futures'."""
    name = "ThreadPool" if kind == "thread" else "ProcessPool"
    cls = getattr(trilane, name, None)
    if cls is not None:
        pool: Executor = cls(workers)
        return pool
    return ThreadPoolExecutor(workers) if kind == "thread" else ProcessPoolExecutor(workers)


def settle(*futures: Future[Any]) -> None:
    """Wait for *futures* and raise the first error.

    It waits with ``concurrent.futures.wait`` rather than ``result()``: a
    trilane ProcessPool's ``result()`` on a running task reads the worker's
    pipe directly, and that path can race with the pool's manager thread,
    which then blocks at shutdown (reported to the pools' author).
    """
    wait(futures)
    for f in futures:
        f.result()


def start_method() -> str:
    """How trilane's ProcessPool starts workers here (forkserver on Linux), so single processes match."""
    try:
        from .._pools._process import default_start_method
    except ImportError:
        return multiprocessing.get_start_method()
    return default_start_method()


def _context() -> Any:
    return multiprocessing.get_context(start_method())


def _noop(*args: Any) -> None:
    return None


def _size(payload: bytes) -> int:
    return len(payload)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def spin(n: int) -> int:
    """Pure-Python CPU work: about n loop iterations."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


# -- switch cost -------------------------------------------------------------------------------


def _pong(conn: Any, n: int) -> None:
    for _ in range(n):
        conn.recv_bytes()
        conn.send_bytes(b"x")
    conn.close()


def switch_cost(repeat: int, n_os: int, n_async: int) -> dict[str, float]:
    """Seconds per one-way hand-off: processes (pipe), threads (queues), coroutines (sleep(0))."""

    def processes() -> float:
        here, there = _context().Pipe()
        child = _context().Process(target=_pong, args=(there, n_os), daemon=True)
        child.start()
        there.close()
        start = time.perf_counter()
        for _ in range(n_os):
            here.send_bytes(b"x")
            here.recv_bytes()
        elapsed = time.perf_counter() - start
        child.join()
        here.close()
        return elapsed / (2 * n_os)

    def threads() -> float:
        ping: queue.SimpleQueue[int] = queue.SimpleQueue()
        pong: queue.SimpleQueue[int] = queue.SimpleQueue()

        def partner() -> None:
            for _ in range(n_os):
                pong.put(ping.get())

        t = threading.Thread(target=partner)
        t.start()
        start = time.perf_counter()
        for i in range(n_os):
            ping.put(i)
            pong.get()
        elapsed = time.perf_counter() - start
        t.join()
        return elapsed / (2 * n_os)

    async def coroutines() -> float:
        async def yielder() -> None:
            for _ in range(n_async):
                await asyncio.sleep(0)

        start = time.perf_counter()
        await asyncio.gather(yielder(), yielder())
        return (time.perf_counter() - start) / (2 * n_async)

    return {
        "process": _best(repeat, processes),
        "thread": _best(repeat, threads),
        "async": _best(repeat, lambda: _run_async(coroutines())),
    }


# -- communication -----------------------------------------------------------------------------


def communication(repeat: int, rounds: dict[str, int]) -> dict[str, dict[str, float]]:
    """Seconds to send each payload to a unit and get a small reply, per model and payload."""
    out: dict[str, dict[str, float]] = {"process": {}, "thread": {}, "async": {}}
    payloads = {label: os.urandom(size) for label, size in PAYLOADS.items()}
    for kind in ("process", "thread"):
        with make_pool(kind, 1) as pool:
            settle(pool.submit(_noop))  # the worker exists before the clock starts
            for label, data in payloads.items():
                n = rounds[label]

                def once(pool: Executor = pool, data: bytes = data, n: int = n) -> float:
                    start = time.perf_counter()
                    for _ in range(n):
                        settle(pool.submit(_size, data))
                    return (time.perf_counter() - start) / n

                out[kind][label] = _best(repeat, once)

    async def via_queue(data: bytes, n: int) -> float:
        inbox: asyncio.Queue[bytes] = asyncio.Queue()
        replies: asyncio.Queue[int] = asyncio.Queue()

        async def worker() -> None:
            for _ in range(n):
                replies.put_nowait(len(await inbox.get()))

        task = asyncio.ensure_future(worker())
        start = time.perf_counter()
        for _ in range(n):
            inbox.put_nowait(data)
            await replies.get()
        elapsed = time.perf_counter() - start
        await task
        return elapsed / n

    for label, data in payloads.items():
        n = rounds[label]
        out["async"][label] = _best(repeat, lambda data=data, n=n: _run_async(via_queue(data, n)))  # type: ignore[misc]
    return out


def pool_roundtrip(kind: str, repeat: int, n: int) -> float:
    """Seconds for one tiny task's round trip through a 1-worker pool of *kind*."""
    with make_pool(kind, 1) as pool:
        settle(pool.submit(_noop))

        def once() -> float:
            start = time.perf_counter()
            for _ in range(n):
                settle(pool.submit(_noop))
            return (time.perf_counter() - start) / n

        return _best(repeat, once)


# -- start-up ------------------------------------------------------------------------------------


def startup(repeat: int, n_proc: int, n_thread: int, n_async: int) -> dict[str, float]:
    """Seconds to start one unit, let it do nothing, and join it; plus a process pool's first result."""

    def processes() -> float:
        start = time.perf_counter()
        for _ in range(n_proc):
            p = _context().Process(target=_noop)
            p.start()
            p.join()
            p.close()
        return (time.perf_counter() - start) / n_proc

    def threads() -> float:
        start = time.perf_counter()
        for _ in range(n_thread):
            t = threading.Thread(target=_noop)
            t.start()
            t.join()
        return (time.perf_counter() - start) / n_thread

    async def coroutines() -> float:
        async def nothing() -> None:
            return None

        start = time.perf_counter()
        for _ in range(n_async):
            await asyncio.ensure_future(nothing())
        return (time.perf_counter() - start) / n_async

    def pool_first_result() -> float:
        start = time.perf_counter()
        with make_pool("process", 2) as pool:
            settle(pool.submit(_noop))
            return time.perf_counter() - start

    return {
        "process": _best(repeat, processes),
        "thread": _best(repeat, threads),
        "async": _best(repeat, lambda: _run_async(coroutines())),
        "process_pool": _best(repeat, pool_first_result),
    }


# -- memory --------------------------------------------------------------------------------------


def _status_kib(path: str, field: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _rss() -> int:
    """This process's resident set, in bytes."""
    return _status_kib("/proc/self/status", "VmRSS") * 1024


def _private_bytes(pid: int) -> int:
    """Memory that process *pid* alone holds (USS: private clean + dirty), in bytes."""
    path = f"/proc/{pid}/smaps_rollup"
    try:
        return (_status_kib(path, "Private_Clean") + _status_kib(path, "Private_Dirty")) * 1024
    except OSError:
        return 0


def _hold(conn: Any) -> None:
    conn.recv_bytes()  # wait until the parent has measured us
    conn.close()


def memory(n_coro: int, n_thread: int, n_proc: int) -> dict[str, float]:
    """Bytes each extra coroutine, thread and process adds (RSS delta; USS for processes)."""

    async def coroutines() -> float:
        gate = asyncio.Event()
        gc.collect()
        before = _rss()
        tasks = [asyncio.ensure_future(gate.wait()) for _ in range(n_coro)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        after = _rss()
        gate.set()
        await asyncio.gather(*tasks)
        return max(0, after - before) / n_coro

    def threads() -> float:
        gate = threading.Event()
        gc.collect()
        before = _rss()
        started = [threading.Thread(target=gate.wait) for _ in range(n_thread)]
        for t in started:
            t.start()
        after = _rss()
        gate.set()
        for t in started:
            t.join()
        return max(0, after - before) / n_thread

    def processes() -> float:
        children = []
        try:
            for _ in range(n_proc):
                here, there = _context().Pipe()
                p = _context().Process(target=_hold, args=(there,), daemon=True)
                p.start()
                there.close()
                children.append((p, here))
            time.sleep(0.2)  # let each child finish starting up
            sizes = [_private_bytes(p.pid) for p, _ in children if p.pid is not None]
        finally:
            for p, here in children:
                try:
                    here.send_bytes(b"go")
                except OSError:
                    pass
                here.close()
                p.join()
                p.close()
        return sum(sizes) / max(1, len(sizes))

    return {"async": _run_async(coroutines()), "thread": threads(), "process": processes()}


# -- I/O-bound throughput --------------------------------------------------------------------


def io_throughput(repeat: int, waits_each: int, process_cap: int) -> dict[str, dict[str, float]]:
    """Waits per second with N concurrent units, each doing *waits_each* sleeps of IO_WAIT.

    Processes stop at ``process_cap`` workers (a thousand processes would
    take this machine's memory): their row says how many were used.
    """
    out: dict[str, dict[str, float]] = {"process": {}, "thread": {}, "async": {}, "process_workers": {}}
    for level in IO_LEVELS:
        total = level * waits_each

        async def coroutines(level: int = level, total: int = total) -> float:
            async def unit() -> None:
                for _ in range(waits_each):
                    await asyncio.sleep(IO_WAIT)

            start = time.perf_counter()
            await asyncio.gather(*(unit() for _ in range(level)))
            return total / (time.perf_counter() - start)

        out["async"][str(level)] = max(_run_async(coroutines()) for _ in range(repeat))
        for kind in ("thread", "process"):
            workers = level if kind == "thread" else min(level, process_cap)
            with make_pool(kind, workers) as pool:
                settle(*[pool.submit(_noop) for _ in range(workers)])  # start the workers before the clock

                def once(pool: Executor = pool, total: int = workers * waits_each) -> float:
                    start = time.perf_counter()
                    settle(*[pool.submit(_sleep, IO_WAIT) for _ in range(total)])
                    return total / (time.perf_counter() - start)

                out[kind][str(level)] = max(once() for _ in range(repeat))
            if kind == "process":
                out["process_workers"][str(level)] = workers
    return out


# -- CPU-bound speedup --------------------------------------------------------------------------


def calibrate(target: float) -> int:
    """Return the ``spin`` size that takes about *target* seconds here."""
    n = 20_000
    while True:
        start = time.perf_counter()
        spin(n)
        took = time.perf_counter() - start
        if took >= 0.005:
            return max(1000, int(n * target / took))
        n *= 4


def cpu_speedup(repeat: int, item_seconds: float, items: int) -> dict[str, float]:
    """Speedup of *items* pure-Python items (each ~item_seconds) on ``cpus`` units over one unit.

    The baseline is the CPU time (``time.thread_time``) of running them one by
    one, which is what they would take alone on an idle core: other programs
    on the machine can then only lower a measured speedup, never inflate it.
    The models are measured in interleaved rounds, so each sees the same load.
    """
    cpus = os.cpu_count() or 1
    n = calibrate(item_seconds)

    share: list[float] = []

    def serial() -> float:
        start, wall = time.thread_time(), time.perf_counter()
        for _ in range(items):
            spin(n)
        cpu = time.thread_time() - start
        share.append(cpu / max(1e-9, time.perf_counter() - wall))
        return cpu

    def pooled(pool: Executor) -> float:
        start = time.perf_counter()
        settle(*[pool.submit(spin, n) for _ in range(items)])
        return time.perf_counter() - start

    async def coroutines() -> float:
        async def unit() -> None:
            spin(n)

        start = time.perf_counter()
        await asyncio.gather(*(unit() for _ in range(items)))
        return time.perf_counter() - start

    best = {"serial": math.inf, "process": math.inf, "thread": math.inf, "async": math.inf}
    with make_pool("process", cpus) as procs, make_pool("thread", cpus) as threads:
        for pool in (procs, threads):
            settle(*[pool.submit(_noop) for _ in range(cpus)])
        for _ in range(max(1, repeat)):
            best["serial"] = min(best["serial"], serial())
            best["process"] = min(best["process"], pooled(procs))
            best["thread"] = min(best["thread"], pooled(threads))
            best["async"] = min(best["async"], _run_async(coroutines()))
    base = best["serial"]
    return {
        "serial_seconds": base,
        "item_seconds": base / items,
        "process": base / best["process"],
        "thread": base / best["thread"],
        "async": base / best["async"],
        # How much of a core one busy thread got: below ~0.9 other programs were competing for the CPUs.
        "cpu_share": max(share),
    }
