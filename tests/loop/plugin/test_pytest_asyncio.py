"""``@pytest.mark.asyncio`` tests and async fixtures run on the loops the hook in conftest.py names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import trilane


@pytest_asyncio.fixture
async def echo_port() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_runs_on_each_factory(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    expected = not request.node.name.endswith("[asyncio]")
    assert isinstance(loop, trilane.Loop) is expected
    if isinstance(loop, trilane.Loop):
        assert loop.policy.name == ("priority" if "priority" in request.node.name else "fifo")
    assert await asyncio.sleep(0, "ok") == "ok"


@pytest.mark.asyncio
async def test_async_fixture_shares_the_loop(echo_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
    writer.write(b"ping\n")
    await writer.drain()
    assert await reader.readline() == b"ping\n"
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio(loop_factories=["trilane"])
async def test_marker_selects_one_factory() -> None:
    assert isinstance(asyncio.get_running_loop(), trilane.Loop)
    task = trilane.spawn(asyncio.sleep(0, 7), priority=3)
    assert await task == 7
    assert trilane.task_stats(task).priority == 3
