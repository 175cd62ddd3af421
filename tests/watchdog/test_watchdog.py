"""The watchdog catches a blocking callback while it blocks, says where and why, and counts repeats."""

from __future__ import annotations

import asyncio
import http.server
import logging
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import trilane

pytestmark = pytest.mark.usefixtures("no_leaks")


def _line() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def _watchdog_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("trilane-watchdog")]


@pytest.mark.slow
def test_time_sleep_is_reported_while_it_sleeps() -> None:
    got: list[tuple[float, trilane.BlockingReport]] = []
    watchdog = trilane.Watchdog(threshold=0.1, on_block=lambda r: got.append((time.perf_counter(), r)), log=False)
    where: dict[str, object] = {}

    async def main() -> trilane.TaskStats:
        await asyncio.sleep(0)
        where["line"] = _line()
        time.sleep(0.3)
        where["returned"] = time.perf_counter()
        await asyncio.sleep(0)
        return trilane.task_stats()

    stats = trilane.run(main(), watchdog=watchdog)
    assert len(got) == 1
    arrived, report = got[0]
    assert arrived < where["returned"]  # type: ignore[operator]  # the report came while time.sleep ran
    assert not report.ended
    assert 0.1 <= report.duration < 0.3
    assert (report.filename, report.lineno, report.function) == (__file__, where["line"], "main")
    assert report.location == f"{__file__}:{where['line']}"
    assert report.hint.kind == "sleep"
    assert "time.sleep" in report.hint.cause and "asyncio.sleep" in report.hint.fix
    assert report.task.startswith("Task-")
    assert report.frames[-1].is_user and "time.sleep(0.3)" in report.frames[-1].line
    # The stack starts inside the callback: no frames of the loop that runs it.
    assert [f.function for f in report.frames] == ["main"]
    # The whole blocked time is charged to the task and to its call site.
    assert stats.blocked_time >= 0.3
    (site,) = watchdog.sites()
    assert site.count == 1 and site.total >= 0.3 and site.longest >= 0.3
    assert _watchdog_threads() == []


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.4)
        body = b"slow hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="slow-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.slow
def test_requests_get_hint_names_requests_and_its_fixes(slow_server: str) -> None:
    import requests

    got: list[trilane.BlockingReport] = []
    where: dict[str, int] = {}

    async def main() -> str:
        await asyncio.sleep(0)
        where["line"] = _line()
        with requests.get(slow_server, timeout=10) as response:
            return response.text

    assert trilane.run(main(), watchdog=trilane.Watchdog(0.1, on_block=got.append, log=False)) == "slow hello"
    (report,) = got
    assert report.hint.kind == "http"
    assert "requests" in report.hint.cause
    assert "aiohttp" in report.hint.fix and "trilane.to_thread" in report.hint.fix
    assert report.location == f"{__file__}:{where['line']}"
    # requests' and urllib3's frames are folded; where it waits (socket) stays visible.
    assert any(f.folded and "requests" in f.package for f in report.frames) or any(
        f.package == "requests" for f in report.frames
    )
    assert not report.frames[-1].is_user


@pytest.mark.slow
def test_endless_cpu_loop_gets_the_cpu_hint() -> None:
    stop = threading.Event()
    got: list[trilane.BlockingReport] = []

    def on_block(report: trilane.BlockingReport) -> None:
        got.append(report)
        stop.set()  # lets the endless loop below finish

    async def main() -> int:
        await asyncio.sleep(0)
        n = 0
        while not stop.is_set():
            n += 1
        return n

    assert trilane.run(main(), watchdog=trilane.Watchdog(0.1, on_block=on_block, log=False)) > 0
    (report,) = got
    assert report.hint.kind == "cpu"
    assert report.hint.cause.startswith("CPU-bound")
    assert "trilane.to_process" in report.hint.fix
    assert report.filename == __file__ and report.function == "main"
    assert report.cpu is None or 0.0 <= report.cpu <= 1.0


@pytest.mark.slow
def test_loop_idle_in_select_is_not_reported() -> None:
    got: list[trilane.BlockingReport] = []
    watchdog = trilane.Watchdog(threshold=0.05, on_block=got.append)

    async def main() -> None:
        assert _watchdog_threads()  # the watchdog is watching
        await asyncio.sleep(2)

    trilane.run(main(), watchdog=watchdog)
    assert got == []
    assert watchdog.sites() == [] and watchdog.incidents == 0
    assert "no callback blocked" in watchdog.summary()


