"""Fixtures for the CLI tests: run the installed ``trilane`` console script in a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import USER_MODULE, cli_env, trilane_command


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding ``usermod.py``; commands run there."""
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    return tmp_path


@pytest.fixture
def trilane(workdir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``trilane(*args, input=None, timeout=60)`` runs the console script in *workdir*."""

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*trilane_command(), *args],
            cwd=workdir,
            check=False,
            env=cli_env(workdir),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
