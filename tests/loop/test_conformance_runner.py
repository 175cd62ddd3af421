"""The conformance runner routes test_asyncio's loops to trilane, and reads crashes as failures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "conformance" / "_child.py"

pytest.importorskip("test.test_asyncio", reason="this Python has no test suite installed")
_spec = importlib.util.spec_from_file_location("trilane_conformance_run", ROOT / "conformance" / "run.py")
assert _spec is not None and _spec.loader is not None
conformance_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conformance_run)


@pytest.mark.slow
def test_child_routes_every_real_loop_to_trilane(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    names = ["test.test_asyncio.test_futures2", "test.test_asyncio.test_buffered_proto"]
    cmd = [sys.executable, str(CHILD), "--loop", "trilane", "--out", str(out), *names]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    results = conformance_run.read_results(out)
    assert results
    assert {r["outcome"] for r in results.values()} <= {"pass", "skip"}
    routed, other = conformance_run.count_loops(out)
    assert routed >= 4
    assert other == 0


def test_a_test_that_never_finished_counts_as_crashed(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    rows = [
        {"id": "a", "outcome": "started"},
        {"id": "a", "outcome": "pass"},
        {"id": "b", "outcome": "started"},
        {"id": "c", "outcome": "started"},
        {"id": "c", "outcome": "fail", "detail": "subtest"},
        {"id": "c", "outcome": "pass"},
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{truncated")
    results = conformance_run.read_results(out)
    assert {k: v["outcome"] for k, v in results.items()} == {"a": "pass", "b": "crashed", "c": "fail"}
    assert conformance_run.summarize(results) == {"pass": 1, "fail": 2}
