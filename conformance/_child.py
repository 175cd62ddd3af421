"""One conformance job: run some of ``test.test_asyncio`` on one event loop.

Run by ``conformance/run.py`` in a fresh interpreter per job, so that the
routing below (which patches asyncio module attributes) never leaks into the
parent or into a stock-loop job.  Each finished test is appended to a JSON
lines file at once, so a crash or a hang loses only the test that was
running; the parent reports that test as ``crashed``.

What is routed to ``trilane.Loop`` (``--loop trilane``):

* ``asyncio.new_event_loop()`` and ``asyncio.get_event_loop_policy().new_event_loop()``,
  through the default policy's loop factory (``_UnixDefaultEventLoopPolicy._loop_factory``);
* ``asyncio.SelectorEventLoop``, ``asyncio.unix_events.SelectorEventLoop`` and
  ``asyncio.unix_events._UnixSelectorEventLoop``, so that test modules that
  build a selector loop themselves (test_events, test_sock_lowlevel,
  test_sendfile, test_server, test_unix_events, test_buffered_proto,
  test_sslproto, test_base_events' selector tests, ...) get a trilane loop, with
  whichever selector they pass;
* ``test.test_asyncio.utils.TestLoop``, asyncio's virtual-time test loop (most
  of test_tasks and test_futures), rebased on ``trilane.Loop`` (see
  :func:`route_test_loop_to_trilane`; ``--keep-test-loop`` turns this off).

What is not routed: asyncio's unit tests of its own base classes, which build
``base_events.BaseEventLoop()``, ``selector_events.BaseSelectorEventLoop()``
or ``BaseProactorEventLoop()`` directly, mostly with mocked selectors and
sockets (test_base_events, test_selector_events, test_proactor_events,
test_pep492, and test_runners' mock-loop policy).  They test asyncio's own
classes, not an event loop implementation.  The ``<loops>`` line at the end of
each results file counts the loops each job created, by class.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.unix_events
import faulthandler
import json
import os
import sys
import time
import traceback
import unittest
from asyncio import base_events
from typing import Any, TextIO

#: Names of loops created in this job, by class, to prove the routing worked.
CREATED: dict[str, int] = {}


def _count_loops() -> None:
    original = base_events.BaseEventLoop.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        routed = any(c.__module__.startswith("trilane.") for c in cls.__mro__)
        name = f"{'trilane: ' if routed else ''}{cls.__module__}.{cls.__qualname__}"
        CREATED[name] = CREATED.get(name, 0) + 1
        original(self, *args, **kwargs)
        if self.get_debug():  # proves --debug reached the loops: "debug mode" counts them
            CREATED["debug mode"] = CREATED.get("debug mode", 0) + 1

    base_events.BaseEventLoop.__init__ = counting_init  # type: ignore[method-assign]


def route_to_trilane(policy: str) -> None:
    """Make every way a test module gets a real event loop return a ``trilane.Loop``."""
    import trilane

    loop_cls: type[trilane.Loop] = trilane.Loop
    if policy != "fifo":

        class PolicyLoop(trilane.Loop):
            def __init__(self, selector: Any = None) -> None:
                super().__init__(selector, policy=policy)

        loop_cls = PolicyLoop
    unix = asyncio.unix_events
    asyncio.SelectorEventLoop = loop_cls  # type: ignore[misc]
    unix.SelectorEventLoop = loop_cls  # type: ignore[misc]
    unix._UnixSelectorEventLoop = loop_cls  # type: ignore[misc]
    unix._UnixDefaultEventLoopPolicy._loop_factory = loop_cls  # type: ignore[assignment]


def route_test_loop_to_trilane(policy: str) -> None:
    """Rebase ``test.test_asyncio.utils.TestLoop`` (asyncio's virtual-time test loop) on ``trilane.Loop``.

    ``TestLoop`` subclasses ``BaseEventLoop`` and drives time from a generator;
    most of test_tasks and test_futures run on it.  The routed class puts
    ``trilane.Loop`` under it (``RoutedTestLoop -> TestLoop -> _TrilaneBase ->
    trilane.Loop``), so its tasks, futures and timers go through trilane's ready
    queue, timer heap and tick, on the test's virtual clock.  Two names clash
    and are bridged: ``_timers`` (TestLoop's list of new deadlines, trilane's
    heap) and the self-pipe (TestLoop has none).
    """
    from test.test_asyncio import utils

    import trilane
    from trilane._core._timers import TimerHeap

    class _TestClock(trilane.Clock):
        def __init__(self, loop: Any) -> None:
            self._loop = loop

        def time(self) -> float:
            return float(getattr(self._loop, "_time", 0))

    class _Timers(TimerHeap):
        """trilane's heap, plus the list of new deadlines that TestLoop's generator is sent."""

        def __init__(self) -> None:
            super().__init__()
            self.whens: list[float] = []

        def append(self, when: float) -> None:
            self.whens.append(when)

        def __iter__(self) -> Any:
            return iter(self.whens)

    class _TrilaneBase(trilane.Loop):
        def __init__(self) -> None:
            super().__init__(utils.TestSelector(), policy=policy, clock=_TestClock(self))

        # BaseEventLoop, TestLoop's own base, has no self-pipe.
        def _make_self_pipe(self) -> None:
            pass

        def _close_self_pipe(self) -> None:
            pass

        @property  # type: ignore[override]
        def _timers(self) -> Any:
            return self.__dict__["_bridged_timers"]

        @_timers.setter
        def _timers(self, value: Any) -> None:
            current = self.__dict__.get("_bridged_timers")
            if current is None:
                current = self.__dict__["_bridged_timers"] = _Timers()
            if isinstance(value, list):  # TestLoop resetting its list of new deadlines
                current.whens = value

    class RoutedTestLoop(utils.TestLoop, _TrilaneBase):  # type: ignore[misc]
        pass

    utils.TestLoop = RoutedTestLoop  # type: ignore[misc]


class _Recorder(unittest.TestResult):
    """Writes one JSON line per finished test; arms a per-test hang timer."""

    def __init__(self, out: TextIO, timeout: float) -> None:
        super().__init__()
        self._out = out
        self._timeout = timeout
        self._t0 = 0.0

    def _write(self, test: Any, outcome: str, detail: str = "") -> None:
        row = {"id": test.id(), "outcome": outcome, "seconds": round(time.monotonic() - self._t0, 3)}
        if detail:
            row["detail"] = detail[-4000:]
        self._out.write(json.dumps(row) + "\n")
        self._out.flush()

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        self._t0 = time.monotonic()
        self._out.write(json.dumps({"id": test.id(), "outcome": "started"}) + "\n")
        self._out.flush()
        # A hang dumps every thread's stack to stderr and exits; the parent
        # marks the test that was started but never finished as "crashed".
        faulthandler.dump_traceback_later(self._timeout, exit=True)

    def stopTest(self, test: Any) -> None:
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self._write(test, "pass")

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        # setUpModule/tearDownModule errors arrive as _ErrorHolder "tests".
        self._write(test, "error", "".join(traceback.format_exception(*err)))

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._write(test, "fail", "".join(traceback.format_exception(*err)))

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._write(test, "skip", reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._write(test, "xfail")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._write(test, "fail", "unexpected success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._write(subtest, kind, "".join(traceback.format_exception(*err)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop", choices=["stock", "trilane"], required=True)
    parser.add_argument("--policy", default="fifo")
    parser.add_argument("--keep-test-loop", action="store_true", help="leave utils.TestLoop on BaseEventLoop")
    parser.add_argument("--out", required=True, help="JSON lines file to append results to")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before one test counts as hung")
    parser.add_argument("names", nargs="+", help="dotted test names (modules, classes or single tests)")
    args = parser.parse_args(argv)

    _count_loops()
    if args.loop == "trilane":
        route_to_trilane(args.policy)
        if not args.keep_test_loop:
            route_test_loop_to_trilane(args.policy)
    with open(args.out, "a", encoding="utf-8") as out:
        try:
            suite = unittest.defaultTestLoader.loadTestsFromNames(args.names)
        except unittest.SkipTest as exc:  # a module that skips itself on import (Windows-only ones)
            out.write(json.dumps({"id": ",".join(args.names), "outcome": "skip", "detail": str(exc)}) + "\n")
            return 0
        result = _Recorder(out, args.timeout)
        suite.run(result)
        out.write(json.dumps({"id": "<loops>", "outcome": "info", "created": CREATED}) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
