"""Differential tests: every case runs on trilane.Loop and on stock asyncio and must agree.

Each test takes the ``run_on``/``loop_factory`` fixtures from ``tests/conftest.py``,
so it is collected twice (``[asyncio]`` and ``[trilane]``) and asserts the
exact result asyncio gives.  Orders are asserted exactly: under the default
``fifo`` policy trilane promises asyncio's order, callback for callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import trilane

Run = Callable[[Any], Any]


def test_call_soon_runs_in_fifo_order(run_on: Run) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        out: list[int] = []
        done = loop.create_future()
        for i in range(5):
            loop.call_soon(out.append, i)
        loop.call_soon(done.set_result, None)
        await done
        return out

    assert run_on(main()) == [0, 1, 2, 3, 4]


def test_call_soon_threadsafe_keeps_order_with_call_soon(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    loop = loop_factory()
    try:
        out: list[str] = []
        loop.call_soon_threadsafe(out.append, "threadsafe")
        loop.call_soon(out.append, "soon")
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert out == ["threadsafe", "soon"]
    finally:
        loop.close()


def test_callbacks_scheduled_while_running_wait_for_next_tick(run_on: Run) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        out: list[str] = []
        done = loop.create_future()

        def first() -> None:
            out.append("first")
            loop.call_soon(out.append, "scheduled-by-first")

        loop.call_soon(first)
        loop.call_soon(out.append, "second")
        loop.call_soon(lambda: loop.call_soon(done.set_result, None))
        await done
        return out

    assert run_on(main()) == ["first", "second", "scheduled-by-first"]


def test_timers_fire_by_deadline_then_by_scheduling_order(run_on: Run) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        out: list[str] = []
        now = loop.time()
        loop.call_at(now + 0.03, out.append, "c")
        loop.call_at(now + 0.01, out.append, "a1")
        loop.call_at(now + 0.01, out.append, "a2")
        loop.call_later(0.02, out.append, "b")
        cancelled = loop.call_later(0.015, out.append, "cancelled")
        cancelled.cancel()
        await asyncio.sleep(0.05)
        return out

    assert run_on(main()) == ["a1", "a2", "b", "c"]


def test_tasks_interleave_like_asyncio(run_on: Run) -> None:
    async def worker(name: str, n: int, out: list[str]) -> None:
        for i in range(n):
            out.append(f"{name}{i}")
            await asyncio.sleep(0)

    async def main() -> list[str]:
        out: list[str] = []
        await asyncio.gather(worker("a", 3, out), worker("b", 2, out), worker("c", 1, out))
        return out

    assert run_on(main()) == ["a0", "b0", "c0", "a1", "b1", "a2"]


def test_gather_wait_for_timeout_and_cancellation(run_on: Run) -> None:
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    async def main() -> list[str]:
        out = []
        try:
            await asyncio.wait_for(slow(), 0.01)
        except TimeoutError:
            out.append("wait_for timed out")
        try:
            async with asyncio.timeout(0.01):
                await slow()
        except TimeoutError:
            out.append("timeout() timed out")
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        task.cancel()
        results = await asyncio.gather(task, asyncio.sleep(0, "ok"), return_exceptions=True)
        out.append(type(results[0]).__name__)
        out.append(str(results[1]))
        return out

    assert run_on(main()) == ["wait_for timed out", "timeout() timed out", "CancelledError", "ok"]


def test_taskgroup_propagates_errors(run_on: Run) -> None:
    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def main() -> str:
        caught = "no error"
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(boom())
                tg.create_task(asyncio.sleep(10))
        except* ValueError as eg:
            caught = str(eg.exceptions[0])
        return caught

    assert run_on(main()) == "boom"


def test_exception_in_callback_goes_to_the_handler(run_on: Run) -> None:
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))

        def bad() -> None:
            raise RuntimeError("bad callback")

        loop.call_soon(bad)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return seen[0]["message"].split(" ")[0], str(seen[0]["exception"])

    assert run_on(main()) == ("Exception", "bad callback")


def test_contextvars_flow_into_callbacks_and_tasks(run_on: Run) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def child() -> str:
        return var.get()

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        var.set("main")
        got: list[str] = []
        fut = loop.create_future()
        loop.call_soon(lambda: (got.append(var.get()), fut.set_result(None)))
        await fut
        got.append(await asyncio.create_task(child()))
        ctx = contextvars.copy_context()
        ctx.run(var.set, "other")
        fut2 = loop.create_future()
        loop.call_soon(lambda: (got.append(var.get()), fut2.set_result(None)), context=ctx)
        await fut2
        return got

    assert run_on(main()) == ["main", "main", "other"]


def test_run_in_executor_and_to_thread(run_on: Run) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(None, sum, [1, 2, 3])
        b = await asyncio.to_thread(pow, 2, 10)
        return [a, b]

    assert run_on(main()) == [6, 1024]


def test_call_soon_threadsafe_from_many_threads(run_on: Run) -> None:
    threads, per_thread = 8, 500

    async def main() -> tuple[int, list[int]]:
        loop = asyncio.get_running_loop()
        counts = [0] * threads
        done = loop.create_future()
        total = threads * per_thread
        seen = 0

        def hit(i: int) -> None:
            nonlocal seen
            counts[i] += 1
            seen += 1
            if seen == total:
                done.set_result(None)

        def pound(i: int) -> None:
            for _ in range(per_thread):
                loop.call_soon_threadsafe(hit, i)

        workers = [threading.Thread(target=pound, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        await asyncio.wait_for(done, 30)
        for w in workers:
            w.join()
        return seen, counts

    seen, counts = run_on(main())
    assert seen == threads * per_thread
    assert counts == [per_thread] * threads


def test_tcp_streams_echo(run_on: Run) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> int:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = os.urandom(256 * 1024)
        writer.write(payload)
        await writer.drain()
        got = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return len(got) if got == payload else -1

    assert run_on(main()) == 256 * 1024


def test_unix_socket_and_sock_api(run_on: Run, tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data.upper())  # type: ignore[attr-defined]

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(Echo, path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, path)
            await loop.sock_sendall(sock, b"hello")
            got = await loop.sock_recv(sock, 100)
        finally:
            sock.close()
        server.close()
        await server.wait_closed()
        return got

    assert run_on(main()) == b"HELLO"


def test_datagram_endpoint(run_on: Run) -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data[::-1], addr)  # type: ignore[attr-defined]

    class Client(asyncio.DatagramProtocol):
        def __init__(self, fut: asyncio.Future[bytes]) -> None:
            self.fut = fut

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.fut.set_result(data)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        fut: asyncio.Future[bytes] = loop.create_future()
        client, _ = await loop.create_datagram_endpoint(
            lambda: Client(fut), remote_addr=server.get_extra_info("sockname")
        )
        client.sendto(b"abc")
        got = await asyncio.wait_for(fut, 10)
        client.close()
        server.close()
        return got

    assert run_on(main()) == b"cba"


def test_subprocess_exec_and_shell(run_on: Run, no_leaks: None) -> None:
    async def main() -> tuple[bytes, int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate(b"piped")
        shell = await asyncio.create_subprocess_shell("exit 3")
        code = await shell.wait()
        proc2 = await asyncio.create_subprocess_exec("echo", "hi", stdout=asyncio.subprocess.PIPE)
        out2, _ = await proc2.communicate()
        return out, code, out2

    assert run_on(main()) == (b"PIPED", 3, b"hi\n")


def test_signal_handler_runs_on_the_loop(run_on: Run) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result("SIGUSR1"))
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            result = await asyncio.wait_for(got, 10)
        finally:
            removed = loop.remove_signal_handler(signal.SIGUSR1)
        return [result, str(removed)]

    assert run_on(main()) == ["SIGUSR1", "True"]


def test_asyncgens_are_finalized_by_runner(run_on: Run) -> None:
    closed: list[str] = []

    async def agen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    async def main() -> int:
        gen = agen()
        return await gen.__anext__()  # left unfinished: shutdown_asyncgens must close it

    assert run_on(main()) == 1
    assert closed == ["closed"]


def test_run_until_complete_and_close(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    loop = loop_factory()
    assert loop.run_until_complete(asyncio.sleep(0, "x")) == "x"
    assert not loop.is_running()
    loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()


def test_debug_mode_logs_slow_callbacks(run_on: Run, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.0
        fut = loop.create_future()
        loop.call_soon(fut.set_result, True)
        return await fut

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        assert run_on(main()) is True
    assert any("Executing" in r.getMessage() and "took" in r.getMessage() for r in caplog.records)


def test_debug_mode_rejects_call_soon_from_another_thread(loop_factory: Callable[[], Any]) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        errors: list[str] = []

        def other_thread() -> None:
            try:
                loop.call_soon(print)
            except RuntimeError as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other_thread)
        t.start()
        await asyncio.to_thread(t.join)
        return errors[0]

    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        assert "thread" in runner.run(main())


def test_runner_accepts_trilane_factory() -> None:
    with asyncio.Runner(loop_factory=trilane.new_event_loop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, trilane.Loop)
        assert runner.run(asyncio.sleep(0, "done")) == "done"
        assert runner.run(asyncio.sleep(0, "again")) == "again"
    assert loop.is_closed()


def test_stop_and_run_forever_resume(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    loop = loop_factory()
    try:
        out: list[int] = []
        loop.call_soon(out.append, 1)
        loop.call_soon(loop.stop)
        loop.call_soon(out.append, 2)
        loop.run_forever()
        assert out == [1, 2]  # stop() lets the current batch finish, as asyncio does
        loop.call_soon(loop.stop)
        loop.call_soon(out.append, 3)
        loop.run_forever()
        assert out == [1, 2, 3]
    finally:
        loop.close()


@pytest.mark.parametrize("policy", trilane.policy_names())
def test_threadsafe_then_soon_keep_their_order_under_every_policy(policy: str) -> None:
    loop = trilane.new_event_loop(policy=policy)
    try:
        out: list[str] = []
        t = threading.Thread(target=loop.call_soon_threadsafe, args=(out.append, "other-thread"))
        t.start()
        t.join()
        loop.call_soon_threadsafe(out.append, "threadsafe")
        loop.call_soon(out.append, "soon")
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert out == ["other-thread", "threadsafe", "soon"]
    finally:
        loop.close()


def test_handles_look_like_asyncios(run_on: Run) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        soon = loop.call_soon(print)
        later = loop.call_later(3600, print)
        at = loop.call_at(loop.time() + 3600, print)
        assert isinstance(later, asyncio.TimerHandle) and isinstance(at, asyncio.TimerHandle)
        assert abs(later.when() - at.when()) < 1
        handles = (soon, later, at)
        for h in handles:
            h.cancel()
        return [type(h).__name__ for h in handles] + [repr(h).split()[0] for h in handles]

    assert run_on(main()) == ["Handle", "TimerHandle", "TimerHandle", "<Handle", "<TimerHandle", "<TimerHandle"]


def test_call_later_goes_through_a_subclass_call_at(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    # asyncio's call_later calls self.call_at, and subclasses (asyncio's own
    # test loop among them) override call_at to see every timer.
    probe = loop_factory()
    base = type(probe)
    probe.close()
    seen: list[float] = []

    class Recording(base):  # type: ignore[valid-type,misc]
        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
            seen.append(when)
            return super().call_at(when, callback, *args, context=context)

    loop = Recording()
    try:
        loop.run_until_complete(asyncio.sleep(0.001))
        assert len(seen) == 1
    finally:
        loop.close()
