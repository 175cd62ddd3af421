"""``trilane.run``: asyncio.run on a trilane Loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from ._clock import Clock
from ._errors import NotACoroutine
from ._loop import Loop
from ._policies import Policy, make_policy
from ._watchdog import Watchdog

__all__ = ["run"]

T = TypeVar("T")


class _Default:
    def __repr__(self) -> str:
        return "Watchdog(threshold=0.1)"


#: The default of ``run(watchdog=...)``: a new Watchdog with a 100 ms threshold for each run.
DEFAULT_WATCHDOG: Final = _Default()

#: Set by ``trilane trace`` while it runs a script: called with each loop that ``run()``
#: makes, and whether that run left the watchdog at its default (trace then installs its own).
trace_hook: Callable[[Loop, bool], None] | None = None


def run(
    main: Coroutine[Any, Any, T],
    *,
    policy: Policy[Any] | str = "fifo",
    debug: bool | None = None,
    clock: Clock | None = None,
    watchdog: Watchdog | _Default | None = DEFAULT_WATCHDOG,
) -> T:
    """Run coroutine *main* on a new :class:`Loop` and return its result, like ``asyncio.run``.

    The watchdog is on by default: a new :class:`trilane.Watchdog` with a
    100 ms threshold warns on the ``trilane.watchdog`` logger, while it
    happens, about any callback that blocks the loop, with a hint to fix it.
    Pass your own ``Watchdog(threshold=..., on_block=...)`` to configure it,
    or ``watchdog=None`` to turn it off.

    Raises :class:`trilane.NotACoroutine` (a ``TypeError``) when *main* is not
    a coroutine, and ``ValueError`` for an unknown policy name.
    """
    if not asyncio.iscoroutine(main):
        raise NotACoroutine(f"trilane.run() needs a coroutine, such as main(), got {main!r}")
    queue = make_policy(policy)
    hook = Watchdog() if isinstance(watchdog, _Default) else watchdog
    if hook is not None and not isinstance(hook, Watchdog):
        main.close()
        raise TypeError(f"trilane.run(watchdog=...) takes a trilane.Watchdog or None, got {hook!r}")

    def make_loop() -> Loop:
        loop = Loop(policy=queue, clock=clock)
        loop.set_block_hook(hook)
        if trace_hook is not None:
            trace_hook(loop, isinstance(watchdog, _Default))
        return loop

    with asyncio.Runner(debug=debug, loop_factory=make_loop) as runner:
        return runner.run(main)
