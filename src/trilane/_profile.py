"""The saved machine profile: what ``trilane bench`` measured on this machine.

``trilane bench`` writes it; ``trilane.map(backend="auto")`` reads it (when
it exists) to know what a process round trip and a thread hand-off cost here.

Where it lives: ``$TRILANE_PROFILE`` if set, else
``$XDG_CACHE_HOME/trilane/profile.json``, else
``~/.cache/trilane/profile.json``.  Delete the file to forget it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["MachineProfile", "load_profile", "profile_path", "save_profile"]


@dataclass(frozen=True)
class MachineProfile:
    """Per-item costs measured on this machine, in seconds (``cpus`` is a count)."""

    cpus: int
    #: One task's round trip through a process pool (submit to result), tiny payload.
    process_roundtrip: float
    #: One task's round trip through a thread pool, tiny payload.
    thread_roundtrip: float
    #: One coroutine switch (``await asyncio.sleep(0)``).
    async_switch: float
    #: Start-up of a 2-worker process pool to its first result.
    process_startup: float
    #: When it was measured (seconds since the epoch).
    measured_at: float


def profile_path() -> Path:
    """Return where the machine profile is stored (see the module docstring)."""
    explicit = os.environ.get("TRILANE_PROFILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trilane" / "profile.json"


def load_profile() -> MachineProfile | None:
    """Return the saved profile, or ``None`` if there is none or it cannot be read."""
    try:
        data = json.loads(profile_path().read_text())
        names = {f.name for f in fields(MachineProfile)}
        return MachineProfile(**{k: v for k, v in data.items() if k in names})
    except (OSError, ValueError, TypeError):
        return None


def save_profile(profile: MachineProfile) -> Path:
    """Write *profile* where :func:`load_profile` finds it; return the path."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(profile), indent=2) + "\n")
    tmp.replace(path)
    return path
