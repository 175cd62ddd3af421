"""Watchdog test helpers: a warm fork server, and the shared offload pools shut down after each test."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so worker processes can import _offload_tasks


@pytest.fixture(scope="session", autouse=True)
def _warm_forkserver() -> Iterator[None]:
    # The fork server and the resource tracker live as long as the test
    # process; start them before any no_leaks snapshot is taken.
    from multiprocessing import forkserver, resource_tracker

    import trilane  # noqa: F401  (sets the fork server's preload list first)

    multiprocessing.get_context("forkserver")
    forkserver.ensure_running()
    resource_tracker.ensure_running()
    yield


@pytest.fixture
def shared_pools(no_leaks: None) -> Iterator[None]:
    """Shut down to_thread's and to_process's shared pools before the leak check runs."""
    from trilane._offload import shutdown_shared_pools

    yield
    shutdown_shared_pools()