@pytest.mark.slow
def test_repeated_incidents_at_one_call_site_are_counted_not_repeated(caplog: pytest.LogCaptureFixture) -> None:
    got: list[trilane.BlockingReport] = []
    watchdog = trilane.Watchdog(threshold=0.01, on_block=got.append)

    async def main() -> None:
        for _ in range(100):
            time.sleep(0.03)
            await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="trilane.watchdog"):
        trilane.run(main(), watchdog=watchdog)
    sites = watchdog.sites()
    assert [(s.function, s.count) for s in sites] == [("main", 100)]
    (site,) = sites
    assert site.total >= 100 * 0.03
    assert site.longest >= 0.03
    assert site.hint.kind == "sleep"
    assert site.tasks == (got[0].task,)
    assert [r.count for r in got] == list(range(1, 101))
    assert watchdog.incidents == 100
    # The log warns on the 1st, 10th and 100th incident of the site, not 100 times.
    warnings = [r for r in caplog.records if r.name == "trilane.watchdog"]
    assert len(warnings) == 3
    assert "incident 100 at this call site" in warnings[-1].getMessage()
    assert "100" in watchdog.summary() and site.location in watchdog.summary()


def test_default_run_warns_on_the_trilane_watchdog_logger(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        await asyncio.sleep(0)
        time.sleep(0.25)

    with caplog.at_level(logging.WARNING, logger="trilane.watchdog"):
        trilane.run(main())
    (record,) = [r for r in caplog.records if r.name == "trilane.watchdog"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "blocking the event loop" in message and __file__ in message and "asyncio.sleep" in message


def test_watchdog_none_starts_no_thread(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[str]:
        time.sleep(0.15)
        return _watchdog_threads()

    with caplog.at_level(logging.WARNING, logger="trilane.watchdog"):
        assert trilane.run(main(), watchdog=None) == []
    assert [r for r in caplog.records if r.name == "trilane.watchdog"] == []


def test_incident_that_ends_before_it_is_sampled_is_reported_on_its_end() -> None:
    # The thread looks only every 60 s, so it never samples; the loop's end-of-callback call reports.
    got: list[trilane.BlockingReport] = []
    watchdog = trilane.Watchdog(threshold=0.01, interval=60, on_block=got.append, log=False)

    async def main() -> float:
        await asyncio.sleep(0)
        time.sleep(0.03)
        await asyncio.sleep(0)
        return trilane.task_stats().blocked_time

    assert trilane.run(main(), watchdog=watchdog) >= 0.03
    (report,) = got
    assert report.ended and report.duration >= 0.03
    assert report.hint.kind == "unknown" and "lower threshold" in report.hint.fix
    assert watchdog.sites()[0].count == 1


def test_a_failing_on_block_is_logged_and_the_run_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def on_block(report: trilane.BlockingReport) -> None:
        raise RuntimeError("hook bug")

    async def main() -> str:
        await asyncio.sleep(0)
        time.sleep(0.2)
        await asyncio.sleep(0)
        return "done"

    with caplog.at_level(logging.WARNING, logger="trilane.watchdog"):
        assert trilane.run(main(), watchdog=trilane.Watchdog(0.05, on_block=on_block, log=False)) == "done"
    assert any("on_block hook" in r.getMessage() and r.exc_info for r in caplog.records)


def test_one_watchdog_watches_run_after_run() -> None:
    watchdog = trilane.Watchdog(threshold=0.05, log=False)

    async def main() -> None:
        await asyncio.sleep(0)
        time.sleep(0.15)

    trilane.run(main(), watchdog=watchdog)
    trilane.run(main(), watchdog=watchdog)
    (site,) = watchdog.sites()
    assert site.count == 2
    watchdog.reset()
    assert watchdog.sites() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        trilane.Watchdog(threshold=0)
    with pytest.raises(ValueError, match="interval"):
        trilane.Watchdog(interval=-1)

    async def main() -> None:
        pass

    with pytest.raises(TypeError, match=r"trilane\.Watchdog or None"):
        trilane.run(main(), watchdog=0.1)  # type: ignore[arg-type]


def test_plain_callbacks_and_debug_mode_are_watched_too() -> None:
    got: list[trilane.BlockingReport] = []

    def blocking_callback(done: asyncio.Future[None]) -> None:
        time.sleep(0.2)
        done.set_result(None)

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(blocking_callback, done)
        await done

    trilane.run(main(), watchdog=trilane.Watchdog(0.05, on_block=got.append, log=False), debug=True)
    (report,) = got
    assert report.task == "<callback>"
    assert report.function == "blocking_callback" and report.hint.kind == "sleep"
    assert [f.function for f in report.frames] == ["blocking_callback"]  # nothing of the loop's debug path


def test_one_watchdog_watches_two_loops_at_once() -> None:
    watchdog = trilane.Watchdog(threshold=0.05, log=False)

    async def main() -> None:
        await asyncio.sleep(0)
        time.sleep(0.15)

    threads = [threading.Thread(target=trilane.run, args=(main(),), kwargs={"watchdog": watchdog}) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (site,) = watchdog.sites()
    assert site.count == 2 and site.total >= 0.3
    assert _watchdog_threads() == []
