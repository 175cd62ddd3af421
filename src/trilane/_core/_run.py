"""``trilane.run``: asyncio.run on a trilane Loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._clock import Clock
from ._errors import NotACoroutine
from ._loop import Loop
from ._policies import Policy, make_policy

__all__ = ["run"]

T = TypeVar("T")


def run(
    main: Coroutine[Any, Any, T],
    *,
    policy: Policy[Any] | str = "fifo",
    debug: bool | None = None,
    clock: Clock | None = None,
) -> T:
    """Run coroutine *main* on a new :class:`Loop` and return its result, like ``asyncio.run``.

    Raises :class:`trilane.NotACoroutine` (a ``TypeError``) when *main* is not
    a coroutine, and ``ValueError`` for an unknown policy name.
    """
    if not asyncio.iscoroutine(main):
        raise NotACoroutine(f"trilane.run() needs a coroutine, such as main(), got {main!r}")
    queue = make_policy(policy)
    with asyncio.Runner(debug=debug, loop_factory=lambda: Loop(policy=queue, clock=clock)) as runner:
        return runner.run(main)
