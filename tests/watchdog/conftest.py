"""Watchdog test helpers: the shared offload pools shut down after each test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so worker processes can import _offload_tasks


@pytest.fixture
def shared_pools(no_leaks: None) -> Iterator[None]:
    """Shut down to_thread's and to_process's shared pools before the leak check runs."""
    from trilane._offload import shutdown_shared_pools

    yield
    shutdown_shared_pools()
