"""ThreadPool: timeouts that fail at the deadline, lost threads, policies."""

from __future__ import annotations

import logging
import threading
import time

import _tasks
import pytest

import trilane

pytestmark = pytest.mark.timeout(30)


def test_thread_task_past_its_timeout(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    pool = trilane.ThreadPool(2, name="t-timeout")
    try:
        t0 = time.monotonic()
        stuck = pool.submit_with(trilane.TaskOptions(timeout=0.2, name="stuck"), release.wait, 30)
        with pytest.raises(trilane.TaskTimeout) as info:
            stuck.result(timeout=10)
        assert time.monotonic() - t0 < 10  # failed at its deadline, not when the call returned
        assert isinstance(info.value, TimeoutError) and "'stuck'" in str(info.value)
        assert "lost_threads" in str(info.value)
        assert pool.lost_threads == 1 and pool.lost_threads_running == 1
        # Capacity is kept: two tasks that must run at the same time still can.
        barrier = threading.Barrier(2, timeout=10)
        both = [pool.submit(barrier.wait) for _ in range(2)]
        assert sorted(f.result(timeout=10) for f in both) == [0, 1]
        with caplog.at_level(logging.WARNING, logger="trilane.pools"):
            pool.shutdown(wait=True)  # does not hang on the lost thread
        assert "1 lost thread(s) still running" in caplog.text
    finally:
        release.set()
        pool.shutdown()
    deadline = time.monotonic() + 5
    while pool.lost_threads_running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.lost_threads_running == 0


def test_a_task_that_finishes_in_time_is_not_lost(no_leaks: None) -> None:
    with trilane.ThreadPool(2) as pool:
        futs = [pool.submit_with(trilane.TaskOptions(timeout=10), _tasks.inc, i) for i in range(50)]
        assert [f.result() for f in futs] == list(range(1, 51))
        assert pool.lost_threads == 0


@pytest.mark.parametrize("policy", ["priority"])
def test_higher_priority_runs_first(no_leaks: None, policy: str) -> None:
    gate = threading.Event()
    order: list[str] = []
    with trilane.ThreadPool(1, policy=policy) as pool:
        blocker = pool.submit(gate.wait, 10)
        for name, prio in [("low", 0), ("mid", 5), ("high", 10)]:
            pool.submit_with(trilane.TaskOptions(priority=prio), order.append, name)
        gate.set()
        assert blocker.result(timeout=10)
    assert order == ["high", "mid", "low"]


def test_round_robin_alternates_groups(no_leaks: None) -> None:
    gate = threading.Event()
    order: list[str] = []
    with trilane.ThreadPool(1, policy="round_robin") as pool:
        pool.submit(gate.wait, 10)
        for i in range(3):
            pool.submit_with(trilane.TaskOptions(group="a"), order.append, f"a{i}")
        for i in range(3):
            pool.submit_with(trilane.TaskOptions(group="b"), order.append, f"b{i}")
        gate.set()
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_fair_policy_is_charged_run_time(no_leaks: None) -> None:
    with trilane.ThreadPool(1, policy="fair") as pool:
        pool.submit_with(trilane.TaskOptions(group="g"), time.sleep, 0.01).result()
    assert pool.policy.name == "fair"


def test_task_options_are_validated() -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        trilane.TaskOptions(priority="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        trilane.TaskOptions(timeout=-1)
    with pytest.raises(ValueError, match="retries"):
        trilane.TaskOptions(retries=-1)
    with pytest.raises(TypeError, match="hashable"):
        trilane.TaskOptions(group=[1])
    with trilane.ThreadPool(1) as pool, pytest.raises(TypeError, match="TaskOptions"):
        pool.submit_with({"priority": 1}, _tasks.inc, 1)  # type: ignore[arg-type]


def test_options_never_clash_with_the_functions_own_kwargs(no_leaks: None) -> None:
    def f(priority: int, timeout: int, options: str) -> tuple[int, int, str]:
        return priority, timeout, options

    with trilane.ThreadPool(1) as pool:
        fut = pool.submit_with(trilane.TaskOptions(priority=3), f, priority=1, timeout=2, options="x")
        assert fut.result() == (1, 2, "x")
        assert pool.submit(f, priority=1, timeout=2, options="y").result() == (1, 2, "y")


def test_done_callback_may_submit_to_the_same_pool(no_leaks: None) -> None:
    with trilane.ThreadPool(2) as pool:
        second: list[object] = []
        fut = pool.submit(_tasks.inc, 1)
        fut.add_done_callback(lambda f: second.append(pool.submit(_tasks.inc, f.result())))
        fut.result()
        deadline = time.monotonic() + 5
        while not second and time.monotonic() < deadline:
            time.sleep(0.001)
        assert second[0].result(timeout=5) == 3  # type: ignore[attr-defined]


def test_stress_many_submitters(no_leaks: None) -> None:
    with trilane.ThreadPool(4, policy="priority") as pool:
        results: list[int] = []
        lock = threading.Lock()

        def submitter(base: int) -> None:
            futs = [pool.submit_with(trilane.TaskOptions(priority=i % 3), _tasks.inc, base + i) for i in range(500)]
            vals = [f.result() for f in futs]
            with lock:
                results.extend(vals)

        threads = [threading.Thread(target=submitter, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == sorted(k * 1000 + i + 1 for k in range(4) for i in range(500))
