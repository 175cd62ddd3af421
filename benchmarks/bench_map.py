"""trilane.map against its peers, side by side in one run.

    python benchmarks/bench_map.py            # full sizes, best of 3
    python benchmarks/bench_map.py --quick    # smaller sizes, best of 2
    python benchmarks/bench_map.py --only http,overhead,rss

1. HTTP fan-out: 2000 GETs at concurrency 50 to a local aiohttp server on
   127.0.0.1 whose handler sleeps 20 ms (ideal: 50 / 0.02 = 2500 req/s).  The
   server runs in a separate process started here; every configuration hits
   the same server.  By default it is aiohttp's low-level ``web.Server`` (no
   router, no middlewares) on uvloop, the cheapest aiohttp server per request
   (``--server app --server-loop asyncio``: a ``web.Application`` on the stock
   loop, as before).  The table gives the server's CPU per request too.
   - bound: a minimal client (HTTP/1.1 keep-alive over 50 raw asyncio
     streams, no HTTP library) on the same server.  No client can do much
     better than this on the machine at hand: it shows what the server, the
     20 ms timers and the machine's other load leave for any client.
   - async: ``trilane.amap(fetch_aiohttp, backend="async", concurrency=50)`` on
     a trilane loop, against a hand-written asyncio + Semaphore + aiohttp loop
     on stock asyncio.  (An aiohttp session belongs to one loop; ``amap`` lets
     the trilane run share one session exactly as the hand-written loop does.)
   - thread: ``trilane.map(fetch_requests, backend="thread", concurrency=50)``
     against ``ThreadPoolExecutor(50).map`` with the same function (a requests
     Session per thread).
2. Per-item overhead on a trivial function (``x + 1``), pool start included:
   thread backend vs ``ThreadPoolExecutor().map``; process backend vs
   ``multiprocessing.Pool().map`` with its automatic chunksize.  Then the
   hand-off alone, one item per task: ``chunksize=1, concurrency=50`` against
   ``ThreadPoolExecutor(50).map``, in CPU per item (what competes with the
   workers for the GIL in a run like the requests fan-out).
3. Peak RSS growth over 10M items from a generator, each in a fresh
   subprocess: ``trilane.map(backend="thread")`` vs ``ThreadPoolExecutor.map``.
   ``ThreadPoolExecutor.map`` submits every item before yielding one, so it is
   capped (1M items in the full run) and its growth is extrapolated linearly.

Timings are best-of-N wall clock; on a shared machine, treat them as noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import trilane

URL = ""
_local = threading.local()


# -- the server (separate process) ----------------------------------------------------------------


def serve(delay: float, kind: str, loop: str) -> None:
    """Run the aiohttp test server; print its port on stdout; stop when stdin closes.

    *kind*: "lowlevel" (``aiohttp.web.Server``, one handler) or "app" (``web.Application``
    with a router).  *loop*: "uvloop" or "asyncio".
    """
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(text="ok")

    async def main() -> None:
        runner: web.BaseRunner[Any]
        if kind == "app":
            app = web.Application()
            app.router.add_get("/", handler)
            runner = web.AppRunner(app, access_log=None)
        else:
            runner = web.ServerRunner(web.Server(handler, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


class Server:
    def __init__(self, delay: float, kind: str, loop: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(delay), "--server", kind, "--server-loop", loop],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/"
        self.description = f"aiohttp {'web.Server (low-level)' if kind == 'lowlevel' else 'web.Application'} on {loop}"

    def cpu(self) -> float:
        """CPU seconds the server process has used (Linux /proc; 0.0 elsewhere)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# -- the clients --------------------------------------------------------------------------------


async def fetch_aiohttp(i: int) -> int:
    session = _sessions[asyncio.get_running_loop()]
    async with session.get(URL) as resp:
        await resp.read()
        return resp.status


_sessions: dict[Any, Any] = {}


