"""Reading a blocked loop thread's stack: which frames are the user's, and why it blocks.

The watchdog hands this module the loop thread's innermost frame while that
thread is still blocked.  Three steps turn it into something a person can act
on::

    frame (innermost) ──► capture()  ── raw frames inside the callback, outermost first,
                                        each tagged user / library, and the call each
                                        frame is making (from co_positions + source)
                      ──► match()    ── the first rule that fits → a BlockingHint
                      ──► fold()     ── runs of library frames folded into one line

What a frame is *calling* matters as much as where it is: ``time.sleep`` and
``socket.recv`` are C functions and have no frame of their own, so the
innermost Python frame is the user's line ``time.sleep(0.3)``.  We recover the
call from the instruction the frame is stopped at (``f_lasti``): its source
span (``co_positions``) is the call expression, which ``ast`` parses into a
dotted name.  A name rooted in a module global is resolved through the
``__dict__`` of modules only (so no user code runs), so ``from time import sleep;
sleep(1)`` is still ``time.sleep``.

Everything here runs on the watchdog's thread while the loop thread runs on:
it reads frames (safe under the GIL), never calls into objects other than
modules, and never raises.

Rules, most specific first (a ``requests.get`` blocked in ``socket.recv`` is
an HTTP problem, not a socket one): http · db · subprocess · sleep · socket ·
file · wait.  When none fits, the loop thread's CPU use decides: busy → CPU
bound, idle → an unknown blocking call.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import linecache
import os
import sysconfig
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["BlockingHint", "RawFrame", "StackFrame", "call_site", "capture", "fold", "match"]

# -- frames -------------------------------------------------------------------------------


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    # trilane's own frames are library frames too, wherever it is installed.
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return tuple(sorted(os.path.join(os.path.realpath(d), "") for d in dirs))


_LIBRARY_DIRS: Final = _library_dirs()
_MAX_DEPTH: Final = 256


def is_library(filename: str) -> bool:
    """Return whether *filename* belongs to the stdlib, an installed package, or trilane."""
    if filename.startswith("<"):  # <frozen runpy>, <string>: not code the user can edit
        return not filename.startswith("<stdin>")
    return filename.startswith(_LIBRARY_DIRS)


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame as the watchdog captured it, with the call it is making.

    ``module`` is the frame's ``__name__``; ``call`` the dotted name of the
    call the frame is stopped in, as written (``"time.sleep"``, ``"sock.recv"``,
    ``"?.read"`` when rooted in an expression, ``""`` when the frame is not
    in a call); ``target`` the resolved ``module.qualname`` of that
    callable when it could be resolved safely.
    """

    filename: str
    lineno: int
    function: str
    module: str
    library: bool
    call: str
    target: str

    @property
    def attr(self) -> str:
        """The last part of :attr:`call` (``"recv"`` for ``sock.recv``)."""
        return self.call.rpartition(".")[2]


@dataclass(frozen=True, slots=True)
class StackFrame:
    """One line of a blocking report's stack.

    User frames appear as they are.  A run of library frames between user
    frames is *folded* into one entry: ``folded`` is how many frames it stands
    for and ``package`` lists their top-level packages (``"asyncio, runpy"``).
    """

    filename: str
    lineno: int
    function: str
    package: str = ""
    folded: int = 0
    line: str = ""

    @property
    def is_user(self) -> bool:
        """True for a frame of the user's own code."""
        return not self.package

    def __str__(self) -> str:
        if self.folded:
            return f"  ... {self.folded} library frame{'s' if self.folded > 1 else ''} ({self.package})"
        where = f'  File "{self.filename}", line {self.lineno}, in {self.function}'
        return f"{where}\n    {self.line}" if self.line else where


