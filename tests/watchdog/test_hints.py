"""Stack → hint matching, on real stacks of a blocked thread and on made-up ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from time import sleep as snooze

import pytest

from trilane._core._hints import RawFrame, call_site, capture, fold, match

pytestmark = pytest.mark.usefixtures("no_leaks")


def _blocked_stack(block: Callable[[], object], release: Callable[[], object], inner: str) -> list[RawFrame]:
    """Run *block* in a thread; return its captured stack once its innermost frame is *inner*."""
    started = threading.Event()

    def target() -> None:
        started.set()
        block()

    thread = threading.Thread(target=target)
    thread.start()
    started.wait()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frames = capture(sys._current_frames().get(thread.ident or 0))
            if frames and frames[-1].function == inner and frames[-1].call:
                return frames
            time.sleep(0.001)
        raise AssertionError(f"the thread never blocked in {inner}")
    finally:
        release()
        thread.join()


def test_a_global_alias_of_time_sleep_is_resolved() -> None:
    stop = threading.Event()

    def napping() -> None:
        while not stop.is_set():
            snooze(0.01)

    frames = _blocked_stack(napping, stop.set, "napping")
    assert frames[-1].call == "snooze" and frames[-1].target == "time.sleep"
    assert match(frames, cpu=0.0).kind == "sleep"


def test_socket_recv_on_a_local_socket() -> None:
    a, b = socket.socketpair()
    with a, b:

        def receiving() -> None:
            a.recv(1)

        frames = _blocked_stack(receiving, lambda: b.send(b"x"), "receiving")
        assert frames[-1].call == "a.recv" and frames[-1].attr == "recv"
        hint = match(frames, cpu=0.0)
        assert hint.kind == "socket"
        assert "a.recv()" in hint.cause and "asyncio.open_connection" in hint.fix


def test_lock_acquire_is_a_wait_and_the_user_frame_is_the_call_site() -> None:
    lock = threading.Lock()
    lock.acquire()

    def waiting() -> None:
        lock.acquire()

    frames = _blocked_stack(waiting, lock.release, "waiting")
    assert call_site(frames) is frames[-1]
    assert frames[-1].call == "lock.acquire"
    assert match(frames, cpu=0.0).kind == "wait"
    assert frames[-1].filename == __file__ and not frames[-1].library
    # The thread's bootstrap frames are the stdlib's: library.
    assert frames[0].library and frames[0].module == "threading"


def test_subprocess_run_waiting_for_its_child() -> None:
    r, w = os.pipe()
    with os.fdopen(w, "wb") as writer:

        def running() -> None:
            subprocess.run(["cat"], stdin=r, stdout=subprocess.DEVNULL, check=True)

        try:
            frames = _blocked_stack(running, writer.close, "_try_wait")
        finally:
            os.close(r)
    site = call_site(frames)
    assert site is not None and site.function == "running"
    assert frames[-1].module == "subprocess" and frames[-1].library
    hint = match(frames, cpu=0.0)
    assert hint.kind == "subprocess" and "subprocess.run()" in hint.cause


def test_reading_a_file_that_is_slow_to_arrive() -> None:
    r, w = os.pipe()
    with os.fdopen(r, "rb") as source, os.fdopen(w, "wb") as writer:

        def reading() -> bytes:
            return source.read()

        frames = _blocked_stack(reading, writer.close, "reading")
        assert frames[-1].call == "source.read"
        hint = match(frames, cpu=0.0)
        assert hint.kind == "file" and "trilane.to_thread" in hint.fix


def _f(module: str, call: str = "", target: str = "", library: bool = True, name: str = "f") -> RawFrame:
    return RawFrame(f"/lib/{module}.py" if library else "/app/main.py", 1, name, module, library, call, target)


USER = _f("__main__", "requests.get", "requests.api.get", library=False, name="fetch")


@pytest.mark.parametrize(
    ("frames", "cpu", "kind", "words"),
    [
        (
            [USER, _f("requests.api"), _f("urllib3.connectionpool"), _f("socket", "?.recv_into")],
            0.0,
            "http",
            "requests",
        ),
        (
            [_f("__main__", "urlopen", "urllib.request.urlopen", False), _f("urllib.request"), _f("http.client")],
            0.0,
            "http",
            "urllib.request",
        ),
        ([_f("__main__", "cur.execute", "", False)], 0.9, "db", "to_thread"),
        (
            [_f("__main__", "run", "subprocess.run", False), _f("subprocess", "?.wait")],
            0.0,
            "subprocess",
            "create_subprocess_exec",
        ),
        ([_f("__main__", "os.system", "posix.system", False)], 0.0, "subprocess", "create_subprocess_exec"),
        ([_f("__main__", "time.sleep", "time.sleep", False)], 0.0, "sleep", "asyncio.sleep"),
        ([_f("__main__", "sock.sendall", "", False)], 0.0, "socket", "sock_sendall"),
        ([_f("__main__", "socket.getaddrinfo", "_socket.getaddrinfo", False)], 0.0, "socket", "open_connection"),
        ([_f("__main__", "f.read", "", False)], 0.3, "file", "to_thread"),
        ([_f("__main__", "path.read_bytes", "", False), _f("pathlib", "f.read")], 0.3, "file", "read_bytes"),
        (
            [_f("__main__", "fut.result", "", False), _f("concurrent.futures._base", "self._condition.wait")],
            0.0,
            "wait",
            "wrap_future",
        ),
        ([_f("__main__", "", "", False)], 1.0, "cpu", "trilane.to_process"),
        ([_f("__main__", "", "", False)], None, "cpu", "trilane.to_process"),
        ([_f("__main__", "ext.compute", "", False)], 0.01, "unknown", "to_thread"),
        ([_f("__main__", "flag.is_set", "", False), _f("threading")], 0.99, "cpu", "to_process"),
    ],
)
def test_rules(frames: list[RawFrame], cpu: float | None, kind: str, words: str) -> None:
    hint = match(frames, cpu)
    assert hint.kind == kind
    assert words in str(hint)


def test_requests_hint_names_the_users_call() -> None:
    hint = match([USER, _f("requests.api"), _f("socket", "self._sock.recv_into")], 0.0)
    assert "requests.get()" in hint.cause and "trilane.to_thread(requests.get" in hint.fix


def test_fold_keeps_user_frames_and_the_ends_of_the_innermost_library_run() -> None:
    user = [_f("app", library=False, name=n) for n in ("main", "fetch")]
    frames = [
        _f("asyncio.events"),
        _f("runpy"),
        user[0],
        user[1],
        *[_f(m) for m in ("requests.api", "a", "b", "socket")],
    ]
    folded = fold(frames)
    assert [(f.function, f.folded, f.package) for f in folded] == [
        ("f", 2, "asyncio, runpy"),
        ("main", 0, ""),
        ("fetch", 0, ""),
        ("f", 0, "requests"),
        ("f", 2, "a, b"),
        ("f", 0, "socket"),
    ]
    assert "2 library frames (asyncio, runpy)" in str(folded[0])
    assert folded[1].is_user and not folded[3].is_user
    assert call_site(frames) is frames[3]
    assert call_site([]) is None
