"""How calls, results and errors cross the process boundary.

Every message is one *frame* plus zero or more *buffer frames* on a
``multiprocessing`` duplex pipe::

    frame  = kind:u8 | ident:u64 | nbuf:u32 | nbuf × (size:u64, readonly:u8) | pickle data
    buffer = the raw bytes of one out-of-band pickle buffer (protocol 5)

Large buffers (numpy arrays, and ``bytes``/``bytearray`` values at the top of
the arguments or the result) are pickled *out of band*: they never get copied
into the pickle stream; ``send_bytes`` writes them straight from the caller's
memory and the receiver reads them with one ``recv(MSG_WAITALL)`` straight
into a fresh ``bytes`` (read-only buffers) or ``bytearray`` (writable ones,
so a received numpy array is writable).  The receiving side reads the pipe
itself instead of through ``Connection.recv_bytes`` (same framing), which
copies through a BytesIO: for 1 MiB and up this makes a round trip cost a
fraction of a raw ``send_bytes``/``recv_bytes`` echo.

Pickling happens in the submitting thread, so an unpicklable function or
argument raises :class:`~trilane.NotPicklable` from ``submit()`` itself and
names the culprit.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import traceback
import types
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .._core._errors import NotPicklable
from ._options import _repr

__all__ = [
    "ERR",
    "INIT_ERROR",
    "OK",
    "OK_RETIRE",
    "READY",
    "STOP",
    "TASK",
    "Packed",
    "RemoteError",
    "dumps",
    "dumps_call",
    "loads",
    "loads_call",
    "recv_frame",
    "send_frame",
]

# Frame kinds.  Parent -> worker:
TASK = 1
STOP = 2
# Worker -> parent:
READY = 10
OK = 11
OK_RETIRE = 12  # a result, and the worker exits right after it (max_tasks_per_worker)
ERR = 13
ERR_RETIRE = 14
INIT_ERROR = 15

_HEAD = struct.Struct("!BQI")
_BUF = struct.Struct("!QB")
_LEN = struct.Struct("!i")  # the length prefix of each frame, as Connection.send_bytes writes it
_LEN64 = struct.Struct("!Q")
#: Buffers smaller than this stay in band: a frame costs more than a copy.
OOB_THRESHOLD = 64 * 1024

#: (pickle data, out-of-band buffers)
Packed = tuple[bytes, list[pickle.PickleBuffer]]


#: Containers longer than this are not searched for big values before pickling
#: (see :func:`dumps`): a map chunk's 10,000 results would cost more to search
#: than to pickle.
SCAN_LIMIT = 64


def _big_to_buffers(obj: Any, depth: int = 0, skipped: list[int] | None = None) -> Any:
    """Wrap large bytes/bytearray values near the top of *obj* in PickleBuffers.

    ``pickle`` never offers ``bytes`` to a buffer callback, but a
    ``PickleBuffer`` around it goes out of band and loads back as the
    ``bytes`` (or ``bytearray``) object the receiver supplies.  With a
    *skipped* list, containers longer than ``SCAN_LIMIT`` are left alone and
    their lengths recorded there.
    """
    t = type(obj)
    if t is bytes or t is bytearray:
        return pickle.PickleBuffer(obj) if len(obj) >= OOB_THRESHOLD else obj
    if depth >= 2 or not (t is tuple or t is list or t is dict):
        return obj
    if skipped is not None and len(obj) > SCAN_LIMIT:
        skipped.append(len(obj))
        return obj
    if t is dict:
        if not _has_big(obj.values()):
            return obj
        return {k: _big_to_buffers(v, depth + 1, skipped) for k, v in obj.items()}
    if not _has_big(obj):
        return obj
    items = [_big_to_buffers(x, depth + 1, skipped) for x in obj]
    return tuple(items) if t is tuple else items


def _has_big(values: Any) -> bool:
    # Cheap scan so that the common case (small args) allocates nothing new.
    for v in values:
        t = type(v)
        if (t is bytes or t is bytearray) and len(v) >= OOB_THRESHOLD:
            return True
        if (t is tuple or t is list or t is dict) and v:
            return True
    return False


#: Types whose pickle never carries an out-of-band buffer.
_PLAIN = frozenset({int, float, bool, str, type(None)})


def _plain(obj: Any) -> bool:
    """Whether *obj* pickles in band whatever happens: a scalar, a string, or small bytes."""
    t = type(obj)
    return t in _PLAIN or ((t is bytes or t is bytearray) and len(obj) < OOB_THRESHOLD)


def dumps(obj: Any) -> Packed:
    """Pickle *obj* with protocol 5, large buffers out of band.

    Long containers are searched for big ``bytes`` only when the pickle
    suggests they hold some: it is at least ``OOB_THRESHOLD`` long and
    averages 64 bytes or more per skipped element.  A list of 10,000 ints
    (a map chunk's results) is then pickled once, with no Python-level scan.
    A plain value (see :func:`_plain`) is pickled with no scan and no callback.
    """
    if _plain(obj):
        return pickle.dumps(obj, protocol=5), []
    buffers: list[pickle.PickleBuffer] = []

    def keep(buf: pickle.PickleBuffer) -> bool:
        # Returning False sends the buffer out of band.
        if buf.raw().nbytes < OOB_THRESHOLD:
            return True
        buffers.append(buf)
        return False

    skipped: list[int] = []
    data = pickle.dumps(_big_to_buffers(obj, 0, skipped), protocol=5, buffer_callback=keep)
    if skipped and len(data) >= OOB_THRESHOLD and len(data) >= 64 * sum(skipped):
        buffers.clear()
        data = pickle.dumps(_big_to_buffers(obj), protocol=5, buffer_callback=keep)
    return data, buffers


def loads(data: bytes | memoryview, buffers: list[Any]) -> Any:
    """Inverse of :func:`dumps`."""
    return pickle.loads(data, buffers=buffers)


#: A call's pickle data: ``fnlen:u32 | the function's pickle | (args, kwargs) pickle``.
_FNLEN = struct.Struct("!I")
#: Most programs submit a handful of functions, again and again: both sides keep
#: them pickled / unpickled (pickling a function by name costs more than a small
#: call's arguments; unpickling it goes through the import system).
_FN_CACHE_SIZE = 256
_fn_pickles: dict[Any, bytes] = {}
_fn_loaded: dict[Any, Any] = {}


def _by_name(fn: Callable[..., Any]) -> bool:
    """Whether *fn* pickles as a name alone: a Python function, or a module's builtin.

    A bound method, builtin or not (``d.get``, ``obj.run``), a partial or a
    callable object pickles its state as well, which may change between calls.
    """
    t = type(fn)
    if t is types.FunctionType:
        return True
    return t is types.BuiltinFunctionType and isinstance(getattr(fn, "__self__", None), types.ModuleType)


def _call_head(fn: Callable[..., Any]) -> bytes:
    """``fnlen | the function's pickle``, the start of every call's pickle data.

    Only functions that pickle by qualified name are cached, so the bytes never go stale.
    """
    cache = _by_name(fn)
    head = _fn_pickles.get(fn) if cache else None
    if head is None:
        data = pickle.dumps(fn, protocol=5)
        head = _FNLEN.pack(len(data)) + data
        if cache:
            if len(_fn_pickles) >= _FN_CACHE_SIZE:
                _fn_pickles.clear()
            _fn_pickles[fn] = head
    return head


def dumps_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], describe: Callable[[], str]
) -> Packed:
    """Pickle a call, or raise :class:`NotPicklable` naming the part that failed.

    Positional arguments that are all plain (see :func:`_plain`) are pickled
    straight away, with no search for big buffers: the common small call.
    """
    try:
        head = _call_head(fn)
        if not kwargs and all(map(_plain, args)):
            return head + pickle.dumps((args, kwargs), protocol=5), []
        data, buffers = dumps((args, kwargs))
    except Exception as exc:
        raise _not_picklable(fn, args, kwargs, exc, describe) from exc
    return head + data, buffers


def loads_call(data: memoryview, buffers: list[Any]) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """Inverse of :func:`dumps_call` (in the worker)."""
    (n,) = _FNLEN.unpack_from(data)
    key = data[4 : 4 + n]
    fn = _fn_loaded.get(key)  # a read-only byte memoryview hashes and compares like bytes
    if fn is None:
        key_bytes = bytes(key)
        fn = pickle.loads(key_bytes)
        if len(_fn_loaded) >= _FN_CACHE_SIZE:
            _fn_loaded.clear()
        # Caching by name is what re-importing would give, unless a task rebinds
        # a module's function inside the worker (then the old one keeps running).
        _fn_loaded[key_bytes] = fn
    args, kwargs = pickle.loads(data[4 + n :], buffers=buffers)
    return fn, args, kwargs


def _not_picklable(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: BaseException,
    describe: Callable[[], str],
) -> NotPicklable:
    parts: list[tuple[str, Any]] = [("the function", fn)]
    parts += [(f"argument {i} of {describe()}", a) for i, a in enumerate(args)]
    parts += [(f"keyword argument {k!r} of {describe()}", v) for k, v in kwargs.items()]
    for what, obj in parts:
        try:
            pickle.dumps(obj, protocol=5, buffer_callback=lambda b: False)
        except Exception as inner:
            return NotPicklable(what, _repr.repr(obj), f"{type(inner).__name__}: {inner}")
    return NotPicklable(f"the call {describe()}", "", f"{type(exc).__name__}: {exc}")


class RemoteError:
    """An exception raised in a worker, with its formatted traceback.

    It pickles even when the exception itself does not: then it carries a
    ``RuntimeError`` that names the original type and message.
    """

    __slots__ = ("exc", "tb")

    def __init__(self, exc: BaseException, tb: str | None = None) -> None:
        self.exc = exc
        self.tb = tb if tb is not None else "".join(traceback.format_exception(exc))

    @classmethod
    def picklable(cls, exc: BaseException) -> RemoteError:
        tb = "".join(traceback.format_exception(exc))
        try:
            pickle.loads(pickle.dumps(exc, protocol=5))
        except Exception as why:
            exc = RuntimeError(
                f"the worker raised {type(exc).__module__}.{type(exc).__qualname__}: {exc} "
                f"(the exception itself could not be pickled: {why}; see the remote traceback)"
            )
        return cls(exc, tb)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteError, (self.exc, self.tb))

    def rebuild(self) -> BaseException:
        """Return the exception with the worker's traceback as ``__cause__``."""
        from .._core._errors import RemoteTraceback

        self.exc.__cause__ = RemoteTraceback(self.tb)
        return self.exc


def send_frame(conn: Connection, kind: int, ident: int, packed: Packed | None = None) -> None:
    """Send one message; *packed* is what :func:`dumps` returned (or None for none).

    The framing is ``Connection.send_bytes``' (a length prefix per frame),
    but the whole message, header frame and buffer frames, goes out in one
    ``writev``: no concatenation copies, and one system call where
    ``send_bytes`` makes two or three per frame.
    """
    fd = conn.fileno()
    if packed is None:
        _write_parts(fd, [_LEN.pack(_HEAD.size) + _HEAD.pack(kind, ident, 0)])
        return
    data, buffers = packed
    raws = [b.raw() for b in buffers]
    head = _HEAD.pack(kind, ident, len(raws))
    if raws:
        head += b"".join(_BUF.pack(r.nbytes, r.readonly) for r in raws)
    parts: list[Any] = [_prefix(len(head) + len(data)) + head, data]
    for r in raws:
        parts.append(_prefix(r.nbytes))
        parts.append(r)
    _write_parts(fd, parts)


def _prefix(n: int) -> bytes:
    # Connection's framing: a signed 32-bit length, or -1 and a 64-bit one.
    return _LEN.pack(n) if n <= 0x7FFFFFFF else _LEN.pack(-1) + _LEN64.pack(n)


def _write_parts(fd: int, parts: list[Any]) -> None:
    """Write every byte of *parts*, resuming after a short write (a signal, a full socket)."""
    left = sum(len(p) for p in parts)
    while True:
        n = os.writev(fd, parts)
        left -= n
        if not left:
            return
        while n >= len(parts[0]):
            n -= len(parts.pop(0))
        parts[0] = memoryview(parts[0])[n:]


#: Frames at least this big are read with one ``recv(MSG_WAITALL)``.
BIG_FRAME = 32 * 1024


def _read_exactly(fd: int, view: memoryview) -> None:
    while view.nbytes:
        n = os.readv(fd, [view])
        if n == 0:
            raise EOFError("the other end closed the pipe mid-message")
        view = view[n:]


def _read_small(fd: int, n: int) -> bytes:
    data = os.read(fd, n)
    if len(data) == n:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = os.read(fd, n - got)
        if not more:
            raise EOFError("the other end closed the pipe mid-message")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_length(fd: int) -> int:
    """Read the length prefix that ``Connection.send_bytes`` writes."""
    n: int = _LEN.unpack(_read_small(fd, 4))[0]
    if n == -1:  # Connection's framing for messages over 2 GiB
        n = _LEN64.unpack(_read_small(fd, 8))[0]
    return n


def _socket(fd: int) -> socket.socket | None:
    """A socket object over *fd* (not owning it: ``detach()`` it), or None for a plain pipe."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    if socket.getdefaulttimeout() is not None:
        sock.setblocking(True)  # the constructor made the fd non-blocking; the pipe needs it blocking
    return sock


def _read_big(fd: int, n: int, writable: bool) -> bytes | bytearray:
    """Read *n* bytes with as few copies and system calls as possible.

    ``Connection.recv_bytes`` reads in socket-buffer-sized pieces into a
    BytesIO and copies the lot out again: for 1 MiB that is several times the
    cost of the transfer itself (every copy lands on freshly faulted pages).
    ``recv(n, MSG_WAITALL)`` lets the kernel copy straight into the one
    object we return, and wakes us once, when all of it has arrived.
    """
    sock = _socket(fd)
    if sock is None:  # pragma: no cover - Linux pools always use socketpairs
        buf = bytearray(n)
        _read_exactly(fd, memoryview(buf))
        return buf if writable else bytes(buf)
    try:
        if writable:
            buf = bytearray(n)
            view = memoryview(buf)
            while view.nbytes:
                got = sock.recv_into(view, view.nbytes, socket.MSG_WAITALL)
                if got == 0:
                    raise EOFError("the other end closed the pipe mid-message")
                view = view[got:]
            return buf
        data = sock.recv(n, socket.MSG_WAITALL)
        if len(data) == n:
            return data
        # Cut short (a signal, or the peer died): collect the rest.
        parts = [data]
        got = len(data)
        while got < n:
            more = sock.recv(n - got, socket.MSG_WAITALL)
            if not more:
                raise EOFError("the other end closed the pipe mid-message")
            parts.append(more)
            got += len(more)
        return b"".join(parts)
    finally:
        sock.detach()


def _recv_message(fd: int) -> bytes:
    n = _read_length(fd)
    if n < BIG_FRAME:
        return _read_small(fd, n) if n else b""
    return bytes(_read_big(fd, n, writable=False))


def _recv_buffer(fd: int, size: int, readonly: int) -> bytes | bytearray:
    """Read one out-of-band buffer: ``bytes`` if it was read-only, else a ``bytearray``.

    A writable one (a numpy array's) stays writable on this side too.
    """
    n = _read_length(fd)
    if n != size:
        raise OSError(f"pickle buffer frame has {n} bytes, expected {size}")
    if n < BIG_FRAME:
        data = _read_small(fd, n) if n else b""
        return data if readonly else bytearray(data)
    return _read_big(fd, n, writable=not readonly)


def recv_frame(conn: Connection) -> tuple[int, int, memoryview, list[Any]]:
    """Receive one message: ``(kind, ident, pickle data, buffers)``.

    Reads the pipe directly (same framing as ``Connection.send_bytes``); see
    :func:`_read_big` for why.
    """
    fd = conn.fileno()
    frame = _recv_message(fd)
    kind, ident, nbuf = _HEAD.unpack_from(frame)
    off = _HEAD.size
    buffers: list[Any] = []
    if nbuf:
        sizes = []
        for _ in range(nbuf):
            sizes.append(_BUF.unpack_from(frame, off))
            off += _BUF.size
        for size, readonly in sizes:
            buffers.append(_recv_buffer(fd, size, readonly))
    return kind, ident, memoryview(frame)[off:], buffers
