"""``progress=True``: a rich progress bar on stderr.

It shows items done (of the total when the input has a length), the rate,
the ETA, and how many items failed and were retried.  It is drawn only when
stderr is a terminal, so logs and CI output stay clean; ``progress="force"``
draws it anyway.  The driver updates it once per finished chunk, not per
item, so it costs nothing measurable on fast runs.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """A thin wrapper over ``rich.progress.Progress`` with the map's columns."""

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]trilane.map"),
            BarColumn(),
            MofNCompleteColumn() if total is not None else TextColumn("{task.completed} done"),
            TaskProgressColumn(show_speed=True),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[extra]}"),
            console=Console(file=sys.stderr, force_terminal=None),
            transient=False,
        )
        self._task = self._progress.add_task("map", total=total, extra="")
        self._progress.start()

    @classmethod
    def create(cls, total: int | None, *, force: bool) -> ProgressBar | None:
        """Return a bar, or None when stderr is not a terminal and *force* is false."""
        if not force and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
            return None
        return cls(total)

    def update(self, stats: dict[str, Any]) -> None:
        """Show the current counts (done includes failed and resumed items)."""
        finished = stats["done"] + stats["failed"] + stats["resumed"]
        extra = []
        if stats["failed"]:
            extra.append(f"[red]{stats['failed']} failed")
        if stats["retries"]:
            extra.append(f"[yellow]{stats['retries']} retries")
        if stats["resumed"]:
            extra.append(f"{stats['resumed']} resumed")
        self._progress.update(self._task, completed=finished, extra=" · ".join(extra))

    def close(self, stats: dict[str, Any]) -> None:
        """Draw the final counts and stop the refresh thread."""
        try:
            self.update(stats)
        finally:
            self._progress.stop()
