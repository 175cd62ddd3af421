"""Map test helpers: a warm fork server, so that no_leaks does not count it as a leak."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so worker processes can import mapfuncs


@pytest.fixture(scope="session", autouse=True)
def _warm_map_forkserver() -> Iterator[None]:
    # The fork server and the resource tracker live as long as the test process;
    # start them before any no_leaks snapshot is taken.
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker

    import trilane  # noqa: F401  (sets the fork server's preload list first)

    multiprocessing.get_context("forkserver")
    forkserver.ensure_running()
    resource_tracker.ensure_running()
    yield
