"""Moving data: out-of-band buffers for bytes and numpy arrays, nothing leaked."""

from __future__ import annotations

import os
import pickle

import _tasks
import numpy as np
import pytest

import trilane
from trilane._pools import _wire

pytestmark = pytest.mark.timeout(30)


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("size", [1024, 1 << 20, 10 << 20])
def test_bytes_round_trip(no_leaks: None, size: int) -> None:
    before = _shm()
    payload = os.urandom(size)
    with trilane.ProcessPool(1) as pool:
        back = pool.submit(_tasks.echo, payload).result(timeout=20)
        assert pool.submit(_tasks.nbytes, bytearray(payload)).result(timeout=20) == size
    assert type(back) is bytes and back == payload
    # Only new entries count: /dev/shm is machine-wide, and other programs'
    # semaphores come and go meanwhile.
    assert not _shm() - before


def test_numpy_round_trip_is_writable(no_leaks: None) -> None:
    a = np.arange(1 << 18, dtype=np.float64)
    with trilane.ProcessPool(1) as pool:
        b = pool.submit(_tasks.double_array, a).result(timeout=20)
    assert np.array_equal(b, a * 2)
    assert b.flags.writeable
    b[0] = 1.0


def test_large_values_go_out_of_band() -> None:
    big = b"x" * (1 << 20)
    data, buffers = _wire.dumps(((big,), {"k": bytearray(big)}))
    assert len(data) < 1024 and len(buffers) == 2
    rebuilt = pickle.loads(data, buffers=[b.raw().tobytes() for b in buffers])
    assert rebuilt[0][0] == big and rebuilt[1]["k"] == big
    small, none = _wire.dumps((b"tiny", [1, 2]))
    assert none == [] and pickle.loads(small) == (b"tiny", [1, 2])


def test_long_containers_are_searched_only_when_the_pickle_is_big() -> None:
    # A map chunk's results: many small values, pickled once, nothing out of band.
    ints = list(range(20_000))
    data, buffers = _wire.dumps((ints, None, 0.5))
    assert buffers == [] and pickle.loads(data) == (ints, None, 0.5)
    # Many big bytes in a long list (a chunk of big results) still go out of band.
    big = [bytes([i]) * _wire.OOB_THRESHOLD for i in range(_wire.SCAN_LIMIT + 1)]
    data, buffers = _wire.dumps((big, None, 0.5))
    assert len(buffers) == len(big) and len(data) < 64 * 1024
    assert pickle.loads(data, buffers=[b.raw().tobytes() for b in buffers])[0] == big


def test_remote_error_with_an_unpicklable_exception() -> None:
    class Local(Exception):
        pass

    err = _wire.RemoteError.picklable(Local("inner"))
    back = pickle.loads(pickle.dumps(err)).rebuild()
    assert isinstance(back, RuntimeError) and "Local" in str(back) and "inner" in str(back)
    assert isinstance(back.__cause__, trilane.RemoteTraceback)


@pytest.mark.parametrize("duplex", [True, False], ids=["socketpair", "os-pipe"])
def test_frames_of_every_size_cross_intact(duplex: bool) -> None:
    # Sizes around the in-band / out-of-band and small / big-read thresholds,
    # read-only (bytes) and writable (bytearray) buffers, and a big in-band frame.
    import multiprocessing
    import threading

    sizes = [0, 1, _wire.BIG_FRAME - 1, _wire.BIG_FRAME, _wire.OOB_THRESHOLD, 3 << 20]
    values = [os.urandom(n) for n in sizes] + [bytearray(os.urandom(n)) for n in sizes]
    values.append(list(range(50_000)))  # a big pickle stream, no buffers
    reader, writer = multiprocessing.Pipe(duplex=duplex)
    try:
        # A writer thread: the big frames do not fit the pipe's buffer.
        sender = threading.Thread(
            target=lambda: [_wire.send_frame(writer, _wire.OK, i, _wire.dumps((v,))) for i, v in enumerate(values)]
        )
        sender.start()
        for i, v in enumerate(values):
            kind, ident, data, buffers = _wire.recv_frame(reader)
            (got,) = _wire.loads(data, buffers)
            assert (kind, ident) == (_wire.OK, i)
            assert type(got) is type(v) and got == v
        sender.join()
        writer.close()
        with pytest.raises(EOFError):
            _wire.recv_frame(reader)
    finally:
        reader.close()
        writer.close()