def fetch_requests(i: int) -> int:
    import requests

    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        session.mount("http://", adapter)
    resp = session.get(URL)
    return resp.status_code


def _connector() -> Any:
    import aiohttp

    return aiohttp.TCPConnector(limit=0)


async def trilane_async(n: int, conc: int) -> list[int]:
    import aiohttp  # imported lazily: process workers re-import this script as __mp_main__

    async with aiohttp.ClientSession(connector=_connector()) as session:
        _sessions[asyncio.get_running_loop()] = session
        try:
            return [s async for s in trilane.amap(fetch_aiohttp, range(n), backend="async", concurrency=conc)]
        finally:
            del _sessions[asyncio.get_running_loop()]


async def hand_written(n: int, conc: int) -> list[int]:
    import aiohttp

    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=_connector()) as session:

        async def one(i: int) -> int:
            async with sem, session.get(URL) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(i) for i in range(n)))


_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def raw_client(port: int, n: int, conc: int) -> list[int]:
    """The bound: *conc* keep-alive connections over bare asyncio streams, no HTTP library."""
    statuses: list[int] = []
    claimed = [0]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while claimed[0] < n:
                claimed[0] += 1  # claim a request before the await, as a semaphore would
                writer.write(_REQUEST)
                head = await reader.readuntil(b"\r\n\r\n")
                at = head.lower().index(b"content-length:") + 15
                await reader.readexactly(int(head[at : head.index(b"\r\n", at)]))
                statuses.append(int(head[9:12]))
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(conc)))
    return statuses


def trilane_threads(n: int, conc: int) -> list[int]:
    return list(trilane.map(fetch_requests, range(n), backend="thread", concurrency=conc))


def tpe_threads(n: int, conc: int) -> list[int]:
    with ThreadPoolExecutor(conc) as ex:
        return list(ex.map(fetch_requests, range(n)))


# -- helpers -------------------------------------------------------------------------------------


CPU: dict[str, float] = {}


SERVER_CPU: dict[str, float] = {}


def best(
    rounds: int,
    configs: dict[str, Callable[[], Any]],
    check: Callable[[Any], None],
    server_cpu: Callable[[], float] | None = None,
) -> dict[str, float]:
    """Alternate the configs round by round (so drift hits all alike); return the best time of each.

    The best CPU time of this process (all its threads) for each config goes to ``CPU``, and
    the least CPU time *server_cpu* reports for a run of it to ``SERVER_CPU``.
    """
    times: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    scpu: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, fn in configs.items():
            s = server_cpu() if server_cpu else 0.0
            c = time.process_time()
            t = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            scpu[name].append((server_cpu() if server_cpu else 0.0) - s)
            check(result)
    CPU.update({name: min(cs) for name, cs in cpu.items()})
    SERVER_CPU.update({name: min(cs) for name, cs in scpu.items()})
    return {name: min(ts) for name, ts in times.items()}


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


# -- 1. HTTP fan-out -----------------------------------------------------------------------------


BOUND = "bound: raw asyncio streams, no HTTP library (asyncio loop)"


