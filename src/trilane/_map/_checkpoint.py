"""Checkpoint files: one JSON line per finished item, appended and flushed as it finishes.

Format (one object per line, ``\\n``-terminated)::

    {"k": KEY, "i": INDEX, "r": RESULT, "a": ATTEMPTS, "s": SECONDS}      success, JSON result
    {"k": KEY, "i": INDEX, "p": "BASE64", "a": ATTEMPTS, "s": SECONDS}    success, pickled result
    {"k": KEY, "i": INDEX, "e": "TypeError: ...", "a": ATTEMPTS, ...}     failure

Guarantees:

* A batch of finished items goes to the file in one ``os.write`` on an
  ``O_APPEND`` descriptor, so a crash (even SIGKILL) leaves whole lines and at
  most one torn last line; there is no user-space buffer to lose.
* On resume, a last line that has no newline or does not parse is torn: the
  file is truncated to the end of the line before it and that item runs again,
  so it is never counted twice.  A bad line *before* the last is corruption
  and raises :class:`trilane.CheckpointError` with its byte offset.
* A key is done once it has a success line.  Failure lines are kept for the
  record, but a resumed run tries those items again.
* Keys are compared by their canonical JSON text, so ``(1, 2)`` and ``[1, 2]``
  are the same key.  Results come back as JSON decodes them (tuples become
  lists); results JSON cannot encode are pickled.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
from collections.abc import Hashable
from typing import Any

from .._core._errors import CheckpointError

__all__ = ["CheckpointWriter", "canonical_key", "load_checkpoint"]


def canonical_key(key: Hashable) -> str:
    """Return the text that identifies *key* in a checkpoint file."""
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"checkpoint key {key!r} cannot be written as JSON ({exc}); return a str, int or tuple "
            "from key=, or leave key=None to use the item's index"
        ) from None


def load_checkpoint(path: str) -> dict[str, tuple[Any, int, float]]:
    """Read *path* and return {canonical key: (result, attempts, seconds)} for every finished item.

    Repairs a torn last line by truncating the file; raises CheckpointError for
    earlier corruption.  A missing file is an empty checkpoint.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    done: dict[str, tuple[Any, int, float]] = {}
    offset = 0
    line_no = 0
    size = len(data)
    while offset < size:
        end = data.find(b"\n", offset)
        line_no += 1
        last = end == -1 or end + 1 >= size
        raw = data[offset:] if end == -1 else data[offset:end]
        try:
            if end == -1:
                raise ValueError("the line has no newline at its end")
            rec = json.loads(raw)
            if not isinstance(rec, dict) or "k" not in rec:
                raise ValueError("the line is not a checkpoint record")
            key = json.dumps(rec["k"], sort_keys=True, separators=(",", ":"))
            if "e" not in rec:
                result = pickle.loads(base64.b64decode(rec["p"])) if "p" in rec else rec.get("r")
                done[key] = (result, int(rec.get("a", 1)), float(rec.get("s", 0.0)))
        except Exception as exc:
            if last:
                # A torn last line: the run died while writing it.  Drop it so that
                # the next append starts on a clean line, and redo that item.
                with open(path, "r+b") as f:
                    f.truncate(offset)
                break
            raise CheckpointError(path, offset, line_no, str(exc)) from None
        offset = end + 1
    return done


def _encode(result: Any) -> tuple[str, str]:
    try:
        return "r", json.dumps(result)
    except (TypeError, ValueError):
        return "p", json.dumps(base64.b64encode(pickle.dumps(result)).decode("ascii"))


class CheckpointWriter:
    """Appends finished items to a checkpoint file, one ``os.write`` per batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._lines: list[str] = []

    def add_success(self, key: str, index: int, result: Any, attempts: int, seconds: float) -> None:
        """Queue a success line; :meth:`flush` writes it."""
        field, text = _encode(result)
        self._lines.append(f'{{"k":{key},"i":{index},"{field}":{text},"a":{attempts},"s":{seconds:.6g}}}\n')

    def add_failure(self, key: str, index: int, exc: BaseException, attempts: int, seconds: float) -> None:
        """Queue a failure line; :meth:`flush` writes it."""
        text = json.dumps(f"{type(exc).__name__}: {exc}")
        self._lines.append(f'{{"k":{key},"i":{index},"e":{text},"a":{attempts},"s":{seconds:.6g}}}\n')

    def flush(self) -> None:
        """Write every queued line in one append."""
        if self._lines and self._fd is not None:
            data = "".join(self._lines).encode()
            self._lines.clear()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None
