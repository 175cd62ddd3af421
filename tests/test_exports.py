"""Every public name is exported from trilane exactly once and is documented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import trilane


def _public_names() -> list[str]:
    return [n for n in dir(trilane) if not n.startswith("_")]


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in _public_names():
        obj = getattr(trilane, name)
        if inspect.ismodule(obj):
            continue
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
    assert missing == []


def test_every_public_name_is_exported_once() -> None:
    tree = ast.parse(Path(trilane.__file__).read_text())
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("_"):
            exported += [alias.asname or alias.name for alias in node.names]
    duplicates = {n for n in exported if exported.count(n) > 1}
    assert duplicates == set()
    # Every re-export uses the explicit "import X as X" form, so type checkers see it as public.
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("_"):
            for alias in node.names:
                assert alias.asname == alias.name, (
                    f"{alias.name} must be re-exported as 'import {alias.name} as {alias.name}'"
                )
    public = {n for n in _public_names() if not inspect.ismodule(getattr(trilane, n))}
    assert public - set(exported) <= {"annotations"}


def test_version_is_a_string() -> None:
    assert isinstance(trilane.__version__, str) and trilane.__version__
