"""The same tests against trilane's pools and the stdlib executors, where they
should behave alike; and both pools as an event loop's default executor."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator

import _tasks
import pytest

import trilane

pytestmark = pytest.mark.timeout(30)

FACTORIES: dict[str, Callable[[], cf.Executor]] = {
    "trilane-thread": lambda: trilane.ThreadPool(2),
    "stdlib-thread": lambda: cf.ThreadPoolExecutor(2),
    "trilane-process": lambda: trilane.ProcessPool(2),
    "stdlib-process": lambda: cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")),
}


@pytest.fixture(params=sorted(FACTORIES))
def executor(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[cf.Executor]:
    with FACTORIES[request.param]() as ex:
        yield ex


@pytest.fixture(params=["trilane-thread", "stdlib-thread"])
def thread_executor(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[cf.Executor]:
    with FACTORIES[request.param]() as ex:
        yield ex


def test_submit_returns_a_concurrent_future(executor: cf.Executor) -> None:
    fut = executor.submit(_tasks.add, 2, y=3)
    assert isinstance(fut, cf.Future)
    assert fut.result(timeout=10) == 5
    assert fut.done() and not fut.cancelled() and fut.exception() is None


def test_exception_type_and_args_survive(executor: cf.Executor) -> None:
    fut = executor.submit(_tasks.boom, "x")
    with pytest.raises(ValueError) as info:
        fut.result(timeout=10)
    assert info.value.args == ("boom on 'x'",)
    assert isinstance(fut.exception(), ValueError)


def test_map_order_and_zip_semantics(executor: cf.Executor) -> None:
    assert list(executor.map(_tasks.inc, range(50))) == list(range(1, 51))
    assert list(executor.map(_tasks.add, [1, 2, 3], [10, 20])) == [11, 22]
    assert list(executor.map(_tasks.inc, [])) == []


def test_map_raises_at_the_failing_item(executor: cf.Executor) -> None:
    it = executor.map(_tasks.fail_on, range(6))
    assert [next(it), next(it), next(it)] == [1, 2, 3]
    with pytest.raises(KeyError):
        next(it)


def test_map_timeout(executor: cf.Executor) -> None:
    it = executor.map(_tasks.sleep_then, [0.0, 2.0], timeout=0.5)
    assert next(it) is None
    with pytest.raises(TimeoutError):
        next(it)


def test_wait_and_as_completed(executor: cf.Executor) -> None:
    futs = [executor.submit(_tasks.inc, i) for i in range(10)]
    done, not_done = cf.wait(futs, timeout=10)
    assert len(done) == 10 and not not_done
    assert sorted(f.result() for f in cf.as_completed(futs, timeout=10)) == list(range(1, 11))


def test_submit_after_shutdown_raises_runtime_error(executor: cf.Executor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(_tasks.inc, 1)


def test_exit_waits_for_submitted_work(executor: cf.Executor) -> None:
    with executor:
        futs = [executor.submit(_tasks.sleep_then, 0.05, i) for i in range(4)]
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == [0, 1, 2, 3]


def test_cancel_a_pending_future(thread_executor: cf.Executor) -> None:
    gate = threading.Event()
    blockers = [thread_executor.submit(gate.wait, 10) for _ in range(2)]
    deadline = time.monotonic() + 10
    while not all(b.running() for b in blockers):  # both threads busy: the next task must wait
        assert time.monotonic() < deadline
        time.sleep(0.001)
    pending = thread_executor.submit(_tasks.inc, 1)
    assert pending.cancel() is True
    assert pending.cancelled()
    assert blockers[0].cancel() is False  # running thread tasks cannot be cancelled
    gate.set()
    with pytest.raises(cf.CancelledError):
        pending.result()


def test_shutdown_cancel_futures_cancels_pending(thread_executor: cf.Executor) -> None:
    gate = threading.Event()
    for _ in range(2):
        thread_executor.submit(gate.wait, 10)
    pending = [thread_executor.submit(_tasks.inc, i) for i in range(5)]
    threading.Timer(0.1, gate.set).start()
    thread_executor.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in pending)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_pool_as_the_default_executor_of_a_trilane_loop(no_leaks: None, kind: str) -> None:
    pool = trilane.ThreadPool(2) if kind == "thread" else trilane.ProcessPool(2)

    async def main() -> tuple[int, int, list[int]]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        a = await loop.run_in_executor(None, _tasks.inc, 1)
        b = await loop.run_in_executor(pool, _tasks.add, 2, 3)
        many = await asyncio.gather(*(loop.run_in_executor(None, _tasks.inc, i) for i in range(20)))
        return a, b, list(many)

    with pool:
        loop = trilane.new_event_loop()
        try:
            assert loop.run_until_complete(main()) == (2, 5, list(range(1, 21)))
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_run_in_executor_on_a_trilane_loop(no_leaks: None, kind: str) -> None:
    pool = trilane.ThreadPool(2) if kind == "thread" else trilane.ProcessPool(2)

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(pool, _tasks.add, i, 1) for i in range(20))))

    with pool:
        assert trilane.run(main()) == list(range(1, 21))


def test_cancelling_an_awaiting_task_kills_the_process_work(no_leaks: None) -> None:
    async def main(pool: trilane.ProcessPool) -> int | None:
        loop = asyncio.get_running_loop()
        fut = pool.submit(_tasks.ignore_sigterm_and_sleep, 30)
        waiter = asyncio.ensure_future(asyncio.wrap_future(fut))
        while not fut.running():
            await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await loop.run_in_executor(None, lambda: None)
        return fut.worker_pid if fut.cancelled() else None

    with trilane.ProcessPool(1, term_grace=0.1) as pool:
        loop = trilane.new_event_loop()
        try:
            pid = loop.run_until_complete(main(pool))
        finally:
            loop.close()
        assert pid is not None
        assert pool.submit(_tasks.inc, 1).result(timeout=10) == 2
