"""The ``trilane`` command line.  Nothing in trilane imports this package.

Each subcommand lives in a module of its own and registers itself in
:data:`SUBCOMMANDS` through :func:`main`'s table below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> (module, one-line help).  Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("trilane._cli._run", "run MODULE:FUNCTION over every item of a JSONL/CSV/lines file"),
    "bench": ("trilane._cli._bench", "measure processes, threads and coroutines here; fill in the seed's table"),
    "demo": ("trilane._cli._demo", "the seed's story, offline against an embedded mock API (under a minute)"),
    "trace": (
        "trilane._cli._trace",
        "run a script on trilane's loop with the watchdog on, then report where it blocked",
    ),
}


def _version() -> str:
    from trilane import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``trilane`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="trilane",
        description="trilane: one runtime for processes, threads and coroutines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trilane {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sp = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trilane`` command line with *argv* (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return 2
    code: int = module.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
