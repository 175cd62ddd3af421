"""The demo's mock "risk API": a stdlib HTTP server on 127.0.0.1, and stdlib clients.

``trilane demo`` must run offline, after a plain ``pip install trilane`` that
brings only ``rich``, so nothing here needs aiohttp or requests::

      demo process
    ┌──────────────────────────────────────────────────────────────────────┐
    │  fetch_risk()  (urllib, blocking) ──┐                                │
    │  afetch_risk() (asyncio streams) ───┼──► 127.0.0.1:<random port>     │
    │                                     │    ThreadingHTTPServer, served │
    │                                     │    from one daemon thread; one │
    │                                     │    thread per request sleeps   │
    │                                     │    ``latency`` and answers     │
    └──────────────────────────────────────────────────────────────────────┘

Endpoints (``run`` names a trial, so each backend meets the same failures):

``GET /risk/<n>?run=<name>``
    ``{"item": n, "score": ..., "level": ...}`` after ``latency`` (50 ms).
    Item behaviour is a pure function of ``n`` (see :func:`behaviour`):

    - ``slow``: answers after 300 ms;
    - ``hang``: the first attempt of each run hangs (until the server stops,
      at most 30 s); a retry answers normally.  Timeouts + retries fix it;
    - ``flaky``: the first attempt of each run gets ``503``; a retry succeeds;
    - ``broken``: always ``500``.  These are the failures that remain.
``GET /slow?s=<seconds>``
    Sleeps ``s`` seconds (at most 5), then answers ``{"slept": s}``.

The server is a context manager; leaving it sets the stop event (releasing
hanging handlers), shuts the accept loop down and closes the socket.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

__all__ = ["MockAPI", "afetch_risk", "ahttp_get", "behaviour", "fetch_risk", "http_get"]

HANG_LIMIT: Final = 30.0


def behaviour(n: int) -> str:
    """Return how the API treats item *n*: ``ok``, ``slow``, ``hang``, ``flaky`` or ``broken``."""
    if n % 100 == 77:
        return "broken"
    if n % 100 == 13:
        return "hang"
    if n % 50 == 7:
        return "flaky"
    if n % 25 == 21:
        return "slow"
    return "ok"


class _Server(ThreadingHTTPServer):
    # The default backlog (5) drops SYNs when 100 async clients connect at
    # once, and a dropped SYN costs a 1 s retransmit: a latency we did not ask for.
    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency = latency
        self.stopping = threading.Event()
        self.attempts: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()
        self.requests = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo prints its own story."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout) and closed its end: nothing to answer

    def do_GET(self) -> None:
        """Serve the endpoints in the module docstring."""
        server = self.server
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with server.lock:
            server.requests += 1
        if parts.path.startswith("/risk/"):
            try:
                n = int(parts.path.removeprefix("/risk/"))
            except ValueError:
                self._send(404, {"error": f"no such item {parts.path!r}"})
                return
            run = query.get("run", [""])[0]
            with server.lock:
                attempt = server.attempts.get((run, n), 0) + 1
                server.attempts[(run, n)] = attempt
            kind = behaviour(n)
            if kind == "hang" and attempt == 1:
                server.stopping.wait(HANG_LIMIT)
            elif kind == "slow":
                server.stopping.wait(0.3)
            else:
                server.stopping.wait(server.latency)
            if kind == "broken":
                self._send(500, {"error": f"item {n}: internal error"})
            elif kind == "flaky" and attempt == 1:
                self._send(503, {"error": f"item {n}: try again"})
            else:
                score = (n * 7919) % 100
                level = "high" if score >= 90 else "medium" if score >= 60 else "low"
                self._send(200, {"item": n, "score": score, "level": level})
        elif parts.path == "/slow":
            seconds = min(5.0, float(query.get("s", ["0.2"])[0]))
            server.stopping.wait(seconds)
            self._send(200, {"slept": seconds})
        else:
            self._send(404, {"error": f"no such endpoint {parts.path!r}"})


class MockAPI:
    """The embedded API server: ``with MockAPI() as api: api.url``."""

    def __init__(self, latency: float = 0.05) -> None:
        self._server = _Server(latency)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="trilane-mockapi", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> int:
        """How many requests the server has received."""
        return self._server.requests

    def start(self) -> MockAPI:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers, stop serving and close the socket."""
        self._server.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MockAPI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class APIError(Exception):
    """The API answered with an error status."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        super().__init__(f"GET {url} answered HTTP {status}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.status))


def http_get(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET *url* with urllib (blocking) and return the decoded JSON body; raise APIError on >= 400."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        exc.close()
        raise APIError(url, exc.code) from None


async def ahttp_get(url: str) -> dict[str, Any]:
    """GET *url* over asyncio streams (HTTP/1.1, ``Connection: close``) and return the JSON body.

    It has no timeout of its own: wrap it in ``asyncio.timeout()`` (``trilane.map``'s ``timeout=`` does).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")

    async def exchange() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        return status, body

    status, body = await exchange()
    if status >= 400 or status == 0:
        raise APIError(url, status)
    result: dict[str, Any] = json.loads(body)
    return result


def fetch_risk(base_url: str, run: str, n: int, timeout: float = 1.0) -> dict[str, Any]:
    """Check risk item *n* (blocking).  Module-level, so a process pool can pickle it."""
    return http_get(f"{base_url}/risk/{n}?run={run}", timeout)


async def afetch_risk(base_url: str, run: str, n: int) -> dict[str, Any]:
    """Check risk item *n* with the asyncio client."""
    return await ahttp_get(f"{base_url}/risk/{n}?run={run}")
