"""Process checks shared by the test suites (tests/ is on sys.path through its conftest)."""

from __future__ import annotations


def pid_alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie (or dead and being reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