def test_short_writes_are_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    # writev may stop early (a signal, a full socket); the rest must follow in order.
    import multiprocessing

    real = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, parts: real(fd, [b"".join(map(bytes, parts))[:4099]]))
    reader, writer = multiprocessing.Pipe()
    try:
        value = (b"", b"abc" * 5, bytearray(b"z" * 10), os.urandom(_wire.OOB_THRESHOLD), bytearray(_wire.OOB_THRESHOLD))
        assert len(_wire.dumps(value)[1]) == 2  # the last two go out of band
        _wire.send_frame(writer, _wire.TASK, 42, _wire.dumps(value))
        _wire.send_frame(writer, _wire.STOP, 7)
        kind, ident, data, buffers = _wire.recv_frame(reader)
        assert (kind, ident) == (_wire.TASK, 42) and _wire.loads(data, buffers) == value
        assert _wire.recv_frame(reader)[:2] == (_wire.STOP, 7)
    finally:
        reader.close()
        writer.close()


def test_calls_round_trip_with_cached_functions() -> None:
    import functools

    calls = [
        (_tasks.echo, (b"x",), {}),
        (len, ([1, 2, 3],), {}),
        (functools.partial(_tasks.echo), ([1],), {}),  # not cached: a partial pickles its state
        (_tasks.echo, (), {"x": 5}),
    ]
    for _ in range(2):  # the second time from the caches on both sides
        for fn, args, kwargs in calls:
            data, buffers = _wire.dumps_call(fn, args, kwargs, lambda: "call")
            got_fn, got_args, got_kwargs = _wire.loads_call(memoryview(data), buffers)
            assert (got_args, got_kwargs) == (args, kwargs)
            assert got_fn(*got_args, **got_kwargs) == fn(*args, **kwargs)
    assert _wire.dumps_call(_tasks.echo, (1,), {}, str)[0] == _wire.dumps_call(_tasks.echo, (1,), {}, str)[0]


def test_plain_values_and_calls_skip_the_buffer_search_but_big_ones_still_go_out_of_band() -> None:
    big = b"y" * _wire.OOB_THRESHOLD
    for value in (None, True, 3, 2.5, "text", b"small", bytearray(b"small"), b"z" * (_wire.OOB_THRESHOLD - 1)):
        data, buffers = _wire.dumps(value)
        assert buffers == [] and pickle.loads(data) == value and type(pickle.loads(data)) is type(value)
    assert len(_wire.dumps(big)[1]) == 1
    assert len(_wire.dumps(bytearray(big))[1]) == 1
    cases = [
        ((1, "a", b"b", None), {}, 0),  # plain: straight to pickle
        ((b"small", big), {}, 1),  # one big positional argument
        ((1,), {"k": big}, 1),  # keywords always take the search
    ]
    for args, kwargs, n_buffers in cases:
        data, buffers = _wire.dumps_call(_tasks.echo, args, kwargs, str)
        assert len(buffers) == n_buffers
        raw = [b.raw().tobytes() for b in buffers]
        fn, got_args, got_kwargs = _wire.loads_call(memoryview(data), raw)
        assert fn is _tasks.echo and (got_args, got_kwargs) == (args, kwargs)


def test_functions_that_carry_state_are_pickled_afresh_each_call() -> None:
    # A bound method pickles its object too: a cached pickle would go stale.
    table = {"k": 1}
    first = _wire.dumps_call(table.get, ("k",), {}, str)[0]
    table["k"] = 2
    data, buffers = _wire.dumps_call(table.get, ("k",), {}, str)
    assert data != first
    fn, args, kwargs = _wire.loads_call(memoryview(data), buffers)
    assert fn(*args, **kwargs) == 2


def test_replies_reach_blocking_callers_and_callback_users_alike(no_leaks: None) -> None:
    # Threads that block in result() read replies themselves (and claim the
    # pipe while submitting); futures that nobody waits on are still finished
    # by the manager thread, callbacks included.
    import concurrent.futures as cf
    import threading

    done: list[int] = []
    with trilane.ProcessPool(2) as pool:

        def blocking(k: int) -> None:
            for i in range(50):
                assert pool.submit(_tasks.echo, (k, i)).result(timeout=20) == (k, i)

        def fire_and_forget() -> list[cf.Future[object]]:
            futs = [pool.submit(_tasks.echo, i) for i in range(50)]
            for f in futs:
                f.add_done_callback(lambda f: done.append(f.result()))
            return futs

        threads = [threading.Thread(target=blocking, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        futs = fire_and_forget()
        finished, pending = cf.wait(futs, timeout=20)
        for t in threads:
            t.join(20)
        assert not pending and sorted(f.result() for f in finished) == list(range(50))
        assert not any(t.is_alive() for t in threads)
    assert sorted(done) == list(range(50))
