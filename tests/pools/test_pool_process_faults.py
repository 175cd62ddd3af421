"""ProcessPool fault tests: each kills or breaks a worker and checks that only
its own task fails, the pool keeps serving, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import _tasks
import pytest
from _helpers import alive, assert_pids_gone, worker_pids

import trilane

pytestmark = pytest.mark.timeout(30)


def _wait_running(fut: trilane.PoolFuture[object]) -> int:
    deadline = time.monotonic() + 10
    while fut.worker_pid is None or not fut.running():
        assert time.monotonic() < deadline, "task never started"
        time.sleep(0.005)
    assert fut.worker_pid is not None
    return fut.worker_pid


def _still_serves(pool: trilane.ProcessPool) -> None:
    assert pool.submit(_tasks.inc, 41).result(timeout=10) == 42


def test_sigkill_mid_task(no_leaks: None) -> None:
    with trilane.ProcessPool(2) as pool:
        other = pool.submit(_tasks.sleep_then, 0.3, "other")
        fut = pool.submit(_tasks.sleep_then, 30)
        pid = _wait_running(fut)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(trilane.WorkerCrashed) as info:
            fut.result(timeout=10)
        assert info.value.pid == pid
        assert info.value.exitcode == -signal.SIGKILL
        assert "SIGKILL" in str(info.value) and "sleep_then(30)" in str(info.value)
        assert other.result(timeout=10) == "other"  # only the killed task failed
        _still_serves(pool)
        pids = worker_pids(pool)
    assert_pids_gone(pids | {pid})


@pytest.mark.parametrize(
    ("fn", "args", "exitcode"),
    [
        (_tasks.segfault, (), -signal.SIGSEGV),
        (_tasks.hard_exit, (3,), 3),
        (_tasks.soft_exit, (4,), 4),
        (_tasks.sigkill_self, (), -signal.SIGKILL),
    ],
    ids=["segfault", "os._exit", "sys.exit", "self-sigkill"],
)
def test_worker_death_fails_only_its_task(no_leaks: None, fn: object, args: tuple[int, ...], exitcode: int) -> None:
    with trilane.ProcessPool(2) as pool:
        fut = pool.submit(fn, *args)  # type: ignore[arg-type]
        with pytest.raises(trilane.WorkerCrashed) as info:
            fut.result(timeout=10)
        assert info.value.exitcode == exitcode
        assert info.value.pid == fut.worker_pid
        assert not isinstance(info.value, trilane.Quarantined)
        results = [pool.submit(_tasks.inc, i) for i in range(20)]
        assert [f.result(timeout=10) for f in results] == list(range(1, 21))
        assert pool.crashed_workers == 1


def test_exception_while_pickling_the_result(no_leaks: None) -> None:
    with trilane.ProcessPool(1) as pool:
        with pytest.raises(trilane.NotPicklable) as info:
            pool.submit(_tasks.make_unpicklable).result(timeout=10)
        assert "the result" in str(info.value) and "refuses to be pickled" in str(info.value)
        assert isinstance(info.value.__cause__, trilane.RemoteTraceback)
        _still_serves(pool)


def test_exception_while_unpickling_the_args_in_the_worker(no_leaks: None) -> None:
    with trilane.ProcessPool(1) as pool:
        with pytest.raises(RuntimeError, match="cannot rebuild BreaksInWorker") as info:
            pool.submit(_tasks.echo, _tasks.BreaksInWorker()).result(timeout=10)
        assert isinstance(info.value.__cause__, trilane.RemoteTraceback)
        assert "__setstate__" in info.value.__cause__.tb
        _still_serves(pool)


def test_poison_item_is_quarantined(no_leaks: None) -> None:
    opts = trilane.TaskOptions(retries=10, name="poison")
    with trilane.ProcessPool(2, max_crashes=3) as pool:
        fut = pool.submit_with(opts, _tasks.hard_exit, 7)
        with pytest.raises(trilane.Quarantined) as info:
            fut.result(timeout=20)
        assert info.value.attempts == 3
        assert "'poison' was quarantined" in str(info.value)
        assert pool.crashed_workers == 3  # retried twice, then quarantined: not retried forever
        # The same call again is refused at once, without killing a fourth worker.
        again = pool.submit_with(opts, _tasks.hard_exit, 7)
        with pytest.raises(trilane.Quarantined):
            again.result(timeout=5)
        assert pool.crashed_workers == 3
        _still_serves(pool)


def test_poison_item_in_a_map_fails_at_its_position(no_leaks: None) -> None:
    with trilane.ProcessPool(2, max_crashes=2) as pool:
        it = pool.map(_tasks.poison_or_inc, range(20), chunksize=1, options=trilane.TaskOptions(retries=5))
        got = []
        with pytest.raises(trilane.Quarantined) as info:
            for r in it:
                got.append(r)
        assert got == list(range(1, 14))
        assert "poison_or_inc(13)" in str(info.value)
        _still_serves(pool)


def test_retry_after_a_crash(no_leaks: None, tmp_path: Path) -> None:
    marker = str(tmp_path / "crashed-once")
    with trilane.ProcessPool(1) as pool:
        fut = pool.submit_with(trilane.TaskOptions(retries=1), _tasks.crash_once, marker)
        assert fut.result(timeout=10) == "second time lucky"
        assert pool.crashed_workers == 1


def test_task_ignoring_sigterm_is_killed_at_its_timeout(no_leaks: None) -> None:
    with trilane.ProcessPool(1, term_grace=0.2) as pool:
        t0 = time.monotonic()
        fut = pool.submit_with(trilane.TaskOptions(timeout=0.5), _tasks.ignore_sigterm_and_sleep, 60)
        with pytest.raises(trilane.TaskTimeout) as info:
            fut.result(timeout=20)
        assert isinstance(info.value, TimeoutError)
        assert "ignore_sigterm_and_sleep(60)" in str(info.value)
        pid = fut.worker_pid
        assert pid is not None
        assert_pids_gone([pid], within=5)  # SIGKILL after the grace period
        assert time.monotonic() - t0 < 20  # far less than the 60 s the task wanted
        _still_serves(pool)


def test_cancel_a_running_task_kills_its_worker(no_leaks: None) -> None:
    with trilane.ProcessPool(1, term_grace=0.2) as pool:
        fut = pool.submit(_tasks.ignore_sigterm_and_sleep, 60)
        pid = _wait_running(fut)
        assert fut.cancel() is True
        assert fut.cancelled() and fut.done()
        assert_pids_gone([pid], within=5)
        _still_serves(pool)
        assert pool.crashed_workers == 0  # we killed it: not a crash


def test_max_tasks_per_worker_2_with_a_backlog_of_100(no_leaks: None) -> None:
    with trilane.ProcessPool(2, max_tasks_per_worker=2) as pool:
        futs = [pool.submit(_tasks.getpid) for _ in range(100)]
        pids = [f.result(timeout=30) for f in futs]
    assert len(pids) == 100
    assert len(set(pids)) >= 50  # each worker ran at most 2 tasks
    assert max(pids.count(p) for p in set(pids)) <= 2
    assert_pids_gone(set(pids))


def test_shutdown_cancel_futures_stops_within_a_second(no_leaks: None) -> None:
    pool = trilane.ProcessPool(2, term_grace=5.0)
    running = [pool.submit(_tasks.ignore_sigterm_and_sleep, 60) for _ in range(2)]
    queued = [pool.submit(_tasks.sleep_then, 60) for _ in range(10)]
    for f in running:
        _wait_running(f)
    pids = worker_pids(pool)
    t0 = time.monotonic()
    pool.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - t0 < 1.0
    assert all(f.cancelled() for f in running + queued)
    assert not any(alive(p) for p in pids)
    with pytest.raises(trilane.PoolShutdown):
        pool.submit(_tasks.inc, 1)


def test_initializer_runs_in_every_worker(no_leaks: None) -> None:
    with trilane.ProcessPool(2, initializer=_tasks.init_state, initargs=("ready",)) as pool:
        assert {pool.submit(_tasks.read_state).result(timeout=10) for _ in range(4)} == {"ready"}


def test_failing_initializer_fails_the_work_and_breaks_the_pool(no_leaks: None) -> None:
    pool = trilane.ProcessPool(1, initializer=_tasks.failing_init)
    fut = pool.submit(_tasks.inc, 1)
    with pytest.raises(RuntimeError, match="initializer is broken"):
        fut.result(timeout=10)
    with pytest.raises(trilane.PoolShutdown, match="initializer"):
        pool.submit(_tasks.inc, 1)
    pool.shutdown()


def test_unpicklable_call_raises_at_submit_before_any_worker_starts(no_leaks: None) -> None:
    with trilane.ProcessPool(2) as pool:
        with pytest.raises(trilane.NotPicklable, match="the function") as info:
            pool.submit(lambda: 1)
        assert "module top level" in str(info.value) and isinstance(info.value, TypeError)
        with pytest.raises(trilane.NotPicklable, match="argument 1 of task echo"):
            pool.submit(_tasks.echo, 1, lambda: 2)
        with pytest.raises(trilane.NotPicklable, match="keyword argument 'key'"):
            pool.submit(_tasks.echo, 1, key=_tasks.Unpicklable())
        with pytest.raises(trilane.NotPicklable):
            pool.map(lambda x: x, [1, 2])
        assert pool._manager is None  # no worker was started for any of these


def test_remote_traceback_is_attached(no_leaks: None) -> None:
    with trilane.ProcessPool(1) as pool, pytest.raises(ValueError, match="boom on 5") as info:
        pool.submit(_tasks.boom, 5).result(timeout=10)
    cause = info.value.__cause__
    assert isinstance(cause, trilane.RemoteTraceback)
    assert "in boom" in cause.tb and "_tasks.py" in cause.tb


def test_stress_concurrent_waiters_and_kills(no_leaks: None) -> None:
    """Callers read replies directly while the manager reads others and workers get killed."""
    import threading

    errors: list[BaseException] = []
    with trilane.ProcessPool(2) as pool:

        def caller(base: int) -> None:
            try:
                for i in range(150):
                    fut = pool.submit(_tasks.inc, base + i)
                    if i % 3 == 0:  # a second waiter on the same future, via the manager
                        fut.add_done_callback(lambda f: None)
                    assert fut.result(timeout=20) == base + i + 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def killer() -> None:
            for k in range(5):
                # Distinct args: three crashes of one identical call would quarantine it.
                fut = pool.submit(_tasks.sleep_then, 30, k)
                pid = _wait_running(fut)
                os.kill(pid, signal.SIGKILL)
                try:
                    fut.result(timeout=20)
                except trilane.WorkerCrashed:
                    pass
                except BaseException as exc:  # pragma: no cover
                    errors.append(exc)

        threads = [threading.Thread(target=caller, args=(k * 1000,)) for k in range(4)]
        threads.append(threading.Thread(target=killer))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert pool.crashed_workers == 5
        _still_serves(pool)


def test_replies_nobody_waits_on_after_direct_reads_still_arrive(no_leaks: None) -> None:
    """A direct reader leaves an idle worker's pipe out of the manager's set; work sent later gets it back.

    Each way a reply can become the manager's to read: a task queued behind a
    directly-read one, a map chunk sent ahead of a directly-read one, and a
    task whose submitter never calls ``result()``.
    """
    from concurrent.futures import wait

    with trilane.ProcessPool(1) as pool:
        for i in range(200):
            first = pool.submit(_tasks.inc, i)
            queued = pool.submit(_tasks.inc, -i)  # waits for the only worker
            assert first.result(timeout=10) == i + 1  # read directly; queued is sent on by us
            done, _ = wait([queued], timeout=10)  # nobody reads it directly
            assert done == {queued}
            assert queued.result() == 1 - i
            lone = pool.submit(_tasks.inc, i)
            assert wait([lone], timeout=10)[0] == {lone}
        assert list(pool.map(_tasks.inc, range(2000), chunksize=7)) == list(range(1, 2001))
        _still_serves(pool)


def test_a_manager_claim_that_finds_the_reply_gone_hands_the_pipe_back(no_leaks: None) -> None:
    """The manager sees a reply, a caller reads it first, and work arrives while the manager holds the pipe.

    Slowed-down probes in the manager thread force that order: the reply to
    ``first`` wakes the manager, the caller reads it directly, the manager then
    claims the (now empty) pipe, and ``second`` is sent while it holds it.  The
    manager must put the pipe back in its set when it lets go, or the reply to
    ``second`` sits unread forever (a hang found by a round-trip benchmark).
    """
    import threading

    class ManagerSlowProbe:
        def __init__(self, real: Any, before: float, after: float) -> None:
            self.real, self.before, self.after = real, before, after

        def poll(self, timeout: float = 0) -> Any:
            slow = threading.current_thread().name == "trilane-process-manager"
            if slow:
                time.sleep(self.before)
            events = self.real.poll(timeout)
            if slow:
                time.sleep(self.after)
            return events

    with trilane.ProcessPool(1) as pool:
        assert pool.submit(_tasks.inc, 0).result(timeout=10) == 1
        (w,) = pool._workers.values()
        w.mprobe = ManagerSlowProbe(w.mprobe, 0.0, 0.1)  # t=50..150 ms: sees the first reply, then dawdles
        w.probe = ManagerSlowProbe(w.probe, 0.1, 0.0)  # t=150..250 ms: holds the claim before it looks
        first = pool.submit(_tasks.sleep_then, 0.05, "first")
        time.sleep(0.1)
        assert first.result(timeout=10) == "first"  # read directly while the manager dawdles
        time.sleep(0.1)
        second = pool.submit(_tasks.sleep_then, 0.3, "second")  # sent while the manager holds the pipe
        assert second.result(timeout=5) == "second"
        _still_serves(pool)


def test_a_reply_due_is_always_watched_by_someone(no_leaks: None) -> None:
    """Stress the pipe-claim rule: a task in flight on an unclaimed pipe means the pipe is in the manager's set.

    Callers block in ``result()``, wait through ``wait()`` or callbacks, and
    queue work behind busy workers, while a checker thread takes the pool's
    lock (under which every claim and every mute changes) and checks the rule.
    """
    import threading
    from concurrent.futures import wait

    errors: list[BaseException] = []
    broken: list[str] = []
    stop = threading.Event()
    with trilane.ProcessPool(2) as pool:

        def caller(k: int) -> None:
            try:
                for i in range(400):
                    futs = [pool.submit(_tasks.inc, i) for _ in range(1 + (i + k) % 3)]
                    if (i + k) % 4 == 0:
                        assert wait(futs, timeout=10)[1] == set()
                    assert [f.result(timeout=10) for f in futs] == [i + 1] * len(futs)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def checker() -> None:
            while not stop.is_set():
                with pool._lock:
                    poller = pool._poller
                    for w in pool._workers.values():
                        due = w.task is not None and w.reader is None and w.conn is not None
                        if due and poller is not None and w.conn.fileno() in poller._muted:
                            broken.append(f"worker {w.pid}: a task in flight on a muted, unclaimed pipe")
                time.sleep(0.0002)

        check = threading.Thread(target=checker)
        check.start()
        callers = [threading.Thread(target=caller, args=(k,)) for k in range(3)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        stop.set()
        check.join()
    assert errors == []
    assert broken == []


def test_workers_that_cannot_start_break_the_pool_instead_of_hanging(tmp_path: Path) -> None:
    # Under forkserver each worker re-imports __main__; from stdin there is no file to import, so
    # every worker dies while starting.  The pool must give up with advice, not respawn forever.
    import subprocess
    import sys

    script = "import trilane\nwith trilane.ProcessPool(2) as pool:\n    print(pool.submit(abs, -3).result())\n"
    proc = subprocess.run(
        [sys.executable, "-"], check=False, input=script, capture_output=True, text=True, timeout=50, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert "died while starting" in proc.stderr
    assert "if __name__ == '__main__':" in proc.stderr
