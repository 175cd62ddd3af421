"""Every public name is exported from trilane exactly once, resolves, and is documented.

``trilane/__init__.py`` lists each public name three times, on purpose: in the
``TYPE_CHECKING`` block (what type checkers and readers see), in ``_EXPORTS``
(what ``__getattr__`` imports on first use) and in ``__all__``.  These tests
keep the three equal.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import trilane


def _type_checking_imports() -> list[tuple[str, str, str | None]]:
    """(module, name, asname) of every import in the ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(Path(trilane.__file__).read_text())
    found: list[tuple[str, str, str | None]] = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                found += [("." * stmt.level + stmt.module, a.name, a.asname) for a in stmt.names]
    return found


def test_every_public_name_is_listed_once_and_alike_everywhere() -> None:
    imports = _type_checking_imports()
    names = [name for _, name, _ in imports]
    assert len(names) == len(set(names)), "a name is re-exported twice"
    # The explicit "import X as X" form, so that type checkers see each name as public.
    assert [n for _, n, asname in imports if asname != n] == []
    assert {n: m for m, n, _ in imports} == trilane._EXPORTS
    assert sorted(trilane.__all__) == sorted([*names, "__version__"])


@pytest.mark.parametrize("name", sorted(trilane._EXPORTS))
def test_each_name_resolves_to_its_module_object_and_has_a_docstring(name: str) -> None:
    module = importlib.import_module(trilane._EXPORTS[name], "trilane")
    obj = getattr(trilane, name)
    assert obj is getattr(module, name)
    assert name in dir(trilane)
    if inspect.isclass(obj) or callable(obj):
        assert (obj.__doc__ or "").strip(), f"trilane.{name} has no docstring"


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trilane.nope  # type: ignore[attr-defined]  # noqa: B018


def test_import_loads_nothing_heavy_until_used() -> None:
    # A pool worker or a plain loop user must not pay for map, the CLI or the pools.
    code = (
        "import sys, trilane; heavy = [m for m in ('trilane._map', 'trilane._pools', 'trilane._cli', 'asyncio') "
        "if m in sys.modules]; print(heavy); trilane.map; print('trilane._map' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "True"]


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from trilane import *", namespace)
    assert set(trilane._EXPORTS) <= set(namespace)


def test_version_is_a_string() -> None:
    assert isinstance(trilane.__version__, str) and trilane.__version__
