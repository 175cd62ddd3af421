"""Run a function over every item of a file: a batch job with a progress bar and --resume.

INPUT is JSONL (one JSON value per line), CSV (one dict per row, keyed by the
header) or plain lines (one string per line); ``-`` or no INPUT reads stdin.
The format follows the file's extension (.jsonl/.ndjson/.json, .csv, other),
or, for stdin and unknown extensions, the first line ("{" or "[" means JSONL).

Each output line is a JSON record:

  {"key": 3, "input": {...}, "result": ..., "attempts": 1, "seconds": 0.051}
  {"key": 4, "input": {...}, "error": {"type": "ValueError", "message": "..."}, "attempts": 3, "seconds": 1.2}

``key`` is the item's line (CSV: row) number, or the value of ``--key FIELD``.

Checkpoint and resume: trilane.map records every finished item in the
checkpoint (``--checkpoint FILE``, or ``OUTPUT.checkpoint`` next to the ``-o``
file) as it finishes.  After Ctrl-C (exit 130) or a bad input line (exit 2),
run the same command with ``--resume``: finished items are read back, not
run again, items that failed are tried again, and the output is written in
full, so it ends up complete with no duplicates.

Exit codes: 0 all items succeeded · 1 some failed · 2 usage error (bad
MODULE:FUNCTION, bad input line: the message names file:line) · 130 interrupted.

examples:
  trilane run mypkg.checks:check_item items.jsonl -o results.jsonl
  trilane run mypkg.checks:check_item items.csv -o out.jsonl -c 100 --timeout 5 --retries 3
  cat urls.txt | trilane run fetch:get --backend thread --workers 32 > out.jsonl
  trilane run ./score.py:score big.jsonl -o out.jsonl --rate 50 --unordered
  trilane run mypkg.checks:check_item items.jsonl -o results.jsonl --resume   # after Ctrl-C
"""

from __future__ import annotations

import argparse
import csv
import importlib
import inspect
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

from rich.console import Console
from rich.markup import escape

from trilane import CheckpointError

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with the command line or the input: exit code 2."""


# -- arguments ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``trilane run``'s arguments to *parser*."""
    parser.add_argument("target", metavar="MODULE:FUNCTION", help="e.g. mypkg.checks:check_item or ./score.py:score")
    parser.add_argument("input", nargs="?", default="-", metavar="INPUT", help="input file, or - for stdin (default)")
    parser.add_argument("-o", "--output", default="-", metavar="OUTPUT", help="JSONL output file (default: stdout)")
    parser.add_argument("--format", choices=["auto", "jsonl", "csv", "lines"], default="auto", help="input format")
    parser.add_argument("--key", metavar="FIELD", help="use this field of each (dict) item as its key")
    m = parser.add_argument_group("map options (as trilane.map)")
    m.add_argument("--backend", default="auto", help="auto, serial, thread, process, async or dask (default auto)")
    m.add_argument("-c", "--concurrency", type=_positive_int, help="items in flight at once")
    m.add_argument("--workers", type=_positive_int, help="threads or processes")
    m.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="per-item time limit")
    m.add_argument("--retries", type=_non_negative_int, default=0, help="extra attempts for a failing item")
    m.add_argument("--rate", type=_positive_float, metavar="PER_SECOND", help="start at most this many items/s")
    m.add_argument("--unordered", action="store_true", help="write records as they finish, not in input order")
    m.add_argument(
        "--errors",
        choices=["collect", "raise"],
        default="collect",
        help="collect: record failures and go on (default); raise: stop at the first failure",
    )
    m.add_argument("--checkpoint", metavar="FILE", help="record finished items here (default: OUTPUT.checkpoint)")
    m.add_argument("--resume", action="store_true", help="skip items already in the checkpoint")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


# -- the function ---------------------------------------------------------------------------


def load_function(target: str) -> Callable[..., Any]:
    """Import ``MODULE:FUNCTION`` (MODULE may be a dotted name or a path to a .py file)."""
    module_name, sep, func_name = target.partition(":")
    if not sep or not module_name or not func_name:
        raise UsageError(f"{target!r} is not MODULE:FUNCTION, e.g. mypkg.checks:check_item or ./score.py:score")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        if not path.is_file():
            raise UsageError(f"cannot import {module_name!r}: no such file")
        # Import it by name from its directory, so that worker processes can import it too.
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    elif "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules in the current directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module_name!r}: {exc}. Check the name and that it is on PYTHONPATH")
    except Exception as exc:  # the module itself is broken (SyntaxError, an error at import time)
        raise UsageError(f"importing module {module_name!r} raised {type(exc).__name__}: {exc}")
    obj: Any = module
    for part in func_name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {func_name!r}")
    if not callable(obj):
        raise UsageError(f"{target!r} is a {type(obj).__name__}, not a function")
    fn: Callable[..., Any] = obj
    return fn


