"""Backend specifics: crash isolation on processes, dask, and timeouts agreeing with the oracle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mapfuncs import Behaviour, crash_on_7, double

import trilane

# Every test here checks that it leaves no thread, child process or fd behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


def test_a_crashing_item_fails_alone_even_inside_a_chunk() -> None:
    out = list(trilane.map(crash_on_7, range(24), backend="process", workers=2, chunksize=8, errors="collect"))
    assert [v for v in out if not isinstance(v, trilane.Failure)] == [x for x in range(24) if x != 7]
    (failure,) = [v for v in out if isinstance(v, trilane.Failure)]
    assert failure.item == 7 and failure.attempts == 1
    assert isinstance(failure.exception, trilane.WorkerCrashed)
    assert "item 7" in str(failure.exception) and "exit code 3" in str(failure.exception)


def test_a_crashing_item_is_retried_when_asked() -> None:
    it = trilane.map(crash_on_7, [6, 7], backend="process", workers=1, retries=1, backoff=0.0, errors="collect")
    out = list(it)
    assert out[0] == 6 and isinstance(out[1], trilane.Failure) and out[1].attempts == 2


def test_unpicklable_function_on_process_fails_each_item_with_not_picklable() -> None:
    out = list(trilane.map(lambda x: x, [1, 2], backend="process", errors="collect"))
    assert all(isinstance(v, trilane.Failure) and isinstance(v.exception, trilane.NotPicklable) for v in out)


def _norm(value: Any) -> Any:
    if isinstance(value, trilane.Failure):
        return ("F", value.item, type(value.exception).__name__, value.attempts)
    return value


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    items=st.lists(st.integers(0, 20), max_size=8),
    backend=st.sampled_from(["thread", "async"]),
    ordered=st.booleans(),
    retries=st.integers(0, 1),
)
def test_timeouts_agree_with_the_oracle(items: list[int], backend: str, ordered: bool, retries: int) -> None:
    # Items divisible by 5 sleep 0.4 s against a 0.1 s timeout; the rest take no time.
    b = Behaviour(slow_mod=5, slow_s=0.4)
    opts = {"timeout": 0.1, "errors": "collect", "retries": retries, "backoff": 0.0, "ordered": ordered}
    oracle = [_norm(v) for v in trilane.map(b.outcome, items, backend="serial", **opts)]
    fn = b.aoutcome if backend == "async" else b.outcome
    got = [_norm(v) for v in trilane.map(fn, items, backend=backend, **opts)]
    if ordered:
        assert got == oracle
    else:
        assert sorted(map(repr, got)) == sorted(map(repr, oracle))


@pytest.mark.slow
def test_raise_cancels_running_process_items_cleanly() -> None:
    import time

    from mapfuncs import fail_zero_else_sleep

    start = time.monotonic()
    with pytest.raises(ValueError, match="zero"):
        list(trilane.map(fail_zero_else_sleep, [30.0, 0, 30.0], backend="process", workers=3, chunksize=1,
                         ordered=False))  # fmt: skip
    assert time.monotonic() - start < 15  # the 30 s items were killed, not waited for


@pytest.mark.slow
def test_closing_early_kills_running_process_items() -> None:
    import time

    from mapfuncs import sleep_for

    start = time.monotonic()
    with trilane.map(sleep_for, [0.0, 30.0, 30.0, 0.0], backend="process", workers=2, chunksize=1) as it:
        assert next(iter(it)) == 0.0
    assert time.monotonic() - start < 15


def test_amap_plan_is_known_after_prepare(run_on: Any) -> None:
    async def main() -> tuple[Any, str]:
        it = trilane.amap(double, [1, 2], backend="thread")
        before = it.plan
        plan = await it.prepare()
        out = [x async for x in it]
        assert out == [2, 4]
        return before, plan.backend

    assert run_on(main()) == (None, "thread")


class OwnError(Exception):
    pass


def test_an_async_items_exception_comes_out_as_raised_and_is_timed() -> None:
    # One-item async chunks run as the item's own task (no wrapper): the driver must still
    # hand out the very exception object, count one attempt and time the item.
    raised: dict[int, BaseException] = {}

    async def work(x: int) -> int:
        await asyncio.sleep(0.01)
        if x == 2:
            raised[x] = OwnError("mine")
            raise raised[x]
        return x

    outcomes = list(trilane.map(work, range(4), backend="async", errors="collect").outcomes())
    assert [o.result for o in outcomes] == [0, 1, None, 3]
    assert outcomes[2].error is raised[2] and outcomes[2].attempts == 1
    assert all(o.seconds >= 0.005 for o in outcomes)


def test_a_process_worker_imports_only_the_chunk_runner() -> None:
    # A process-backend worker unpickles run_chunk by name; that import must stay
    # light (no asyncio, no driver), or every new worker pays ~50 ms before its first item.
    import subprocess
    import sys

    from trilane._map._backends._base import run_chunk

    assert run_chunk.__module__ == "trilane._map._chunk"
    code = (
        "import sys, pickle, trilane._map._chunk as c; pickle.loads(pickle.dumps(c.run_chunk)); "
        "print(sorted(m for m in ('asyncio', 'trilane._map._driver', 'trilane._map._front') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
