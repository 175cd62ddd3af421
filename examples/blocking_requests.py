"""Why ``requests`` freezes an event loop, and the two ways out: an async client, or a thread.

The example starts its own slow HTTP server on 127.0.0.1 (aiohttp, in a
thread with its own loop; no internet needed), then fetches from it five
times, concurrently, in three ways:

* aiohttp (an async client): the five requests overlap, about one delay in all;
* ``requests.get`` inside coroutines: each call blocks the whole loop, so
  they run one after another (five delays) and nothing else can run meanwhile;
* ``await trilane.to_thread(requests.get, ...)``: the same requests, moved to
  threads, overlap again.

Run it plainly to see the timings, or under the watchdog to see where the
loop blocked and what to do about it::

    python examples/blocking_requests.py
    trilane trace examples/blocking_requests.py
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import aiohttp
import requests
from aiohttp import web

import trilane

DELAY = 0.2  # seconds the server takes per request
N = 5  # requests per client


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(DELAY)
    return web.json_response({"n": int(request.query.get("n", "0"))})


@contextmanager
def slow_server() -> Iterator[str]:
    """Serve ``/slow?n=`` on 127.0.0.1 from a thread with its own event loop; yield the URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, name="slow-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/slow"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


async def with_aiohttp(session: aiohttp.ClientSession, url: str, n: int) -> int:
    async with session.get(url, params={"n": n}) as response:
        return int((await response.json())["n"])


async def with_requests(url: str, n: int) -> int:
    response = requests.get(url, params={"n": n}, timeout=10)  # blocks the event loop
    return int(response.json()["n"])


async def with_to_thread(url: str, n: int) -> int:
    response = await trilane.to_thread(requests.get, url, params={"n": n}, timeout=10)
    return int(response.json()["n"])


async def timed(label: str, fetch: Callable[[int], Awaitable[int]]) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(*(fetch(n) for n in range(N)))
    took = time.perf_counter() - started
    assert sorted(results) == list(range(N))
    print(f"{label:<34} {N} requests in {took:.2f} s")
    return took


async def main(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        await timed("aiohttp (async client)", lambda n: with_aiohttp(session, url, n))
    await timed("requests.get in coroutines", lambda n: with_requests(url, n))
    await timed("await trilane.to_thread(requests.get)", lambda n: with_to_thread(url, n))


if __name__ == "__main__":
    with slow_server() as url:
        print(f"server at {url}, {DELAY:g} s per request")
        asyncio.run(main(url))
