"""pytest-asyncio on trilane: the ``pytest_asyncio_loop_factories`` hook (pytest-asyncio >= 1.4).

This is the way pytest-asyncio 1.x chooses the loop an ``@pytest.mark.asyncio``
test runs on, without the event-loop policy API that Python 3.14 deprecates.
Each factory named here becomes one parametrization of every asyncio test in
this directory, so each runs on trilane (``fifo`` and ``priority``) and on
stock asyncio.  A project puts the same hook in its own ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial

import pytest

import trilane


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {
        "trilane": trilane.new_event_loop,
        "trilane-priority": partial(trilane.new_event_loop, policy="priority"),
        "asyncio": asyncio.new_event_loop,
    }