def bench_http(n: int, conc: int, rounds: int, kind: str, loop: str) -> None:
    global URL
    server = Server(0.02, kind, loop)
    URL = server.url
    ideal = conc / 0.02
    try:

        def ok(result: list[int]) -> None:
            assert len(result) == n and set(result) == {200}, set(result)

        # Warm the clients once (imports, connection pools).  aiohttp's first request imports
        # modules for ~0.1 s: on stock asyncio first, so the trilane loop's watchdog does not
        # report that as a blocked loop.
        asyncio.run(hand_written(100, conc))
        trilane.run(trilane_async(100, conc))
        tpe_threads(100, conc)
        t = best(
            rounds,
            {
                BOUND: lambda: asyncio.run(raw_client(server.port, n, conc)),
                "hand-written asyncio+Semaphore+aiohttp (asyncio loop)": lambda: asyncio.run(hand_written(n, conc)),
                "trilane.amap backend=async (trilane loop)": lambda: trilane.run(trilane_async(n, conc)),
                "trilane.amap backend=async (asyncio loop)": lambda: asyncio.run(trilane_async(n, conc)),
                "ThreadPoolExecutor(50).map + requests": lambda: tpe_threads(n, conc),
                "trilane.map backend=thread + requests": lambda: trilane_threads(n, conc),
            },
            ok,
            server.cpu,
        )
    finally:
        server.close()
    base_async = t["hand-written asyncio+Semaphore+aiohttp (asyncio loop)"]
    base_thread = t["ThreadPoolExecutor(50).map + requests"]
    rows = []
    for name, secs in t.items():
        base = base_thread if "requests" in name else base_async
        rows.append(
            (
                name,
                f"{n / secs:,.0f}",
                f"{n / secs / ideal:.1%}",
                "-" if name == BOUND else f"{base / secs:.2f}x",
                f"{CPU[name] * 1e6 / n:.0f}",
                f"{SERVER_CPU[name] * 1e6 / n:.0f}",
            )
        )
    table(
        f"HTTP fan-out: {n} GETs, concurrency {conc}, 20 ms handler (ideal {ideal:,.0f} req/s), best of {rounds}; "
        f"server: {server.description}",
        ("configuration", "req/s", "of ideal", "vs its peer", "client CPU µs/req", "server CPU µs/req"),
        rows,
    )


# -- 2. per-item overhead ------------------------------------------------------------------------


def inc(x: int) -> int:
    return x + 1


def _overhead_rows(t: dict[str, float], n: int, base_name: str) -> list[tuple[str, ...]]:
    base = t[base_name]
    return [(name, f"{n:,}", f"{secs * 1e6 / n:.2f}", f"{secs:.3f}", f"{base / secs:.2f}x") for name, secs in t.items()]


def bench_overhead(n_thread: int, n_process: int, rounds: int) -> None:
    def checker(n: int) -> Callable[[int], None]:
        def ok(total: int) -> None:
            assert total == n * (n + 1) // 2, total

        return ok

    def tpe(n: int) -> int:
        with ThreadPoolExecutor() as ex:
            return sum(ex.map(inc, range(n)))

    def mp_pool(n: int, method: str) -> int:
        with multiprocessing.get_context(method).Pool(os.cpu_count()) as pool:
            return sum(pool.map(inc, range(n)))

    nt, np_ = n_thread, n_process
    threads = best(
        rounds,
        {
            "ThreadPoolExecutor().map": lambda: tpe(nt),
            "trilane.map backend=thread": lambda: sum(trilane.map(inc, range(nt), backend="thread")),
            "trilane.map backend=serial": lambda: sum(trilane.map(inc, range(nt), backend="serial")),
            "builtin map (one thread)": lambda: sum(map(inc, range(nt))),
        },
        checker(nt),
    )
    # Warm the fork server once, so that no configuration pays for starting it.
    sum(trilane.map(inc, range(10), backend="process"))
    procs = best(
        rounds,
        {
            "multiprocessing.Pool().map (fork)": lambda: mp_pool(np_, "fork"),
            "multiprocessing.Pool().map (forkserver)": lambda: mp_pool(np_, "forkserver"),
            "trilane.map backend=process (forkserver)": lambda: sum(trilane.map(inc, range(np_), backend="process")),
        },
        checker(np_),
    )
    rows = _overhead_rows(threads, nt, "ThreadPoolExecutor().map")
    rows += _overhead_rows(procs, np_, "multiprocessing.Pool().map (fork)")
    table(
        f"Per-item overhead: x + 1, pool start included, best of {rounds} "
        "(ratio: against ThreadPoolExecutor.map / multiprocessing.Pool.map with fork)",
        ("configuration", "items", "µs/item", "total s", "vs peer"),
        rows,
    )

    def tpe50(n: int) -> int:
        with ThreadPoolExecutor(50) as ex:
            return sum(ex.map(inc, range(n)))

    nh = nt // 4
    handoff = best(
        rounds,
        {
            "ThreadPoolExecutor(50).map": lambda: tpe50(nh),
            "trilane.map backend=thread chunksize=1 concurrency=50": lambda: sum(
                trilane.map(inc, range(nh), backend="thread", chunksize=1, concurrency=50)
            ),
        },
        checker(nh),
    )
    base_cpu = CPU["ThreadPoolExecutor(50).map"]
    table(
        f"Per-item hand-off: x + 1, one item per task, {nh:,} items, best of {rounds} (CPU: all threads)",
        ("configuration", "µs CPU/item", "µs wall/item", "CPU vs peer"),
        [
            (name, f"{CPU[name] * 1e6 / nh:.1f}", f"{secs * 1e6 / nh:.1f}", f"{base_cpu / CPU[name]:.2f}x")
            for name, secs in handoff.items()
        ],
    )


