"""Every backend yields exactly what the serial oracle yields (hypothesis).

Random inputs, random functions (some items fail, some are slow) and random
options.  Ordered runs must match the oracle's list; unordered runs its
multiset; with errors="collect" the failures (item, exception, attempts)
must match too; with errors="raise" the same prefix and the same exception
(unordered: an exception the oracle also saw, after results it also yields).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mapfuncs import Behaviour

import trilane

# Every test here checks that it leaves no thread, child process or fd behind.
pytestmark = pytest.mark.usefixtures("no_leaks")

behaviours = st.builds(
    Behaviour,
    fail_mod=st.sampled_from([0, 2, 3, 5]),
    fail_rem=st.integers(0, 1),
    error=st.sampled_from(["ValueError", "KeyError"]),
    slow_mod=st.sampled_from([0, 4, 7]),
    slow_s=st.sampled_from([0.0, 0.002]),
)

options = st.fixed_dictionaries(
    {
        "ordered": st.booleans(),
        "errors": st.sampled_from(["raise", "collect", "skip"]),
        "retries": st.integers(0, 2),
        "retry_on": st.sampled_from([(Exception,), (ValueError,), (KeyError,)]),
        "concurrency": st.one_of(st.none(), st.integers(1, 6)),
        "chunksize": st.one_of(st.just("auto"), st.integers(1, 4)),
    }
)

inputs = st.tuples(st.lists(st.integers(0, 40), max_size=30), st.booleans())

FAST_BACKOFF = trilane.Backoff(initial=0.0005, cap=0.002)
Run = tuple[list[Any], tuple[str, str] | None]


def _norm(value: Any) -> Any:
    if isinstance(value, trilane.Failure):
        return ("F", value.item, type(value.exception).__name__, str(value.exception), value.attempts)
    return value


def run(fn: Any, items: list[int], as_gen: bool, backend: str, opts: dict[str, Any]) -> Run:
    source = iter(items) if as_gen else items
    out: list[Any] = []
    it = trilane.map(fn, source, backend=backend, backoff=FAST_BACKOFF, **opts)
    try:
        for value in it:
            out.append(_norm(value))
    except (ValueError, KeyError) as exc:
        return out, (type(exc).__name__, str(exc))
    finally:
        it.close()
    return out, None


def check_same(oracle: Run, got: Run, opts: dict[str, Any], full: Run | None = None) -> None:
    """*full* is the oracle run with errors="collect" (needed for unordered raising runs)."""
    if opts["ordered"]:
        assert got == oracle
        return
    if opts["errors"] != "raise" or oracle[1] is None:
        assert Counter(got[0]) == Counter(oracle[0])
        assert got[1] == oracle[1]
        return
    # Unordered and raising: some item's failure stops the run, after results of other items.
    assert full is not None and got[1] is not None
    failures = {(f[2], f[3]) for f in full[0] if isinstance(f, tuple)}
    successes = Counter(v for v in full[0] if not isinstance(v, tuple))
    assert got[1] in failures
    assert not Counter(got[0]) - successes


def differential(fn: Any, oracle_fn: Any, items: list[int], as_gen: bool, backend: str, opts: dict[str, Any]) -> None:
    oracle = run(oracle_fn, items, as_gen, "serial", opts)
    full = run(oracle_fn, items, as_gen, "serial", {**opts, "errors": "collect"})
    check_same(oracle, run(fn, items, as_gen, backend, opts), opts, full)


def model(b: Behaviour, items: list[int], opts: dict[str, Any]) -> Run:
    """The serial oracle's own oracle: a plain for loop."""
    out: list[Any] = []
    for x in items:
        attempts = 0
        while True:
            attempts += 1
            try:
                out.append(b.outcome(x))
                break
            except Exception as exc:
                if attempts <= opts["retries"] and isinstance(exc, opts["retry_on"]):
                    continue
                if opts["errors"] == "raise":
                    return out, (type(exc).__name__, str(exc))
                if opts["errors"] == "collect":
                    out.append(("F", x, type(exc).__name__, str(exc), attempts))
                break
    return out, None


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@examples(60)
@given(b=behaviours, data=inputs, opts=options)
def test_serial_oracle_is_a_for_loop(b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any]) -> None:
    items, as_gen = data
    opts = {**opts, "ordered": True}
    assert run(b.outcome, items, as_gen, "serial", opts) == model(b, items, opts)


