"""Timers on virtual time: a MockClock jumps to the next timer instead of sleeping.

No test here waits in real time for a timer; the generous real-time bounds
only catch a clock that sleeps for real (which would take hours).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import trilane
from trilane import MockClock


def run_mock(coro: Any, clock: MockClock | None = None, policy: str = "fifo") -> Any:
    clock = clock or MockClock()
    return trilane.run(coro, clock=clock, policy=policy)


@pytest.mark.parametrize("policy", trilane.policy_names())
def test_hour_long_sleep_takes_no_real_time(policy: str) -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - start

    t0 = time.monotonic()
    assert run_mock(main(), policy=policy) == pytest.approx(3600)
    assert time.monotonic() - t0 < 30  # a real sleep would take an hour


def test_time_stands_still_while_callbacks_run() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        a = loop.time()
        sum(range(100_000))  # real work: virtual time does not move
        return a, loop.time()

    a, b = run_mock(main(), MockClock(start=100.0))
    assert a == b == 100.0


def test_timers_fire_in_deadline_order_at_exact_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[str, float]] = []
        for name, delay in [("c", 30.0), ("a", 10.0), ("b", 20.0), ("a2", 10.0)]:
            loop.call_later(delay, lambda n=name: out.append((n, loop.time())))
        await asyncio.sleep(31)
        return out

    assert run_mock(main()) == [("a", 10.0), ("a2", 10.0), ("b", 20.0), ("c", 30.0)]


def test_wait_for_and_timeout_expire_on_virtual_time() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        out = []
        try:
            await asyncio.wait_for(asyncio.sleep(1000), 5)
        except TimeoutError:
            out.append(("wait_for", loop.time()))
        try:
            async with asyncio.timeout(7):
                await asyncio.Event().wait()
        except TimeoutError:
            out.append(("timeout", loop.time()))
        return out

    assert run_mock(main()) == [("wait_for", 5.0), ("timeout", 12.0)]


def test_cancelled_timers_never_fire_and_are_compacted() -> None:
    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        handles = [loop.call_later(1 + i, fired.append, i) for i in range(1000)]
        for h in handles[:-1]:
            h.cancel()
        pending_after_cancel = len(loop._scheduled)  # type: ignore[attr-defined]
        await asyncio.sleep(2000)
        return fired, pending_after_cancel

    fired, pending = run_mock(main())
    assert fired == [999]
    assert pending < 1000  # the heap dropped most cancelled timers


def test_jump_moves_time_forward_by_hand() -> None:
    clock = MockClock()
    clock.jump(2.5)
    assert clock.time() == 2.5
    with pytest.raises(ValueError, match="forward"):
        clock.jump(-1)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(10, fut.set_result, "late")
        loop.call_soon(clock.jump, 20)  # by hand, past the timer
        await fut
        return loop.time()

    assert run_mock(main(), clock) == 22.5


def test_io_is_still_polled_while_time_jumps() -> None:
    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(_echo_line, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x\n")
        line = await asyncio.wait_for(reader.readline(), 3600)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line, loop.time()

    line, now = run_mock(main())
    assert line == b"x\n"
    assert now < 3600  # I/O completed before the virtual deadline


async def _echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_priority_aging_on_virtual_time() -> None:
    """A low-priority callback queued long ago overtakes new high-priority work (aging)."""
    clock = MockClock()
    loop = trilane.new_event_loop(policy="priority", clock=clock)
    try:
        out: list[str] = []

        async def queue_work() -> None:
            low = trilane.spawn(_mark(out, "low"), priority=0)
            clock.jump(1.0)  # 1 s = 20 levels of aging at level_wait=0.05
            high = trilane.spawn(_mark(out, "high"), priority=5)
            await asyncio.gather(low, high)

        loop.run_until_complete(queue_work())
        assert out == ["low", "high"]
    finally:
        loop.close()


async def _mark(out: list[str], name: str) -> None:
    out.append(name)


def test_busy_loop_does_not_keep_cancelled_timeouts() -> None:
    """Timeouts set and cancelled while work is always ready must not pile up in the heap."""

    async def spin(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        spinner = asyncio.ensure_future(spin(stop))
        biggest = 0
        for _ in range(5000):
            async with asyncio.timeout(3600):
                await asyncio.sleep(0)
            biggest = max(biggest, len(loop._scheduled))  # type: ignore[attr-defined]
        stop.set()
        await spinner
        return biggest

    assert run_mock(main()) <= 250