# -- 3. peak RSS ---------------------------------------------------------------------------------

RSS_CHILD = """
import resource, sys, time
from concurrent.futures import ThreadPoolExecutor
import trilane

def inc(x):
    return x + 1

which, n = sys.argv[1], int(sys.argv[2])
# Warm up: imports, the pool, the loop.
list(trilane.map(inc, range(10_000), backend="thread"))
with ThreadPoolExecutor() as ex:
    list(ex.map(inc, range(10_000)))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
count = 0
if which == "trilane":
    for _ in trilane.map(inc, (i for i in range(n)), backend="thread"):
        count += 1
else:
    with ThreadPoolExecutor() as ex:
        for _ in ex.map(inc, (i for i in range(n))):
            count += 1
secs = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert count == n
print((peak - base) / 1024, secs)
"""


def bench_rss(n: int, tpe_cap: int) -> None:
    rows = []
    for which, count in (("trilane", n), ("tpe", min(n, tpe_cap))):
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, which, str(count)], capture_output=True, text=True, check=True
        ).stdout.split()
        grown, secs = float(out[0]), float(out[1])
        name = "trilane.map backend=thread" if which == "trilane" else "ThreadPoolExecutor().map"
        note = "" if count == n else f"capped at {count:,}; ~{grown * n / count:,.0f} MB at {n:,} (linear)"
        rows.append((name, f"{count:,}", f"{grown:,.1f}", f"{secs:.1f}", note))
    table(
        f"Peak RSS growth over a {n:,}-item generator (fresh subprocess each)",
        ("configuration", "items", "peak RSS growth MB", "seconds", "note"),
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    ap.add_argument("--only", default="http,overhead,rss", help="comma-separated: http, overhead, rss")
    ap.add_argument("--rounds", type=int, help="rounds per comparison (default: 2 quick, 3 full, 5 for HTTP)")
    ap.add_argument(
        "--server",
        choices=("lowlevel", "app"),
        default="lowlevel",
        help="HTTP server: aiohttp's low-level web.Server (default) or a web.Application",
    )
    ap.add_argument("--server-loop", choices=("uvloop", "asyncio"), default="uvloop", help="the server's event loop")
    ap.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.server, args.server_loop)
        return
    only = set(args.only.split(","))
    print(
        f"bench_map: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, trilane {trilane.__version__}, "
        f"{'quick' if args.quick else 'full'} run (machine may be shared: best-of-N, treat as noisy)"
    )
    rounds = args.rounds or (2 if args.quick else 3)
    if "http" in only:
        bench_http(
            1000 if args.quick else 2000,
            50,
            args.rounds or (rounds if args.quick else 5),
            args.server,
            args.server_loop,
        )
    if "overhead" in only:
        bench_overhead(50_000 if args.quick else 200_000, 200_000 if args.quick else 1_000_000, rounds)
    if "rss" in only:
        bench_rss(1_000_000 if args.quick else 10_000_000, 200_000 if args.quick else 1_000_000)
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
