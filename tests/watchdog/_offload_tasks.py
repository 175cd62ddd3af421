"""Top-level functions for to_process (worker processes import them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def announce_then_spin(path: str) -> None:
    """Write this worker's pid to *path*, then burn CPU until killed."""
    Path(path).write_text(str(os.getpid()))
    while True:
        time.perf_counter()


def fail(message: str) -> None:
    raise ValueError(message)
