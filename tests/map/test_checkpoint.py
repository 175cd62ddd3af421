"""Checkpoint files: append as items finish, resume skipping finished keys, torn lines, corruption, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import trilane
from _procs import pid_alive
from trilane._map._checkpoint import load_checkpoint

# Every test here checks that it leaves no thread, child process or fd behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


class Counting:
    def __init__(self, fn: Any = lambda x: x * 10) -> None:
        self.fn = fn
        self.calls: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.calls.append(x)
        return self.fn(x)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_item_is_appended_as_it_finishes_and_a_rerun_skips_it(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    first = Counting()
    it = trilane.map(first, range(10), backend="serial", checkpoint=ck)
    got = [next(it) for _ in range(4)]
    assert got == [0, 10, 20, 30]
    assert {rec["k"] for rec in lines(ck)} >= {0, 1, 2, 3}  # on disk before the run ends
    it.close()
    done = {rec["k"] for rec in lines(ck)}
    second = Counting()
    outs = list(trilane.map(second, range(10), backend="serial", checkpoint=ck).outcomes())
    assert [o.result for o in outs] == [x * 10 for x in range(10)]
    assert sorted(second.calls) == sorted(set(range(10)) - done)
    assert [o.resumed for o in outs] == [o.item in done for o in outs]
    assert sorted(rec["k"] for rec in lines(ck)) == list(range(10))  # each key exactly once


@pytest.mark.parametrize("ordered", [True, False])
def test_resume_yields_stored_results_in_their_place_on_a_thread_pool(tmp_path: Path, ordered: bool) -> None:
    ck = tmp_path / "run.jsonl"
    ck.write_text("".join(json.dumps({"k": k, "i": k, "r": k * 10, "a": 1, "s": 0.0}) + "\n" for k in (0, 3, 4, 9)))
    calls = Counting()
    out = list(trilane.map(calls, range(12), backend="thread", checkpoint=ck, ordered=ordered))
    expected = [x * 10 for x in range(12)]
    assert out == expected if ordered else sorted(out) == expected
    assert sorted(calls.calls) == [1, 2, 5, 6, 7, 8, 10, 11]


def test_failures_are_recorded_and_run_again_on_resume(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"

    def flaky_first_run(x: int) -> int:
        if x == 2:
            raise ValueError("not yet")
        return x

    assert list(trilane.map(flaky_first_run, range(4), backend="serial", checkpoint=ck, errors="skip")) == [0, 1, 3]
    failed = [rec for rec in lines(ck) if "e" in rec]
    assert failed == [{"k": 2, "i": 2, "e": "ValueError: not yet", "a": 1, "s": failed[0]["s"]}]
    calls = Counting(lambda x: x)
    assert list(trilane.map(calls, range(4), backend="serial", checkpoint=ck)) == [0, 1, 2, 3]
    assert calls.calls == [2]


def test_torn_last_line_is_cut_and_that_item_redone_once(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    good = "".join(json.dumps({"k": k, "i": k, "r": k * 10, "a": 1, "s": 0.0}) + "\n" for k in range(3))
    ck.write_text(good + '{"k":3,"i":3,"r"')  # the run died while writing item 3
    calls = Counting()
    assert list(trilane.map(calls, range(5), backend="serial", checkpoint=ck)) == [0, 10, 20, 30, 40]
    assert calls.calls == [3, 4]
    recs = lines(ck)  # parses: the torn bytes are gone
    assert sorted(r["k"] for r in recs) == [0, 1, 2, 3, 4]


def test_a_complete_json_line_without_its_newline_counts_as_torn(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    ck.write_text(json.dumps({"k": 0, "i": 0, "r": 0, "a": 1, "s": 0.0}) + "\n" + json.dumps({"k": 1, "r": 10}))
    assert load_checkpoint(str(ck)).keys() == {"0"}
    assert ck.read_text().count("\n") == 1 and ck.read_text().endswith("\n")


def test_corruption_before_the_last_line_is_an_error_with_the_offset(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    first = json.dumps({"k": 0, "i": 0, "r": 0, "a": 1, "s": 0.0}) + "\n"
    ck.write_text(first + "garbage here\n" + json.dumps({"k": 2, "i": 2, "r": 20}) + "\n")
    before = ck.read_bytes()
    with pytest.raises(trilane.CheckpointError, match=rf"byte offset {len(first)} \(line 2\)") as info:
        list(trilane.map(abs, range(3), backend="serial", checkpoint=ck))
    assert info.value.offset == len(first) and info.value.line == 2
    assert isinstance(info.value, ValueError)
    assert ck.read_bytes() == before  # nothing was repaired or appended


def test_keys_results_and_the_key_function(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    items = [{"id": "a", "n": 1}, {"id": "b", "n": 2}]  # dicts are not hashable: key= picks the id

    def to_set(item: dict[str, Any]) -> frozenset[int]:
        return frozenset({item["n"]})

    first = list(trilane.map(to_set, items, backend="serial", checkpoint=ck, key=lambda d: d["id"]))
    assert [rec["k"] for rec in lines(ck)] == ["a", "b"]
    assert all("p" in rec for rec in lines(ck))  # not JSON: pickled
    calls = Counting(to_set)
    again = list(trilane.map(calls, items, backend="serial", checkpoint=ck, key=lambda d: d["id"]))
    assert again == first and calls.calls == []
    # Unhashable items without key=: the index is the key.
    ck2 = tmp_path / "idx.jsonl"
    list(trilane.map(len, [[1], [1, 2]], backend="serial", checkpoint=ck2))
    assert [rec["k"] for rec in lines(ck2)] == [0, 1]


def test_a_key_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        list(trilane.map(abs, [1], backend="serial", checkpoint=tmp_path / "c.jsonl", key=lambda x: object()))


CHILD = textwrap.dedent(
    """
    import sys, time, trilane

    LOG = sys.argv[2]

    def work(x):
        time.sleep(0.005)
        with open(LOG, "a") as f:
            f.write(f"{x}\\n")
        return x * x

    if __name__ == "__main__":
        for r in trilane.map(work, range(150), backend="thread", workers=4, checkpoint=sys.argv[1]):
            print(r, flush=True)
    """
)


@pytest.mark.slow
def test_resume_after_sigkill_equals_a_clean_run_and_redoes_nothing(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ck = tmp_path / "run.jsonl"
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    child = subprocess.Popen([sys.executable, str(script), str(ck), str(log1)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while (not ck.exists() or ck.read_text().count("\n") < 30) and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    done_before = set(load_checkpoint(str(ck)))
    assert 30 <= len(done_before) < 150  # killed mid-run
    out = subprocess.run(
        [sys.executable, str(script), str(ck), str(log2)], capture_output=True, text=True, timeout=50, check=True
    )
    assert [int(v) for v in out.stdout.split()] == [x * x for x in range(150)]  # what a clean run prints
    rerun = [int(v) for v in log2.read_text().split()]
    assert not {str(x) for x in rerun} & done_before  # nothing finished before the kill ran again
    assert len(rerun) == len(set(rerun))
    keys = [rec["k"] for rec in lines(ck)]
    assert sorted(keys) == list(range(150))  # every item recorded exactly once


SIGINT_CHILD = textwrap.dedent(
    """
    import sys, time, trilane

    def work(x):
        if x >= 4:
            time.sleep(60)
        return x

    if __name__ == "__main__":
        try:
            for r in trilane.map(work, range(20), backend=sys.argv[2], workers=2, chunksize=1, checkpoint=sys.argv[1]):
                print(r, flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise
    """
)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "serial", "thread"])
def test_ctrl_c_stops_within_a_second_records_finished_items_and_leaves_no_worker(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(SIGINT_CHILD)
    ck = tmp_path / "run.jsonl"
    child = subprocess.Popen([sys.executable, str(script), str(ck), backend], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while (not ck.exists() or ck.read_text().count("\n") < 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let the workers pick up the 60 s items
    workers = _descendants(child.pid)
    assert workers or backend != "process"  # the pool's processes
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    took = time.monotonic() - sent
    assert child.returncode != 0 and "interrupted" in out
    print(f"Ctrl-C on {backend} took {took:.3f} s")
    assert took < 5.0  # (the running items would take 60 s; the issue asks for about 1 s)
    assert sorted(rec["k"] for rec in lines(ck)) == [0, 1, 2, 3]
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if pid_alive(p)]


def test_auto_after_a_long_resumed_prefix_still_chooses_and_keeps_order(tmp_path: Path) -> None:
    ck = tmp_path / "run.jsonl"
    ck.write_text("".join(json.dumps({"k": k, "i": k, "r": k * 10, "a": 1, "s": 0.0}) + "\n" for k in range(3000)))
    calls = Counting()
    it = trilane.map(calls, range(3010), checkpoint=ck)
    assert list(it) == [x * 10 for x in range(3010)]
    assert sorted(calls.calls) == list(range(3000, 3010))
    assert it.plan.backend in {"thread", "serial", "process"}
