"""Cleanup and races: no leaked fds, threads or child processes; threads racing the loop's shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable

import pytest

import trilane

Factory = Callable[[], asyncio.AbstractEventLoop]


def test_many_loops_leak_nothing(loop_factory: Factory, no_leaks: None) -> None:
    for _ in range(50):
        loop = loop_factory()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def test_executor_server_and_subprocess_are_cleaned_up(run_on: Callable[..., object], no_leaks: None) -> None:
    async def main() -> tuple[int, bytes]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        n = await asyncio.to_thread(len, "four")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('x')", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        server.close()
        await server.wait_closed()
        return n, out

    assert run_on(main()) == (4, b"x\n")


@pytest.mark.parametrize("policy", trilane.policy_names())
def test_call_soon_threadsafe_storm_on_every_policy(policy: str, no_leaks: None) -> None:
    threads, per_thread = 6, 400

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        counts = [0] * threads
        done = asyncio.Event()
        remaining = threads * per_thread

        def hit(i: int) -> None:
            nonlocal remaining
            counts[i] += 1
            remaining -= 1
            if remaining == 0:
                done.set()

        def pound(i: int) -> None:
            for k in range(per_thread):
                loop.call_soon_threadsafe(hit, i)
                if k % 50 == 0:
                    loop.call_soon_threadsafe(lambda: None)  # extra wake-ups interleaved

        async def busy() -> None:  # keep the ready queue non-empty while threads push
            while not done.is_set():
                await asyncio.sleep(0)

        spinner = asyncio.ensure_future(busy())
        workers = [threading.Thread(target=pound, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        await asyncio.wait_for(done.wait(), 30)
        await spinner
        for w in workers:
            w.join()
        return counts

    assert trilane.run(main(), policy=policy) == [per_thread] * threads


def test_threads_racing_close_get_runtime_error_not_corruption(loop_factory: Factory, no_leaks: None) -> None:
    for _ in range(20):
        loop = loop_factory()
        errors: list[BaseException] = []
        accepted = 0
        stop = threading.Event()

        def pound(
            loop: asyncio.AbstractEventLoop = loop,
            stop: threading.Event = stop,
            errors: list[BaseException] = errors,
        ) -> None:
            nonlocal accepted
            while not stop.is_set():
                try:
                    loop.call_soon_threadsafe(lambda: None)
                    accepted += 1
                except RuntimeError:
                    return  # "Event loop is closed": the documented answer
                except BaseException as exc:
                    errors.append(exc)
                    return

        t = threading.Thread(target=pound)
        t.start()
        loop.run_until_complete(asyncio.sleep(0.001))
        loop.close()
        stop.set()
        t.join(10)
        assert not t.is_alive()
        assert errors == []


def test_stop_from_another_thread(loop_factory: Factory, no_leaks: None) -> None:
    loop = loop_factory()
    try:
        started = threading.Event()
        loop.call_soon(started.set)
        timer = threading.Thread(target=lambda: (started.wait(10), loop.call_soon_threadsafe(loop.stop)))
        timer.start()
        loop.run_forever()  # returns only because the other thread stopped it
        timer.join()
        assert not loop.is_running()
    finally:
        loop.close()


def test_closing_a_loop_with_pending_timers_and_callbacks(loop_factory: Factory) -> None:
    loop = loop_factory()
    fired: list[int] = []
    loop.call_soon(fired.append, 1)
    loop.call_later(0.001, fired.append, 2)
    loop.close()
    assert fired == []
    assert loop.is_closed()
    loop.close()  # closing twice is fine, as in asyncio


@pytest.mark.parametrize("policy", trilane.policy_names())
def test_signal_wakes_an_idle_loop_on_every_policy(policy: str) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        got: list[str] = []
        done = asyncio.Event()

        def on_signal() -> None:
            got.append("SIGUSR2")
            done.set()

        loop.add_signal_handler(signal.SIGUSR2, on_signal)
        try:
            # the loop is idle (blocked in select) when the signal arrives from another thread
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGUSR2)).start()
            await asyncio.wait_for(done.wait(), 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
        return got

    assert trilane.run(main(), policy=policy) == ["SIGUSR2"]
