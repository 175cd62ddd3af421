"""The ProcessPool manager's readiness set, with muting for direct readers.

The manager thread waits on every worker's pipe and process sentinel at once.
A caller thread that blocks on one task's future may take that worker's pipe
out of the set for a moment (``mute``) and read the reply itself; ``epoll_ctl``
is safe to call while another thread sits in ``epoll_wait``.
"""

from __future__ import annotations

import select
from typing import Any

__all__ = ["Poller"]


class Poller:
    """The manager's readiness set: epoll where available (Linux).

    ``mute``/``unmute`` take a worker's pipe out of the set and back while a
    caller thread reads it directly (see ``ProcessPool._direct_wait``);
    ``epoll_ctl`` may be called while another thread sits in ``epoll_wait``.
    Other platforms get ``select.poll`` and no muting (no direct reads).
    All mutations happen with the pool lock held.
    """

    def __init__(self) -> None:
        self._ep: Any = select.epoll() if hasattr(select, "epoll") else None
        self._poll: Any = None if self._ep is not None else select.poll()
        self.can_mute = self._ep is not None
        self._data: dict[int, Any] = {}
        self._muted: set[int] = set()

    def add(self, fd: int, data: Any) -> None:
        self._data[fd] = data
        (self._ep or self._poll).register(fd, select.POLLIN)

    def remove(self, fd: int) -> None:
        if self._data.pop(fd, None) is None:
            return
        if fd in self._muted:
            self._muted.discard(fd)
            return
        try:
            (self._ep or self._poll).unregister(fd)
        except (OSError, KeyError, ValueError):
            pass

    def mute(self, fd: int) -> None:
        if fd in self._data and fd not in self._muted:
            self._muted.add(fd)
            self._ep.unregister(fd)

    def unmute(self, fd: int) -> None:
        if fd in self._muted:
            self._muted.discard(fd)
            self._ep.register(fd, select.POLLIN)

    def wait(self, timeout: float | None) -> list[Any]:
        if self._ep is not None:
            events = self._ep.poll(-1 if timeout is None else timeout)
        else:
            events = self._poll.poll(None if timeout is None else timeout * 1000)
        data = self._data
        return [data[fd] for fd, _ in events if fd in data]

    def close(self) -> None:
        if self._ep is not None:
            self._ep.close()