def _call_text(code: types.CodeType, lasti: int) -> str:
    """Return the source of the expression the instruction at *lasti* belongs to ('' if unknown)."""
    if lasti < 0:
        return ""
    try:
        pos = next(itertools.islice(code.co_positions(), lasti // 2, None), None)
    except (ValueError, TypeError):
        return ""
    if pos is None or None in pos:
        return ""
    first, last, col, end_col = pos
    assert first is not None and last is not None and col is not None and end_col is not None
    if last - first > 20:
        return ""
    lines = [linecache.getline(code.co_filename, n).encode() for n in range(first, last + 1)]
    if not lines or not all(lines):
        return ""
    # Columns are UTF-8 byte offsets.
    raw = b"".join(lines)[col : len(b"".join(lines[:-1])) + end_col]
    return raw.decode(errors="replace")


def _dotted(node: ast.expr) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "?")
    return parts[::-1]


_PLAIN_CALLABLES: Final = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


def _callee(code: types.CodeType, lasti: int, globals_: dict[str, Any]) -> tuple[str, str]:
    """Return (dotted call as written, resolved ``module.qualname`` or '') for the frame's current call."""
    text = _call_text(code, lasti).strip()
    if not text or "(" not in text:
        return "", ""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return "", ""
    if not isinstance(tree.body, ast.Call):
        return "", ""
    parts = _dotted(tree.body.func)
    root = parts[0]
    local = root in code.co_varnames or root in code.co_cellvars or root in code.co_freevars
    if root == "?" or local:
        return ".".join(parts), ""
    obj: Any = globals_.get(root, getattr(builtins, root, None))
    for part in parts[1:]:
        # Only walk through modules, and only through their __dict__: a module-level
        # __getattr__ could run code (even an import) on the watchdog's thread.
        if not isinstance(obj, types.ModuleType):
            return ".".join(parts), ""
        obj = vars(obj).get(part)
    if not isinstance(obj, _PLAIN_CALLABLES):
        return ".".join(parts), ""  # an instance: its attributes could run code
    module = getattr(obj, "__module__", None) or getattr(getattr(obj, "__self__", None), "__name__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return ".".join(parts), f"{module}.{qualname}"
    return ".".join(parts), ""


def capture(frame: types.FrameType | None, stop: Iterable[types.CodeType] = ()) -> list[RawFrame]:
    """Return the frames from *frame* outwards up to (not including) one running a code in *stop*.

    The result is outermost first.  Only the innermost frame's globals are
    consulted to resolve calls; reading frames of a running thread is safe
    under the GIL and the values we read are copied at once.
    """
    stops = set(stop)
    raw: list[tuple[types.CodeType, int, int, str, dict[str, Any]]] = []
    while frame is not None and len(raw) < _MAX_DEPTH:
        code = frame.f_code
        if code in stops:
            break
        globals_ = frame.f_globals
        raw.append(
            (code, frame.f_lasti, frame.f_lineno or code.co_firstlineno, str(globals_.get("__name__")), globals_)
        )
        frame = frame.f_back
    out: list[RawFrame] = []
    for code, lasti, lineno, module, globals_ in reversed(raw):
        call, target = _callee(code, lasti, globals_)
        out.append(RawFrame(code.co_filename, lineno, code.co_name, module, is_library(code.co_filename), call, target))
    return out


def call_site(frames: Sequence[RawFrame]) -> RawFrame | None:
    """Return the innermost user frame (the line to fix), or the innermost frame if none is the user's."""
    for f in reversed(frames):
        if not f.library:
            return f
    return frames[-1] if frames else None


def _package(module: str) -> str:
    return module.split(".", maxsplit=1)[0] if module else "?"


def fold(frames: Sequence[RawFrame]) -> tuple[StackFrame, ...]:
    """Fold runs of library frames: one entry each, except the innermost run keeps its ends.

    The innermost run is where the thread is actually waiting (``socket.py``
    under ``requests``), so its first frame (where user code entered the
    library) and its last frame stay visible.
    """
    out: list[StackFrame] = []
    groups = [(lib, list(g)) for lib, g in itertools.groupby(frames, key=lambda f: f.library)]
    for i, (lib, group) in enumerate(groups):
        if not lib:
            out.extend(_shown(f) for f in group)
            continue
        packages = ", ".join(dict.fromkeys(_package(f.module) for f in group))
        innermost = i == len(groups) - 1
        if innermost and len(group) <= 2:
            out.extend(_shown(f, _package(f.module)) for f in group)
        elif innermost:
            out.append(_shown(group[0], _package(group[0].module)))
            middle = ", ".join(dict.fromkeys(_package(f.module) for f in group[1:-1]))
            out.append(StackFrame(group[1].filename, group[1].lineno, group[1].function, middle, len(group) - 2))
            out.append(_shown(group[-1], _package(group[-1].module)))
        else:
            out.append(StackFrame(group[0].filename, group[0].lineno, group[0].function, packages, len(group)))
    return tuple(out)


def _shown(f: RawFrame, package: str = "") -> StackFrame:
    return StackFrame(f.filename, f.lineno, f.function, package, 0, linecache.getline(f.filename, f.lineno).strip())


# -- hints -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockingHint:
    """Why the loop is blocked and how to fix it.

    ``kind`` is one of ``"http"``, ``"db"``, ``"subprocess"``, ``"sleep"``,
    ``"socket"``, ``"file"``, ``"wait"``, ``"cpu"`` or ``"unknown"``;
    ``cause`` says what was seen and ``fix`` what to write instead.
    """

    kind: str
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}: {self.fix}"


_HTTP_MODULES: Final = ("requests", "urllib3", "urllib.request", "http.client", "httplib2", "pycurl")
_DB_MODULES: Final = ("sqlite3", "psycopg2", "psycopg", "pymysql", "MySQLdb", "cx_Oracle", "oracledb", "pyodbc")
_DB_CALLS: Final = frozenset(
    {"execute", "executemany", "executescript", "fetchone", "fetchall", "fetchmany", "commit", "rollback"}
)
_SUBPROCESS_TARGETS: Final = frozenset({"posix.system", "posix.waitpid", "posix.wait", "os.popen", "os.system"})
_SLEEP_TARGETS: Final = frozenset({"time.sleep"})
_SOCKET_MODULES: Final = ("socket", "ssl", "selectors", "select")
_SOCKET_CALLS: Final = frozenset(
    {"recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "send", "sendall", "sendto", "accept", "connect"}
)
_SOCKET_TARGETS: Final = frozenset(
    {"_socket.getaddrinfo", "_socket.gethostbyname", "select.select", "select.poll", "socket.create_connection"}
)
_FILE_CALLS: Final = frozenset({"read", "readline", "readlines", "readinto", "read_text", "read_bytes", "readall"})
_FILE_MODULES: Final = ("shutil", "pathlib", "gzip", "bz2", "lzma", "zipfile", "tarfile", "_pyio")
_WAIT_MODULES: Final = ("threading", "queue", "concurrent.futures", "multiprocessing")
_WAIT_CALLS: Final = frozenset({"acquire", "wait", "join", "result"})
_IDLE_CPU: Final = 0.15


def _in(module: str, prefixes: Sequence[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _outermost(frames: Sequence[RawFrame], prefixes: Sequence[str]) -> RawFrame | None:
    for f in frames:
        if _in(f.module, prefixes):
            return f
    return None


def _entry_call(frames: Sequence[RawFrame]) -> str:
    """The call the innermost user frame makes (``requests.get``), for the messages."""
    site = call_site(frames)
    return site.call.replace("?.", "") if site is not None and site.call else ""


def match(frames: Sequence[RawFrame], cpu: float | None = None) -> BlockingHint:
    """Return the hint for a loop thread blocked in *frames* (outermost first).

    *cpu* is the share of wall time the loop thread spent on a CPU while it
    was blocked (``None`` if unknown); it tells a busy loop from one waiting
    in a call no rule knows.  When no I/O rule fits, the hint is "CPU-bound"
    unless the thread is inside a call and was idle (under 15% CPU).
    """
    inner = frames[-1] if frames else None
    calls = [(f.call, f.target, f.attr) for f in frames[-1:]]
    entry = _entry_call(frames)
    shown = f"{entry}()" if entry else "this call"

    http = _outermost(frames, _HTTP_MODULES)
    if http is not None:
        lib = "requests" if _in(http.module, ("requests",)) else http.module
        return BlockingHint(
            "http",
            f"synchronous HTTP ({lib}) blocks the loop in {shown}",
            "use an async client (aiohttp, or httpx.AsyncClient), "
            f"or run it in a thread: `await trilane.to_thread({entry or lib + '.get'}, ...)`",
        )
    db = _outermost(frames, _DB_MODULES)
    if db is not None or any(attr in _DB_CALLS for _, _, attr in calls):
        lib = _package(db.module) if db is not None else "DB-API"
        return BlockingHint(
            "db",
            f"a database call ({lib}) blocks the loop in {shown}",
            "run it in a thread: `await trilane.to_thread(cursor.execute, ...)`, "
            "or use an async driver (aiosqlite, asyncpg, aiomysql)",
        )
    if _outermost(frames, ("subprocess",)) is not None or any(t in _SUBPROCESS_TARGETS for _, t, _ in calls):
        return BlockingHint(
            "subprocess",
            f"waiting for a child process blocks the loop in {shown}",
            "use `await asyncio.create_subprocess_exec(...)` and `await proc.communicate()`, "
            "or `await trilane.to_thread(subprocess.run, ...)`",
        )
    # A ``sleep`` we could not resolve (a local name) is time.sleep far more often than not.
    if any(t in _SLEEP_TARGETS or c == "time.sleep" or (not t and a == "sleep") for c, t, a in calls):
        return BlockingHint("sleep", "time.sleep() blocks the loop", "use `await asyncio.sleep(...)` instead")
    sock = _outermost(frames, _SOCKET_MODULES)
    if (
        sock is not None
        or any(t in _SOCKET_TARGETS for _, t, _ in calls)
        or any(a in _SOCKET_CALLS for _, _, a in calls)
    ):
        return BlockingHint(
            "socket",
            f"a blocking socket call blocks the loop in {shown}",
            "use asyncio streams (`await asyncio.open_connection(...)`) or `await loop.sock_recv(...)`/"
            "`sock_sendall`, or `await trilane.to_thread(...)`",
        )
    if _outermost(frames, _FILE_MODULES) is not None or any(a in _FILE_CALLS for _, _, a in calls):
        return BlockingHint(
            "file",
            f"reading a file blocks the loop in {shown}",
            "read it in a thread: `await trilane.to_thread(path.read_bytes)` (or read in chunks with to_thread)",
        )
    # A thread blocked in a call uses next to no CPU; a busy one gets well above this even
    # on a loaded machine.  A frame in threading/queue alone is not a wait: Event.is_set()
    # polled in a busy loop is CPU work.
    idle = cpu is not None and cpu < _IDLE_CPU
    if any(a in _WAIT_CALLS for _, _, a in calls) or (idle and _outermost(frames, _WAIT_MODULES) is not None):
        return BlockingHint(
            "wait",
            f"waiting on a thread, lock, queue or future blocks the loop in {shown}",
            "await it instead: `await asyncio.wrap_future(fut)`, asyncio.Lock/Queue, or `await trilane.to_thread(...)`",
        )
    # An innermost frame that is not in a call is executing Python bytecode: CPU work.
    if inner is None or not inner.call or not idle:
        where = f" in {inner.function}()" if inner is not None else ""
        return BlockingHint(
            "cpu",
            f"CPU-bound: pure Python work{where} holds the loop",
            "use `await trilane.to_process(fn, ...)` (or trilane.to_thread if it releases the GIL), "
            "or split it and `await asyncio.sleep(0)` between parts",
        )
    return BlockingHint(
        "unknown",
        f"a blocking call ({shown}) holds the loop while using little CPU",
        "run it in a thread: `await trilane.to_thread(...)`, or use an async library for it",
    )