@examples(60)
@given(b=behaviours, data=inputs, opts=options)
def test_thread_backend_matches_the_oracle(b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any]) -> None:
    items, as_gen = data
    differential(b.outcome, b.outcome, items, as_gen, "thread", opts)


@examples(60)
@given(b=behaviours, data=inputs, opts=options, use_coroutine=st.booleans())
def test_async_backend_matches_the_oracle(
    b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any], use_coroutine: bool
) -> None:
    items, as_gen = data
    fn = b.aoutcome if use_coroutine else b.outcome
    differential(fn, b.outcome, items, as_gen, "async", opts)


@pytest.mark.slow
@examples(10)
@given(b=behaviours, data=inputs, opts=options)
def test_process_backend_matches_the_oracle(b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any]) -> None:
    items, as_gen = data
    differential(b.outcome, b.outcome, items, as_gen, "process", opts)


@examples(30)
@given(b=behaviours, data=inputs, opts=options)
def test_amap_matches_the_oracle(b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any]) -> None:
    items, as_gen = data

    async def collect() -> Run:
        out: list[Any] = []
        it = trilane.amap(b.aoutcome, iter(items) if as_gen else items, backend="async", backoff=FAST_BACKOFF, **opts)
        try:
            async for value in it:
                out.append(_norm(value))
        except (ValueError, KeyError) as exc:
            return out, (type(exc).__name__, str(exc))
        finally:
            await it.aclose()
        return out, None

    full = run(b.outcome, items, as_gen, "serial", {**opts, "errors": "collect"})
    check_same(run(b.outcome, items, as_gen, "serial", opts), asyncio.run(collect()), opts, full)


@examples(25)
@example(  # found by hypothesis: a stored result after a fresh item came out before it
    b=Behaviour(fail_mod=2, fail_rem=0),
    data=([0, 1], False),
    opts={"ordered": True, "errors": "collect", "retries": 0, "retry_on": (Exception,), "concurrency": None,
          "chunksize": 2},
    stop_after=1,
    backend="serial",
)  # fmt: skip
@given(
    b=behaviours,
    data=inputs,
    opts=options,
    stop_after=st.integers(0, 30),
    backend=st.sampled_from(["serial", "thread", "async"]),
)
def test_an_interrupted_checkpointed_run_resumes_to_the_oracle_output(
    b: Behaviour, data: tuple[list[int], bool], opts: dict[str, Any], stop_after: int, backend: str
) -> None:
    import itertools
    import tempfile
    import threading
    from pathlib import Path

    from trilane._map._checkpoint import load_checkpoint

    items, _ = data
    opts = {**opts, "errors": "collect" if opts["errors"] == "raise" else opts["errors"]}
    oracle = run(b.outcome, items, False, "serial", opts)
    calls: list[int] = []
    lock = threading.Lock()

    def counted(x: int) -> int:
        with lock:
            calls.append(x)
        return b.outcome(x)

    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "run.jsonl"
        # First run: stop after a few results (close() cancels the rest).
        with trilane.map(counted, items, backend=backend, checkpoint=ck, backoff=FAST_BACKOFF, **opts) as it:
            list(itertools.islice(it, stop_after))
        done = set(load_checkpoint(str(ck)))
        calls.clear()
        resumed = run(counted, items, False, backend, {**opts, "checkpoint": ck})
        if opts["ordered"]:
            assert resumed == oracle
        else:
            assert Counter(resumed[0]) == Counter(oracle[0])
        assert not {str(x) for x in calls} & done  # nothing finished before was run again
        recorded = [line for line in ck.read_text().splitlines() if '"e"' not in line]
        indices = [json.loads(line)["i"] for line in recorded]
        assert len(indices) == len(set(indices))  # no item was recorded twice
