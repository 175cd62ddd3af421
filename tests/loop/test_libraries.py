"""Real asyncio libraries on trilane.Loop (and, as the reference, on stock asyncio).

aiohttp's server with aiohttp's client, httpx's client against the same
server, and anyio through its ``loop_factory`` backend option, all over
127.0.0.1.  pytest-asyncio has its own directory (``plugin/``) because it is
configured through a conftest hook.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from aiohttp import web

import trilane

Run = Callable[[Any], Any]


async def _start_app() -> tuple[web.AppRunner, str]:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.query.get("name", "world")})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            await sock.send_str(msg.data.upper())
        return sock

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.01)
        return web.Response(text=request.match_info["n"])

    app = web.Application()
    app.add_routes([web.get("/hello", hello), web.post("/echo", echo), web.get("/ws", ws), web.get("/slow/{n}", slow)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_aiohttp_server_and_client(run_on: Run) -> None:
    async def main() -> tuple[Any, int, str, list[str]]:
        runner, base = await _start_app()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/hello", params={"name": "trilane"}) as resp:
                    body = await resp.json()
                payload = bytes(range(256)) * 1024
                async with session.post(f"{base}/echo", data=payload) as resp:
                    data = await resp.read()
                echoed = len(data) if data == payload else -1
                async with session.ws_connect(f"{base}/ws") as sock:
                    await sock.send_str("hi")
                    msg = await sock.receive()
                    ws_reply = msg.data
                texts = await asyncio.gather(*(_get_text(session, f"{base}/slow/{i}") for i in range(20)))
        finally:
            await runner.cleanup()
        return body, echoed, ws_reply, texts

    body, echoed, ws_reply, texts = run_on(main())
    assert body == {"hello": "trilane"}
    assert echoed == 256 * 1024
    assert ws_reply == "HI"
    assert texts == [str(i) for i in range(20)]


async def _get_text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        return await resp.text()


def test_httpx_client_against_aiohttp_server(run_on: Run) -> None:
    async def main() -> tuple[int, Any, list[int]]:
        runner, base = await _start_app()
        try:
            async with httpx.AsyncClient(base_url=base) as client:
                resp = await client.get("/hello", params={"name": "httpx"})
                codes = await asyncio.gather(*(client.get(f"/slow/{i}") for i in range(10)))
        finally:
            await runner.cleanup()
        return resp.status_code, resp.json(), [int(r.text) for r in codes]

    assert run_on(main()) == (200, {"hello": "httpx"}, list(range(10)))


@pytest.mark.parametrize("policy", ["fifo", "priority", "fair", "round_robin"])
def test_aiohttp_on_every_policy(policy: str) -> None:
    async def main() -> list[str]:
        runner, base = await _start_app()
        try:
            async with aiohttp.ClientSession() as session:
                tasks = [trilane.spawn(_get_text(session, f"{base}/slow/{i}"), priority=i % 3) for i in range(10)]
                return list(await asyncio.gather(*tasks))
        finally:
            await runner.cleanup()

    assert trilane.run(main(), policy=policy) == [str(i) for i in range(10)]


def test_anyio_through_loop_factory() -> None:
    seen: dict[str, Any] = {}

    async def main() -> list[int]:
        seen["loop"] = asyncio.get_running_loop()
        results: list[int] = []

        async def child(i: int) -> None:
            await anyio.sleep(0.001 * (3 - i))
            results.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(child, i)
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(10)
        seen["cancelled"] = scope.cancelled_caught
        results.append(await anyio.to_thread.run_sync(sum, [1, 2]))
        return results

    out = anyio.run(main, backend="asyncio", backend_options={"loop_factory": trilane.new_event_loop})
    assert out == [2, 1, 0, 3]
    assert isinstance(seen["loop"], trilane.Loop)
    assert seen["cancelled"] is True


def test_anyio_tcp_streams_on_trilane() -> None:
    async def main() -> bytes:
        async def serve(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                await stream.send(await stream.receive())

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                await client.send(b"anyio")
                got = await client.receive()
            tg.cancel_scope.cancel()
        return got

    factory = partial(trilane.new_event_loop, policy="fair")
    assert anyio.run(main, backend="asyncio", backend_options={"loop_factory": factory}) == b"anyio"


def test_sync_http_client_in_a_thread_does_not_block(run_on: Run) -> None:
    """A blocking socket call moved to a thread while the loop keeps serving."""

    async def main() -> tuple[bytes, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        server = await asyncio.start_server(_reply_later, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t = asyncio.ensure_future(ticker())
        data = await asyncio.to_thread(_blocking_get, port)
        stop.set()
        await t
        server.close()
        await server.wait_closed()
        return data, ticks

    data, ticks = run_on(main())
    assert data == b"late"
    assert ticks > 1  # the loop kept running while the thread blocked


async def _reply_later(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    await asyncio.sleep(0.05)
    writer.write(b"late")
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def _blocking_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET\n")
        return sock.recv(100)
