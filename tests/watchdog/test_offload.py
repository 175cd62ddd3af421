"""to_thread and to_process: results, options, context, and killing the work on cancel or timeout."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
import time
from pathlib import Path

import pytest
from _offload_tasks import announce_then_spin, fail, pid_and_square

import trilane
from _procs import pid_alive

pytestmark = pytest.mark.usefixtures("shared_pools")

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="-")


async def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def _pid_from(path: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        await asyncio.sleep(0.01)
    raise AssertionError("the worker never started the task")


def _tagged(suffix: str, *, sep: str = ":") -> tuple[str, str]:
    return threading.current_thread().name, f"{REQUEST_ID.get()}{sep}{suffix}"


def test_to_thread_runs_in_a_pool_thread_with_the_callers_context() -> None:
    async def main() -> tuple[str, str]:
        REQUEST_ID.set("req-7")
        return await trilane.to_thread(_tagged, "x", sep="/")

    thread, value = trilane.run(main())
    assert thread != threading.current_thread().name and thread.startswith("trilane-to-thread")
    assert value == "req-7/x"


def test_to_thread_keeps_the_loop_free_while_it_blocks() -> None:
    got: list[trilane.BlockingReport] = []

    async def ticker(ticks: list[float]) -> None:
        for _ in range(5):
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.02)

    async def main() -> int:
        ticks: list[float] = []
        task = asyncio.create_task(ticker(ticks))
        await trilane.to_thread(time.sleep, 0.3)
        await task
        return len(ticks)

    assert trilane.run(main(), watchdog=trilane.Watchdog(0.1, on_block=got.append, log=False)) == 5
    assert got == []  # the same time.sleep, moved off the loop: no incident


def test_options_are_a_task_options_and_never_clash_with_fn_kwargs() -> None:
    async def main() -> tuple[str, str]:
        opts = trilane.TaskOptions(priority=3, group="tenant-a", timeout=30, name="tag")
        return await trilane.to_thread(_tagged, "y", options=opts, sep="|")

    assert trilane.run(main())[1] == "-|y"

    async def bad() -> object:
        return await trilane.to_thread(_tagged, "z", options={"priority": 1})  # type: ignore[arg-type]

    with pytest.raises(TypeError, match=r"functools\.partial"):
        trilane.run(bad())

    # fn's own keyword named "options" goes through functools.partial.
    def takes_options(options: str) -> str:
        return options

    async def partial() -> str:
        return await trilane.to_thread(functools.partial(takes_options, options="mine"))

    assert trilane.run(partial()) == "mine"


def test_to_thread_timeout_raises_task_timeout() -> None:
    async def main() -> None:
        await trilane.to_thread(time.sleep, 0.5, options=trilane.TaskOptions(timeout=0.05))

    with pytest.raises(trilane.TaskTimeout):
        trilane.run(main())


def test_to_process_runs_in_another_process_and_raises_its_errors() -> None:
    async def main() -> tuple[int, int]:
        return await trilane.to_process(pid_and_square, 7, options=trilane.TaskOptions(priority=1))

    pid, square = trilane.run(main())
    assert square == 49 and pid != os.getpid()

    async def failing() -> None:
        await trilane.to_process(fail, "no good")

    with pytest.raises(ValueError, match="no good"):
        trilane.run(failing())


@pytest.mark.slow
def test_cancelling_the_awaiting_task_kills_the_worker(tmp_path: Path) -> None:
    marker = tmp_path / "pid"

    async def main() -> tuple[bool, bool]:
        task = asyncio.create_task(trilane.to_process(announce_then_spin, str(marker)))
        pid = await _pid_from(marker)
        assert pid_alive(pid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), await _gone(pid)

    cancelled, gone = trilane.run(main())
    assert cancelled
    assert gone, "the worker process was not killed"


@pytest.mark.slow
def test_a_timeout_kills_the_worker(tmp_path: Path) -> None:
    marker = tmp_path / "pid"

    async def main() -> tuple[float, bool]:
        started = time.monotonic()
        with pytest.raises(trilane.TaskTimeout, match="timeout"):
            await trilane.to_process(announce_then_spin, str(marker), options=trilane.TaskOptions(timeout=0.5))
        took = time.monotonic() - started
        return took, await _gone(int(marker.read_text()))

    took, gone = trilane.run(main())
    assert took < 20  # far less than forever
    assert gone, "the worker process was not killed"