# -- input ----------------------------------------------------------------------------------


@dataclass
class BadLine:
    """Where the input stopped making sense."""

    where: str
    message: str


def _detect_format(name: str, first: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".txt", ".lines") or name == "<stdin>" or suffix:
        return "jsonl" if first.lstrip()[:1] in ("{", "[") else "lines"
    return "lines"


def read_items(stream: TextIO, name: str, fmt: str, key_field: str | None) -> Iterator[tuple[Any, Any] | BadLine]:
    """Yield ``(key, item)`` for each item of *stream*; yield a :class:`BadLine` and stop at a bad one.

    Items are read lazily, so stdin can be a stream that never ends.
    """
    seen: dict[str, str] = {}

    def keyed(where: str, default_key: int, item: Any) -> tuple[Any, Any] | BadLine:
        key: Any = default_key
        if key_field is not None:
            if not isinstance(item, dict) or key_field not in item:
                return BadLine(where, f"--key {key_field}: the item has no field {key_field!r}")
            key = item[key_field]
        tag = json.dumps(key, sort_keys=True, default=repr)
        if tag in seen:
            return BadLine(where, f"key {key!r} repeats {seen[tag]}; keys must be unique for --resume")
        seen[tag] = where
        return key, item

    if fmt == "csv":
        reader = csv.DictReader(stream)
        try:
            for row_number, row in enumerate(reader, 1):
                where = f"{name}:{reader.line_num}"
                if None in row or any(v is None for v in row.values()):
                    yield BadLine(where, f"row has {len(row) + len(row.get(None, [])) - 1} fields, header has "
                                         f"{len(reader.fieldnames or [])}")  # fmt: skip
                    return
                got = keyed(where, row_number, dict(row))
                yield got
                if isinstance(got, BadLine):
                    return
        except csv.Error as exc:
            yield BadLine(f"{name}:{reader.line_num}", f"not valid CSV: {exc}")
        return
    for line_number, line in enumerate(stream, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        where = f"{name}:{line_number}"
        value: Any = text
        if fmt == "jsonl":
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield BadLine(where, f"not valid JSON: {exc}")
                return
        got = keyed(where, line_number, value)
        yield got
        if isinstance(got, BadLine):
            return


# -- records --------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    return repr(obj)


def make_record(outcome: Outcome) -> dict[str, Any]:
    """Return the JSONL record of one finished item."""
    record: dict[str, Any] = {"key": outcome.key, "input": outcome.input}
    if outcome.error is None:
        record["result"] = outcome.result
    else:
        record["error"] = {"type": type(outcome.error).__name__, "message": str(outcome.error)}
    record["attempts"] = outcome.attempts
    record["seconds"] = round(outcome.seconds, 6)
    return record


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n"


# -- the run --------------------------------------------------------------------------------


@dataclass
class _Sink:
    """The output: one whole JSONL line per record, flushed as it is written."""

    output: IO[str]
    interrupted: bool = False

    def write(self, line: str) -> None:
        # Ctrl-C in the middle would leave a torn line: hold it until the line is out.
        # (Only here: while trilane.map steps, it needs Python's own handler in place
        # to turn Ctrl-C into a clean stop that records every finished item.)
        previous = signal.signal(signal.SIGINT, self._defer)
        try:
            self.output.write(line)
            self.output.flush()
        finally:
            signal.signal(signal.SIGINT, previous)
        if self.interrupted:
            raise KeyboardInterrupt

    def _defer(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True


def run(args: argparse.Namespace) -> int:
    """Run ``trilane run``; return the exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return _run(args, err)
    except (UsageError, CheckpointError) as exc:
        err.print(f"[bold red]trilane run:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except KeyboardInterrupt:  # before any item ran (while importing or checking the input)
        err.print("[bold yellow]trilane run: interrupted[/] before any item ran")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`trilane run ... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_FAILED


def _open_input(args: argparse.Namespace) -> tuple[TextIO, str, int | None, str]:
    """Open the input; for a file, check every line first and count the items."""
    if args.input == "-":
        stream: TextIO = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        name = "<stdin>"
    else:
        try:
            stream = open(args.input, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise UsageError(f"cannot read input {args.input!r}: {exc.strerror}")
        name = args.input
    fmt = args.format
    if fmt == "auto":
        if name == "<stdin>":
            first = _peek_line(stream)
        else:
            first = stream.readline()
            stream.seek(0)
        fmt = _detect_format(name, first)
    total: int | None = None
    if name != "<stdin>":
        # A bad line in a file is found before anything runs, so nothing runs twice when it is fixed.
        total = 0
        for got in read_items(stream, name, fmt, args.key):
            if isinstance(got, BadLine):
                stream.close()
                raise UsageError(f"{got.where}: {got.message}. Nothing was run; fix the line and run again")
            total += 1
        stream.seek(0)
    return stream, name, total, fmt


def _peek_line(stream: TextIO) -> str:
    # TextIOWrapper over a buffered stdin: peek without consuming.
    buffer = stream.buffer
    peek = getattr(buffer, "peek", None)
    data: bytes = peek(65536) if peek is not None else b""
    return data.split(b"\n", 1)[0].decode("utf-8", "replace")


def checkpoint_for(args: argparse.Namespace) -> tuple[Path | None, bool]:
    """Where the checkpoint goes, and whether it was chosen for the user (``OUTPUT.checkpoint``)."""
    if args.checkpoint:
        return Path(args.checkpoint), False
    if args.output != "-":
        return Path(args.output + ".checkpoint"), True
    return None, False


def _run(args: argparse.Namespace, err: Console) -> int:
    fn = load_function(args.target)
    checkpoint, implicit = checkpoint_for(args)
    if args.resume and checkpoint is None:
        raise UsageError("--resume needs a checkpoint: pass -o FILE or --checkpoint FILE, as the first run did")
    if not args.resume and checkpoint is not None and checkpoint.exists() and checkpoint.stat().st_size > 0:
        if not implicit:
            raise UsageError(
                f"checkpoint {str(checkpoint)!r} already holds finished items: "
                "pass --resume to carry on, or delete it to start again"
            )
        checkpoint.unlink()  # a fresh run over the same -o file: forget the last one
    stream, name, total, fmt = _open_input(args)
    try:
        if args.output != "-":
            # Rewritten in full on --resume too: map yields the checkpoint's items in their places.
            output: IO[str] = open(args.output, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        else:
            output = sys.stdout
        try:
            return _drive(fn, args, stream, name, fmt, total, _Sink(output), err, checkpoint)
        finally:
            if output is not sys.stdout:
                output.close()
    finally:
        stream.close()


def _drive(
    fn: Callable[..., Any],
    args: argparse.Namespace,
    stream: TextIO,
    name: str,
    fmt: str,
    total: int | None,
    sink: _Sink,
    err: Console,
    checkpoint_path: Path | None,
) -> int:
    bad: list[BadLine] = []

    def items() -> Iterator[tuple[Any, Any]]:
        # A bad line ends the input here; the map finishes what it has, and we exit 2.
        for got in read_items(stream, name, fmt, args.key):
            if isinstance(got, BadLine):
                bad.append(got)
                return
            yield got

    counts = {"done": 0, "failed": 0, "retried": 0, "resumed": 0}
    started = time.perf_counter()
    show = not args.quiet
    progress = _progress(err, show)
    task = progress.add_task(f"{args.target}", total=total)

    execution = execute(
        fn,
        items(),
        backend=args.backend,
        workers=args.workers,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
        rate=args.rate,
        ordered=not args.unordered,
        checkpoint=None if checkpoint_path is None else str(checkpoint_path),
    )
    interrupted = False
    stopped_on_error = False
    try:
        with progress:
            for outcome in execution:
                sink.write(_dumps(make_record(outcome)))
                if outcome.resumed:
                    counts["resumed"] += 1
                else:
                    counts["failed" if outcome.error is not None else "done"] += 1
                    if outcome.attempts > 1:
                        counts["retried"] += 1
                progress.advance(task)
                if outcome.error is not None and args.errors == "raise":
                    stopped_on_error = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        try:
            execution.close()
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.perf_counter() - started
    if show:
        _summary(err, counts, elapsed, execution.plan)
    if interrupted:
        where = (
            f"the checkpoint {str(checkpoint_path)!r} holds every finished item; "
            "run the same command with --resume to carry on"
            if checkpoint_path is not None
            else "no checkpoint was kept (pass -o FILE or --checkpoint FILE to be able to --resume)"
        )
        err.print(f"[bold yellow]trilane run: interrupted[/]: {escape(where)}")
        return EXIT_INTERRUPTED
    if bad:
        err.print(
            f"[bold red]trilane run:[/] {escape(bad[0].where)}: {escape(bad[0].message)}. "
            f"The {counts['done'] + counts['failed']} items before it ran and are in the checkpoint; "
            "fix the line and run the same command with --resume to carry on"
            + ("" if checkpoint_path is not None else " (that needs -o FILE or --checkpoint FILE)")
        )
        return EXIT_USAGE
    if stopped_on_error:
        err.print("[bold red]trilane run:[/] stopped at the first failure (--errors raise)")
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def _progress(err: Console, show: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show,
        transient=False,
    )


def _summary(err: Console, counts: dict[str, int], elapsed: float, plan: str) -> None:
    finished = counts["done"] + counts["failed"]
    rate = finished / elapsed if elapsed > 0 else 0.0
    parts = [
        f"done {counts['done']}",
        f"failed {counts['failed']}",
        f"retried {counts['retried']}",
        f"{rate:.1f} items/s ({elapsed:.2f} s)",
    ]
    if counts["resumed"]:
        parts.append(f"skipped {counts['resumed']} (finished before, read from the checkpoint)")
    err.print("[bold]summary:[/] " + " · ".join(parts))
    err.print(f"[bold]backend:[/] {escape(plan)}")


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions (and partials of them)."""
    return inspect.iscoroutinefunction(fn)


# -- execution: trilane.map's per-item outcomes ----------------------------------------------


@dataclass
class Outcome:
    """One finished item, as ``trilane run`` writes it."""

    key: Any
    input: Any
    result: Any = None
    error: BaseException | None = None
    attempts: int = 1
    seconds: float = 0.0
    resumed: bool = False


def _call_pair(fn: Callable[[Any], Any], pair: tuple[Any, Any]) -> Any:
    return fn(pair[1])


async def _acall_pair(fn: Callable[[Any], Any], pair: tuple[Any, Any]) -> Any:
    return await fn(pair[1])


class Execution:
    """The running map: iterate for :class:`Outcome` s; ``plan`` says which backend and why."""

    def __init__(self, outcomes: Iterator[Outcome], plan: Callable[[], str], close: Callable[[], None]) -> None:
        self._outcomes = outcomes
        self._plan = plan
        self._close = close

    def __iter__(self) -> Iterator[Outcome]:
        return self._outcomes

    @property
    def plan(self) -> str:
        """The backend chosen, and why."""
        return self._plan()

    def close(self) -> None:
        """Stop the run: cancel what has not started, wait for what is running, free the workers."""
        self._close()


def execute(
    fn: Callable[[Any], Any],
    pairs: Iterator[tuple[Any, Any]],
    *,
    backend: str,
    workers: int | None,
    concurrency: int | None,
    timeout: float | None,
    retries: int,
    rate: float | None,
    ordered: bool,
    checkpoint: str | None,
) -> Execution:
    """Run *fn* over the items of *pairs* (``(key, item)``) with ``trilane.map``; yield outcomes."""
    import functools

    import trilane

    call = functools.partial(_acall_pair if is_coroutine_function(fn) else _call_pair, fn)
    try:
        it = trilane.map(
            call,
            pairs,
            backend=backend,
            workers=workers,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            rate=rate,
            ordered=ordered,
            errors="collect",
            key=_pair_key,
            checkpoint=checkpoint,
        )
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(str(exc))
    raw = it.outcomes()

    def outcomes() -> Iterator[Outcome]:
        for o in raw:
            key, value = o.item
            yield Outcome(key, value, o.result, o.error, o.attempts, o.seconds, o.resumed)

    def plan() -> str:
        p = it.plan
        return f"{p.backend} ({p.reason})"

    def close() -> None:
        closer = getattr(raw, "close", None)
        if closer is not None:
            closer()
        closer = getattr(it, "close", None)
        if closer is not None:
            closer()

    return Execution(outcomes(), plan, close)


def _pair_key(pair: tuple[Any, Any]) -> Any:
    return pair[0]
