"""The pumped thread run (Driver.pump): map() over threads without the loop in the steady state.

A thread run with no timeout, rate or retries is driven in the calling thread:
workers hand finished chunks over a queue and the caller's thread blocks on it.
These tests check that such runs really take that path, and that it keeps the
contract: order, errors modes, early close, failures at submit, and that an
unordered run is woken by any finished item (an ordered one only needs its head).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import trilane
from trilane._map._backends._thread import ThreadBackend
from trilane._map._driver import Driver

pytestmark = pytest.mark.usefixtures("no_leaks")


def double(x: int) -> int:
    return 2 * x


def fail_on_3(x: int) -> int:
    if x % 10 == 3:
        raise ValueError(f"bad {x}")
    return x


class CountingPump:
    """Counts Driver.pump and Driver.run calls, to tell which path a run took."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pumps = 0
        self.runs = 0
        pump, run = Driver.pump, Driver.run

        def counted_pump(driver: Driver) -> Any:
            self.pumps += 1
            return pump(driver)

        def counted_run(driver: Driver) -> Any:
            self.runs += 1
            return run(driver)

        monkeypatch.setattr(Driver, "pump", counted_pump)
        monkeypatch.setattr(Driver, "run", counted_run)


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("chunksize", ["auto", 1, 7])
def test_a_plain_thread_run_is_pumped_and_yields_what_serial_does(
    monkeypatch: pytest.MonkeyPatch, ordered: bool, chunksize: Any
) -> None:
    counts = CountingPump(monkeypatch)
    out = list(trilane.map(double, range(500), backend="thread", concurrency=8, ordered=ordered, chunksize=chunksize))
    assert counts.pumps == 1
    expected = [2 * x for x in range(500)]
    assert out == expected if ordered else sorted(out) == expected


@pytest.mark.parametrize(
    "options", [{"timeout": 5.0}, {"rate": "100000/s"}, {"retries": 1, "backoff": 0.0}, {"backend": "serial"}]
)
def test_runs_that_need_the_loop_clock_are_not_pumped(monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]) -> None:
    counts = CountingPump(monkeypatch)
    kwargs: dict[str, Any] = {"backend": "thread", "concurrency": 4, **options}
    assert list(trilane.map(double, range(20), **kwargs)) == [2 * x for x in range(20)]
    assert counts.pumps == 0


@pytest.mark.parametrize("ordered", [True, False])
def test_errors_modes_on_the_pumped_path(ordered: bool) -> None:
    items = list(range(40))
    good = [x for x in items if x % 10 != 3]
    collected = list(trilane.map(fail_on_3, items, backend="thread", concurrency=4, errors="collect", ordered=ordered))
    failures = [v for v in collected if isinstance(v, trilane.Failure)]
    assert sorted(f.item for f in failures) == [3, 13, 23, 33]
    assert all(isinstance(f.exception, ValueError) and f.attempts == 1 for f in failures)
    skipped = list(trilane.map(fail_on_3, items, backend="thread", concurrency=4, errors="skip", ordered=ordered))
    assert skipped == good if ordered else sorted(skipped) == good
    seen: list[int] = []
    with pytest.raises(ValueError, match="bad"):
        for v in trilane.map(fail_on_3, items, backend="thread", concurrency=4, ordered=ordered):
            seen.append(v)
    if ordered:
        assert seen == [0, 1, 2]  # everything before the failure, like a for loop
    assert not {3, 13, 23, 33} & set(seen)


def test_closing_a_pumped_run_early_cancels_the_rest_and_frees_the_threads() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x

    it = trilane.map(record, range(100_000), backend="thread", concurrency=4, chunksize=1)
    got = [next(it) for _ in range(10)]
    it.close()
    assert got == list(range(10))
    assert len(calls) < 1000  # bounded: only the window was pulled, the rest was never run
    assert list(it) == []  # a closed run yields nothing more


def test_a_failure_at_submit_fails_those_items(monkeypatch: pytest.MonkeyPatch) -> None:
    submit = ThreadBackend.submit

    def refusing(self: ThreadBackend, items: list[Any]) -> Any:
        if 5 in items:
            raise RuntimeError("cannot take item 5")
        return submit(self, items)

    monkeypatch.setattr(ThreadBackend, "submit", refusing)
    out = list(trilane.map(double, range(10), backend="thread", concurrency=2, chunksize=1, errors="collect"))
    assert [v for v in out if not isinstance(v, trilane.Failure)] == [2 * x for x in range(10) if x != 5]
    (failure,) = [v for v in out if isinstance(v, trilane.Failure)]
    assert failure.item == 5 and "cannot take item 5" in str(failure.exception)


def test_an_unordered_pumped_run_yields_while_its_first_item_is_still_running() -> None:
    # Item 0 blocks until five other results have come out: a pump that only woke
    # for the head (right for ordered runs) would leave them waiting, and item 0
    # would give up after 10 s and fail the test.
    release = threading.Event()

    def work(x: int) -> int:
        if x == 0 and not release.wait(10):
            raise AssertionError("the pump waited for item 0 before yielding the others")
        return x

    out: list[int] = []
    for v in trilane.map(work, range(20), backend="thread", concurrency=4, chunksize=1, ordered=False):
        out.append(v)
        if len(out) == 5:
            release.set()
    assert sorted(out) == list(range(20))
    assert 0 not in out[:5]


def test_an_ordered_pumped_run_waits_for_a_slow_head_then_yields_everything() -> None:
    release = threading.Event()

    def work(x: int) -> int:
        if x == 0:
            release.wait(10)
        return x

    it = trilane.map(work, range(30), backend="thread", concurrency=4, chunksize=1)
    timer = threading.Timer(0.05, release.set)
    timer.start()
    try:
        assert list(it) == list(range(30))
    finally:
        timer.cancel()
        timer.join()
