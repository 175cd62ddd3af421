"""One option at a time: timeouts, retries on virtual time, rate, errors modes, ordering, memory bound."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import Any

import pytest
from mapfuncs import asleep_for, double, fail_on_odd, sleep_for

import trilane

# Every test here checks that it leaves no thread, child process or fd behind.
pytestmark = pytest.mark.usefixtures("no_leaks")

# -- per-item timeout, on each backend ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "how", "slow"),
    [
        # serial cannot stop the call and a thread cannot be killed: keep those items short
        # (no_leaks waits for the abandoned thread to end).
        ("serial", "cannot stop a running call", 1.0),
        ("thread", "abandoned", 4.0),
        ("process", "worker process was killed", 30.0),
        ("async", "coroutine was cancelled", 30.0),
    ],
)
def test_a_slow_item_times_out_and_the_others_do_not(backend: str, how: str, slow: float) -> None:
    fn = asleep_for if backend == "async" else sleep_for
    start = time.monotonic()
    out = list(trilane.map(fn, [0.0, slow, 0.0], backend=backend, timeout=0.3, errors="collect"))
    elapsed = time.monotonic() - start
    assert out[0] == 0.0 and out[2] == 0.0
    failure = out[1]
    assert isinstance(failure, trilane.Failure)
    assert isinstance(failure.exception, trilane.TaskTimeout)
    assert isinstance(failure.exception, TimeoutError)
    assert f"item {slow!r}" in str(failure.exception) and how in str(failure.exception)
    assert failure.attempts == 1
    if backend != "serial":
        assert elapsed < slow * 0.75  # the run did not wait for the item: it was stopped or abandoned


def test_a_timed_out_item_is_retried_like_any_other_failure() -> None:
    clock = trilane.MockClock()
    out = list(
        trilane.map(asleep_for, [5.0, 0.0], backend="async", timeout=1.0, retries=2, errors="collect", clock=clock)
    )
    assert isinstance(out[0], trilane.Failure) and out[0].attempts == 3
    assert isinstance(out[0].exception, trilane.TaskTimeout)
    assert out[1] == 0.0


# -- retries with backoff, on a virtual clock -----------------------------------------------------


class Flaky:
    """Fails the first *n* calls for each item, recording the (virtual) time of each call."""

    def __init__(self, n: int, exc: type[Exception] = ValueError) -> None:
        self.n = n
        self.exc = exc
        self.calls: dict[int, list[float]] = {}

    async def __call__(self, x: int) -> int:
        times = self.calls.setdefault(x, [])
        times.append(asyncio.get_running_loop().time())
        if len(times) <= self.n:
            raise self.exc(f"attempt {len(times)} of {x}")
        return x


def test_retries_back_off_exponentially_with_jitter_on_virtual_time() -> None:
    clock = trilane.MockClock()
    flaky = Flaky(3)
    backoff = trilane.Backoff(initial=10.0, factor=3.0, cap=60.0, jitter=0.5)
    start = time.monotonic()
    out = list(trilane.map(flaky, [1, 2], backend="async", retries=3, backoff=backoff, clock=clock))
    assert time.monotonic() - start < 5  # 2 × (10 + 30 + 60) virtual seconds took no real time
    assert out == [1, 2]
    for times in flaky.calls.values():
        assert len(times) == 4
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap, base in zip(gaps, [10.0, 30.0, 60.0], strict=True):
            assert base * 0.5 - 1e-9 <= gap <= base + 1e-9
    assert clock.time() >= 50.0


def test_retries_run_out_and_the_failure_counts_every_attempt() -> None:
    flaky = Flaky(5)
    out = list(trilane.map(flaky, [7], backend="serial", retries=2, errors="collect", clock=trilane.MockClock()))
    assert len(out) == 1 and isinstance(out[0], trilane.Failure)
    assert out[0].attempts == 3 and str(out[0].exception) == "attempt 3 of 7"


def test_only_retry_on_exceptions_are_retried() -> None:
    flaky = Flaky(1, KeyError)
    out = list(
        trilane.map(flaky, [1], backend="serial", retries=5, retry_on=ValueError, errors="collect",
                    clock=trilane.MockClock())
    )  # fmt: skip
    assert isinstance(out[0], trilane.Failure) and out[0].attempts == 1
    assert len(flaky.calls[1]) == 1


def test_thread_backend_retries_too() -> None:
    calls: dict[int, int] = {}

    def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] < 3:
            raise ValueError(x)
        return x

    it = trilane.map(flaky, range(6), backend="thread", retries=2, backoff=0.001)
    assert list(it) == list(range(6))
    assert calls == dict.fromkeys(range(6), 3)
    assert it.stats["retries"] == 12


# -- rate limit ------------------------------------------------------------------------------------


def test_rate_spaces_starts_on_virtual_time() -> None:
    clock = trilane.MockClock()
    starts: list[float] = []

    async def record(x: int) -> int:
        starts.append(asyncio.get_running_loop().time())
        return x

    out = list(trilane.map(record, range(10), backend="async", rate="5/s", concurrency=10, clock=clock))
    assert out == list(range(10))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.2 - 1e-9 for gap in gaps)
    assert starts[-1] - starts[0] == pytest.approx(1.8)


def test_rate_counts_retries_too() -> None:
    clock = trilane.MockClock()
    flaky = Flaky(1)
    list(trilane.map(flaky, [1, 2], backend="async", rate="1/min", retries=1, backoff=0.0, clock=clock))
    starts = sorted(t for times in flaky.calls.values() for t in times)
    assert len(starts) == 4
    assert all(b - a >= 60 - 1e-9 for a, b in itertools.pairwise(starts))


def test_rate_holds_in_real_time_across_threads() -> None:
    start = time.monotonic()
    out = list(trilane.map(double, range(6), backend="thread", workers=4, rate="20/s"))
    assert out == [0, 2, 4, 6, 8, 10]
    assert time.monotonic() - start >= 5 * 0.05 - 0.01  # six starts, 50 ms apart at the least


# -- errors modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["serial", "thread", "async"])
def test_errors_collect_skip_and_raise(backend: str) -> None:
    collected = list(trilane.map(fail_on_odd, range(6), backend=backend, errors="collect"))
    assert [c if not isinstance(c, trilane.Failure) else ("F", c.item, c.attempts) for c in collected] == [
        0, ("F", 1, 1), 2, ("F", 3, 1), 4, ("F", 5, 1)
    ]  # fmt: skip
    assert all(isinstance(c.exception, ValueError) for c in collected if isinstance(c, trilane.Failure))
    assert list(trilane.map(fail_on_odd, range(6), backend=backend, errors="skip")) == [0, 2, 4]
    got = []
    with pytest.raises(ValueError, match="odd 1") as info:
        for value in trilane.map(fail_on_odd, range(6), backend=backend):
            got.append(value)
    assert got == [0]
    assert any("index 1" in note for note in info.value.__notes__)


@pytest.mark.parametrize("backend", ["thread", "async"])
def test_raise_stops_pulling_input(backend: str) -> None:
    pulled = 0

    def endless():
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    with pytest.raises(ValueError, match="odd 1"):
        list(trilane.map(fail_on_odd, endless(), backend=backend, concurrency=4))
    assert pulled < 100


# -- ordering and bounded memory -------------------------------------------------------------------


def test_unordered_yields_in_completion_order() -> None:
    clock = trilane.MockClock()
    out = list(trilane.map(asleep_for, [3.0, 1.0, 2.0, 0.0], backend="async", ordered=False, clock=clock))
    assert out == [0.0, 1.0, 2.0, 3.0]
    out = list(trilane.map(asleep_for, [3.0, 1.0, 2.0, 0.0], backend="async", ordered=True, clock=trilane.MockClock()))
    assert out == [3.0, 1.0, 2.0, 0.0]


@pytest.mark.parametrize("ordered", [True, False])
def test_a_slow_head_item_holds_back_the_producer_not_memory(ordered: bool) -> None:
    pulled = 0
    seen_when_head_done: list[int] = []

    def endless():
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    async def work(x: int) -> int:
        if x == 0:
            await asyncio.sleep(1000)  # virtual: everything else finishes meanwhile
            seen_when_head_done.append(pulled)
        return x

    it = trilane.map(work, endless(), backend="async", concurrency=4, ordered=ordered, clock=trilane.MockClock())
    with it:
        got = list(itertools.islice(it, 50))
    if ordered:
        assert got == list(range(50))
        # Waiting 1000 s for item 0, the run pulled no more than the window (2 × concurrency) + one.
        assert seen_when_head_done[0] <= 2 * 4 + 1
    else:
        assert 0 not in got
    assert pulled <= 50 + 2 * 4 + 1


@pytest.mark.slow
def test_ten_million_items_stay_flat_in_memory(tmp_path: Any) -> None:
    import subprocess

    script = tmp_path / "rss.py"
    script.write_text(
        "import resource, trilane\n"
        "def inc(x):\n    return x + 1\n"
        "list(trilane.map(inc, range(10_000), backend='thread'))  # warm up: pool, loop, imports\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "total = 0\n"
        "for v in trilane.map(inc, (i for i in range(10_000_000)), backend='thread'):\n    total += 1\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(total, (peak - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=55, check=True)
    total, grown_mb = map(int, out.stdout.split())
    assert total == 10_000_000
    assert grown_mb < 100, f"peak RSS grew by {grown_mb} MB"


# -- amap, outcomes, plan, progress ----------------------------------------------------------------


def test_amap_on_both_loops(run_on: Any) -> None:
    async def main() -> tuple[list[Any], str | None]:
        it = trilane.amap(asleep_for, [0.02, 0.0, 0.01], concurrency=3)
        got = [x async for x in it]
        plan = it.plan
        return got, plan.backend if plan else None

    assert run_on(main()) == ([0.02, 0.0, 0.01], "async")


def test_amap_outcomes_and_early_close(run_on: Any) -> None:
    async def main() -> list[Any]:
        async with trilane.amap(asleep_for, itertools.repeat(0.0), concurrency=2) as it:
            out = []
            async for o in it.outcomes():
                out.append((o.index, o.ok, o.result))
                if len(out) == 3:
                    break
        return out

    assert run_on(main()) == [(0, True, 0.0), (1, True, 0.0), (2, True, 0.0)]


def test_outcomes_carry_key_item_result_error_attempts_and_seconds() -> None:
    outs = list(trilane.map(fail_on_odd, [10, 11], backend="serial", errors="collect").outcomes())
    a, b = outs
    assert (a.index, a.key, a.item, a.result, a.error, a.ok) == (0, 10, 10, 10, None, True)
    assert (a.attempts, a.resumed) == (1, False)
    assert (b.index, b.key, b.item, b.ok, b.attempts) == (1, 11, 11, False, 1)
    assert isinstance(b.error, ValueError)
    assert a.seconds >= 0.0 and b.seconds >= 0.0
    skipped = list(trilane.map(fail_on_odd, [10, 11], backend="serial", errors="skip").outcomes())
    assert [o.item for o in skipped] == [10]


def test_results_and_outcomes_cannot_be_mixed() -> None:
    it = trilane.map(double, [1, 2], backend="serial")
    assert next(iter(it)) == 2
    with pytest.raises(RuntimeError, match="either"):
        next(it.outcomes())
    it.close()


def test_progress_is_drawn_only_when_forced_or_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(trilane.map(double, range(5), backend="serial", progress=True)) == [0, 2, 4, 6, 8]
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    assert list(trilane.map(fail_on_odd, range(5), backend="serial", progress="force", errors="skip")) == [0, 2, 4]
    err = capsys.readouterr().err
    assert "trilane.map" in err and "5/5" in err and "2 failed" in err


def test_missing_dask_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.delitem(sys.modules, "trilane._map._backends._dask", raising=False)
    with pytest.raises(ImportError, match=r'pip install "trilane\[dask\]"'):
        list(trilane.map(double, [1], backend="dask"))


def test_plan_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="trilane.map"):
        it = trilane.map(double, [1], backend="thread")
        assert list(it) == [2]
    assert any("backend='thread'" in r.getMessage() for r in caplog.records if r.name == "trilane.map")
    assert it.plan.backend == "thread" and "asked for" in it.plan.reason


def test_map_inside_a_running_loop_points_to_amap(run_on: Any) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="amap"):
            list(trilane.map(double, [1], backend="serial"))

    run_on(main())


def test_ctrl_c_as_a_step_finishes_still_stops_the_run() -> None:
    # A SIGINT that lands after the step's task is done, too late to cancel it,
    # must still stop the run (it used to be lost, and the run went on to exit 0).
    import signal

    it = trilane.map(str, [1, 2, 3], backend="serial")

    async def finishing() -> str:
        # Runs in the next tick, after the task has finished but before run_until_complete returns.
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)
        return "done"

    with pytest.raises(KeyboardInterrupt):
        it._step(finishing())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
