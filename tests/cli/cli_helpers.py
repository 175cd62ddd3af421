"""Helpers for the CLI tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The user module that `trilane run` imports in these tests.
USER_MODULE = """
import asyncio
import os
import time


def _log(item):
    path = os.environ.get("TRILANE_TEST_LOG")
    if path:
        with open(path, "a") as f:
            f.write(repr(item) + "\\n")


def double(x):
    _log(x)
    return x * 2


def upper(line):
    _log(line)
    return line.upper()


def score(row):
    _log(row)
    return int(row["a"]) + int(row["b"])


def fail_threes(x):
    _log(x)
    if x % 3 == 0:
        raise ValueError(f"{x} is a multiple of 3")
    return x


def slow(x):
    _log(x)
    time.sleep(0.05)
    return x


async def ashout(line):
    await asyncio.sleep(0.001)
    return line.upper() + "!"


NOT_CALLABLE = 42
"""


def trilane_command() -> list[str]:
    """The installed console script, next to this Python if it is there, else ``python -m trilane``."""
    script = Path(sys.executable).parent / "trilane"
    if script.exists():
        return [str(script)]
    found = shutil.which("trilane")
    return [found] if found else [sys.executable, "-m", "trilane"]


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COLUMNS"] = "240"  # rich wraps at 80 columns when not on a terminal
    env["TRILANE_TEST_LOG"] = str(tmp_path / "calls.log")
    env["TRILANE_PROFILE"] = str(tmp_path / "profile.json")
    env.pop("PYTHONWARNINGS", None)
    return env


def records(text: str) -> list[dict[str, Any]]:
    """Parse JSONL text into records."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def calls(workdir: Path) -> list[str]:
    """The items the user function was called with, in call order (one repr per call)."""
    path = workdir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path
