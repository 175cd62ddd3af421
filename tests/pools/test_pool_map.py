"""pool.map on both pools: lazy and bounded input, order, errors at their position."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import _tasks
import pytest
from _helpers import assert_pids_gone

import trilane

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["thread", "process"])
def pool(request: pytest.FixtureRequest, no_leaks: None) -> Iterator[Any]:
    p = trilane.ThreadPool(2) if request.param == "thread" else trilane.ProcessPool(2)
    with p:
        yield p


class Counted:
    """An input that counts how far it has been pulled, and may raise."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at, self.pulled = n, fail_at, 0

    def __iter__(self) -> Iterator[int]:
        for i in range(self.n):
            if i == self.fail_at:
                raise OSError(f"input broke at {i}")
            self.pulled += 1
            yield i


def test_map_matches_builtin_map(pool: Any) -> None:
    assert list(pool.map(_tasks.inc, range(1000))) == list(map(_tasks.inc, range(1000)))
    assert list(pool.map(_tasks.add, range(10), range(100, 105))) == [100, 102, 104, 106, 108]
    assert list(pool.map(_tasks.inc, [])) == []


def test_unordered_map_yields_everything(pool: Any) -> None:
    assert sorted(pool.map(_tasks.inc, range(500), ordered=False)) == list(range(1, 501))


def test_input_raising_mid_stream(pool: Any) -> None:
    got: list[int] = []
    with pytest.raises(OSError, match="input broke at 37"):
        for r in pool.map(_tasks.inc, Counted(100, fail_at=37)):
            got.append(r)
    assert got == list(range(1, 38))  # every earlier result, then the error at its position


def test_function_raising_on_an_item(pool: Any) -> None:
    got: list[int] = []
    with pytest.raises(KeyError):
        for r in pool.map(_tasks.fail_on, range(10)):
            got.append(r)
    assert got == [1, 2, 3]


def test_input_is_pulled_lazily_and_bounded(pool: Any) -> None:
    src = Counted(10**9)
    it = pool.map(_tasks.inc, src, buffersize=16)
    assert next(it) == 1
    assert src.pulled <= 32
    for _ in range(100):
        next(it)
    assert src.pulled <= 101 + 32
    it.close()


def test_default_bound_without_buffersize(pool: Any) -> None:
    src = Counted(10**9)
    it = pool.map(_tasks.inc, src)
    assert [next(it) for _ in range(10)] == list(range(1, 11))
    assert src.pulled <= 100_000  # a few chunks, not the whole input
    it.close()


def test_map_timeout_raises_timeout_error(pool: Any) -> None:
    it = pool.map(_tasks.sleep_then, [0.0, 1.0], timeout=0.3)
    assert next(it) is None
    with pytest.raises(TimeoutError):
        next(it)


def test_auto_chunksize_batches_tiny_tasks(pool: Any) -> None:
    calls = 0
    real = pool._submit

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args)

    pool._submit = counting
    assert sum(pool.map(_tasks.inc, range(50_000))) == sum(range(1, 50_001))
    assert calls < 200  # batched, not one task per item


def test_explicit_chunksize_and_bad_arguments(pool: Any) -> None:
    assert list(pool.map(_tasks.inc, range(10), chunksize=3)) == list(range(1, 11))
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(_tasks.inc, range(3), chunksize=0)
    with pytest.raises(ValueError, match="buffersize"):
        pool.map(_tasks.inc, range(3), buffersize=0)


def test_process_map_per_item_timeout_kills_only_that_item(no_leaks: None) -> None:
    with trilane.ProcessPool(2, term_grace=0.1) as pool:
        opts = trilane.TaskOptions(timeout=0.5)
        got: list[object] = []
        with pytest.raises(trilane.TaskTimeout, match="item 1 of a map"):
            for r in pool.map(_tasks.sleep_then, [0.0, 30.0, 0.0], ["a", "b", "c"], options=opts):
                got.append(r)
        assert got == ["a"]


def test_closing_a_process_map_early_kills_its_running_work(no_leaks: None) -> None:
    with trilane.ProcessPool(2, term_grace=0.1) as pool:
        it = pool.map(_tasks.ignore_sigterm_and_sleep, [0.0] + [30.0] * 4, chunksize=1)
        assert next(it) is None
        time.sleep(0.2)
        pids = {w.pid for w in pool._workers.values() if w.state == "busy"}
        t0 = time.monotonic()
        it.close()
        assert_pids_gone(pids, within=5)
        assert time.monotonic() - t0 < 5
        assert pool.submit(_tasks.inc, 1).result(timeout=10) == 2


def test_crash_in_a_chunk_fails_that_chunk_and_requeues_the_one_sent_ahead(no_leaks: None) -> None:
    with trilane.ProcessPool(2) as pool:
        got: list[int] = []
        with pytest.raises(trilane.WorkerCrashed) as info:
            for r in pool.map(_tasks.poison_or_inc, range(400), chunksize=4):
                got.append(r)
        assert got == list(range(1, 13))  # items 0..11; the chunk 12..15 held the poison
        assert "items 12..15" in str(info.value)
        # Chunks queued behind the crashed one were not lost: a fresh map still runs everything.
        assert list(pool.map(_tasks.inc, range(400), chunksize=4)) == list(range(1, 401))
        assert pool.crashed_workers == 1


def test_a_short_item_never_waits_behind_a_long_one_while_another_worker_is_free(pool: Any) -> None:
    # A process pool queues short chunks behind a busy worker's running one, to
    # hide the round trip; a 150 ms item is not short (AHEAD_SECONDS), so none
    # may sit behind the 2 s item while the other worker works through the rest.
    pool.submit(_tasks.inc, 0).result(timeout=10)
    seconds = [2.0] + [0.15] * 8
    done = list(pool.map(_tasks.sleep_then, seconds, range(len(seconds)), ordered=False))
    assert sorted(done) == list(range(len(seconds)))
    assert done[-1] == 0, f"items finished after the long one: {done[done.index(0) + 1 :]}"


def test_short_chunks_of_measured_items_are_still_sent_ahead(no_leaks: None) -> None:
    from trilane._pools import _map

    with trilane.ProcessPool(2) as pool:
        sent: list[bool] = []
        real = pool._submit

        def spy(*args: Any) -> Any:
            sent.append(bool(args[5]) if len(args) > 5 else False)
            return real(*args)

        pool._submit = spy  # type: ignore[method-assign]
        assert sum(pool.map(_tasks.inc, range(20_000))) == sum(range(1, 20_001))
    assert not any(sent[: _map.PROBES]), "unmeasured probe chunks are never sent ahead"
    assert any(sent), "chunks of tiny, measured items are"
