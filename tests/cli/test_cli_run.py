"""`trilane run` through the installed console script: inputs, records, exit codes, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import calls, cli_env, records, trilane_command, write_lines


def test_jsonl_file_to_output_file(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", [str(i) for i in range(1, 11)])
    done = trilane("run", "usermod:double", "nums.jsonl", "-o", "out.jsonl", "--backend", "thread", "-c", "4")
    assert done.returncode == 0, done.stderr
    out = records((workdir / "out.jsonl").read_text())
    assert [r["key"] for r in out] == list(range(1, 11))
    assert [r["result"] for r in out] == [2 * i for i in range(1, 11)]
    assert all(r["attempts"] == 1 and r["seconds"] >= 0 and "error" not in r for r in out)
    assert set(out[0]) == {"key", "input", "result", "attempts", "seconds"}
    # the summary: counts, rate, and the backend with its reason
    assert "done 10" in done.stderr and "failed 0" in done.stderr and "items/s" in done.stderr
    assert "backend:" in done.stderr and "thread" in done.stderr


def test_csv_rows_are_dicts(trilane, workdir: Path) -> None:
    (workdir / "rows.csv").write_text("a,b\n1,2\n3,4\n10,20\n")
    done = trilane("run", "usermod:score", "rows.csv", "--backend", "serial")
    assert done.returncode == 0, done.stderr
    out = records(done.stdout)
    assert [r["input"] for r in out] == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}, {"a": "10", "b": "20"}]
    assert [r["result"] for r in out] == [3, 7, 30]
    assert [r["key"] for r in out] == [1, 2, 3]


def test_plain_lines_from_stdin(trilane) -> None:
    done = trilane("run", "usermod:upper", "--backend", "thread", input="alpha\nbeta\n\ngamma\n")
    assert done.returncode == 0, done.stderr
    out = records(done.stdout)
    assert [(r["key"], r["input"], r["result"]) for r in out] == [
        (1, "alpha", "ALPHA"),
        (2, "beta", "BETA"),
        (4, "gamma", "GAMMA"),  # the blank line is skipped, keys stay line numbers
    ]


def test_jsonl_from_stdin_dash_and_key_field_with_async_function(trilane) -> None:
    lines = "".join(f'{{"id": "u{i}", "v": {i}}}\n' for i in range(5))
    done = trilane("run", "usermod:ashout", "-", "--key", "id", "--format", "lines", input="x\ny\n")
    assert done.returncode == 2  # --key needs dict items: plain lines have none
    assert "<stdin>:1" in done.stderr
    done = trilane("run", "usermod:double", "-", "--key", "id", "--backend", "serial", input=lines)
    assert done.returncode == 1  # dict * 2 is a TypeError for every item
    out = records(done.stdout)
    assert [r["key"] for r in out] == [f"u{i}" for i in range(5)]
    assert {r["error"]["type"] for r in out} == {"TypeError"}
    done = trilane("run", "usermod:ashout", "--unordered", "-c", "3", input="x\ny\nz\n")
    assert done.returncode == 0, done.stderr
    assert sorted(r["result"] for r in records(done.stdout)) == ["X!", "Y!", "Z!"]
    assert "async" in done.stderr


def test_failures_give_exit_1_with_error_records_and_retries(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", [str(i) for i in range(1, 8)])
    done = trilane("run", "usermod:fail_threes", "nums.jsonl", "--retries", "2", "--backend", "thread")
    assert done.returncode == 1
    out = {r["key"]: r for r in records(done.stdout)}
    assert set(out) == set(range(1, 8))
    for k in (3, 6):
        assert out[k]["error"] == {"type": "ValueError", "message": f"{k} is a multiple of 3"}
        assert out[k]["attempts"] == 3
        assert "result" not in out[k]
    assert out[1]["result"] == 1 and out[1]["attempts"] == 1
    assert "failed 2" in done.stderr and "retried 2" in done.stderr
    assert Counter(calls(workdir))["3"] == 3


def test_errors_raise_stops_at_the_first_failure(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", [str(i) for i in range(1, 50)])
    done = trilane("run", "usermod:fail_threes", "nums.jsonl", "--errors", "raise", "--backend", "serial")
    assert done.returncode == 1
    out = records(done.stdout)
    assert out[-1]["key"] == 3 and out[-1]["error"]["type"] == "ValueError"
    assert len(out) == 3
    assert "first failure" in done.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        ("usermod:no_such_function", "has no attribute 'no_such_function'"),
        ("usermod", "is not MODULE:FUNCTION"),
        ("usermod:NOT_CALLABLE", "not a function"),
        ("./missing.py:fn", "no such file"),
    ],
)
def test_bad_module_path_is_a_usage_error(trilane, workdir: Path, target: str, message: str) -> None:
    write_lines(workdir / "nums.jsonl", ["1"])
    done = trilane("run", target, "nums.jsonl")
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_module_given_as_a_file_path(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", ["1", "2"])
    done = trilane("run", "./usermod.py:double", "nums.jsonl", "--backend", "process", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert [r["result"] for r in records(done.stdout)] == [2, 4]


def test_argument_errors_exit_2(trilane) -> None:
    assert trilane("run", "usermod:double", "--retries", "-1").returncode == 2
    assert trilane("run", "usermod:double", "--backend", "nonsense", input="1\n").returncode == 2
    assert trilane("run").returncode == 2
    assert trilane("run", "usermod:double", "does-not-exist.jsonl").returncode == 2
    assert trilane("run", "usermod:double", "--resume", input="1\n").returncode == 2  # no checkpoint to resume


def test_bad_json_line_in_a_file_names_file_and_line_and_runs_nothing(trilane, workdir: Path) -> None:
    write_lines(workdir / "items.jsonl", ["1", "2", "3", "{not json", "5"])
    done = trilane("run", "usermod:double", "items.jsonl", "-o", "out.jsonl")
    assert done.returncode == 2
    assert "items.jsonl:4" in done.stderr and "not valid JSON" in done.stderr
    assert calls(workdir) == []  # found before anything ran


def test_bad_json_line_on_stdin_then_resume_runs_each_item_once(trilane, workdir: Path) -> None:
    good = [str(i) for i in range(1, 6)]
    bad_input = "".join(x + "\n" for x in [*good, "[1, 2", "7", "8"])
    base = ("run", "usermod:double", "-o", "out.jsonl", "--backend", "serial", "--format", "jsonl")
    done = trilane(*base, input=bad_input)
    assert done.returncode == 2
    assert "<stdin>:6" in done.stderr and "--resume" in done.stderr
    first = records((workdir / "out.jsonl").read_text())
    assert [r["key"] for r in first] == [1, 2, 3, 4, 5]
    fixed = "".join(x + "\n" for x in [*good, "6", "7", "8"])
    done = trilane(*base, "--resume", input=fixed)
    assert done.returncode == 0, done.stderr
    out = records((workdir / "out.jsonl").read_text())
    assert sorted(r["key"] for r in out) == list(range(1, 9))
    assert [r["result"] for r in sorted(out, key=lambda r: r["key"])] == [2 * i for i in range(1, 9)]
    assert Counter(calls(workdir)) == Counter(str(i) for i in range(1, 9))  # nothing ran twice
    assert "skipped 5" in done.stderr


def test_separate_checkpoint_restores_a_lost_output_without_rerunning(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", [str(i) for i in range(1, 6)])
    done = trilane("run", "usermod:double", "nums.jsonl", "-o", "a.jsonl", "--checkpoint", "ck.jsonl")
    assert done.returncode == 0, done.stderr
    again = trilane("run", "usermod:double", "nums.jsonl", "-o", "a.jsonl", "--checkpoint", "ck.jsonl")
    assert again.returncode == 2 and "--resume" in again.stderr  # would overwrite the checkpoint
    (workdir / "a.jsonl").unlink()
    done = trilane("run", "usermod:double", "nums.jsonl", "-o", "a.jsonl", "--checkpoint", "ck.jsonl", "--resume")
    assert done.returncode == 0, done.stderr
    assert sorted(r["key"] for r in records((workdir / "a.jsonl").read_text())) == [1, 2, 3, 4, 5]
    assert len(calls(workdir)) == 5  # the resumed run called nothing


@pytest.mark.slow
def test_resume_after_sigint_completes_the_output_without_duplicates(workdir: Path) -> None:
    n = 60
    write_lines(workdir / "items.jsonl", [str(i) for i in range(1, n + 1)])
    out = workdir / "out.jsonl"
    command = [*trilane_command(), "run", "usermod:slow", "items.jsonl", "-o", str(out), "--backend", "thread"]
    proc = subprocess.Popen(
        [*command, "--workers", "2"],
        cwd=workdir,
        env=cli_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 5:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    first = records(out.read_text())
    assert 5 <= len(first) < n  # interrupted part-way
    checkpoint = workdir / "out.jsonl.checkpoint"
    finished = {json.loads(line)["k"] for line in checkpoint.read_text().splitlines()}
    assert {r["key"] for r in first} <= finished  # everything written out is in the checkpoint
    done = subprocess.run(
        [*command, "--workers", "4", "--resume"],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    keys = [r["key"] for r in records(out.read_text())]
    assert sorted(keys) == list(range(1, n + 1))  # complete, and no duplicates
    counted = Counter(calls(workdir))
    assert all(counted[str(k)] == 1 for k in finished)  # what finished before Ctrl-C never ran again
    # only items still running at Ctrl-C (at most one per worker thread) can have been called twice
    assert sum(counted.values()) <= n + 2


def test_python_dash_m_is_the_same_command(workdir: Path) -> None:
    env = cli_env(workdir)
    via_m = subprocess.run(
        [sys.executable, "-m", "trilane", "--version"], capture_output=True, text=True, env=env, check=False
    )
    via_script = subprocess.run([*trilane_command(), "--version"], capture_output=True, text=True, env=env, check=False)
    assert via_m.returncode == via_script.returncode == 0
    assert via_m.stdout == via_script.stdout and via_m.stdout.startswith("trilane ")


@pytest.mark.parametrize("command", ["run", "demo", "bench"])
def test_every_subcommand_has_help_with_examples(trilane, command: str) -> None:
    done = trilane(command, "--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and f"trilane {command}" in done.stdout


def test_no_subcommand_prints_help_and_exits_2(trilane) -> None:
    done = trilane()
    assert done.returncode == 2
    for command in ("run", "demo", "bench"):
        assert command in done.stdout


def test_sigint_exit_code_is_130_even_without_a_checkpoint(workdir: Path) -> None:
    proc = subprocess.Popen(
        [*trilane_command(), "run", "usermod:slow", "--backend", "serial"],
        cwd=workdir,
        env=cli_env(workdir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("1\n2\n")
        proc.stdin.flush()
        proc.stdout.readline()  # the first record is out: the run is under way, waiting for more input
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "no checkpoint was kept" in stderr


def test_resume_tries_failed_items_again_and_keeps_one_record_per_key(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", [str(i) for i in range(1, 8)])
    base = ("run", "usermod:fail_threes", "nums.jsonl", "-o", "out.jsonl", "--backend", "serial")
    assert trilane(*base).returncode == 1
    done = trilane(*base, "--resume")
    assert done.returncode == 1  # they fail again
    out = records((workdir / "out.jsonl").read_text())
    assert sorted(r["key"] for r in out) == list(range(1, 8))
    assert {r["key"] for r in out if "error" in r} == {3, 6}
    counted = Counter(calls(workdir))
    assert counted["3"] == counted["6"] == 2 and counted["1"] == counted["7"] == 1
    assert "skipped 5" in done.stderr


def test_timeout_retries_and_rate_flags_reach_the_map(trilane, workdir: Path) -> None:
    write_lines(workdir / "nums.jsonl", ["1", "2"])
    done = trilane(
        "run", "usermod:slow", "nums.jsonl", "--backend", "thread", "--timeout", "0.01", "--retries", "1",
        "--rate", "1000", "--workers", "2",
    )  # fmt: skip
    assert done.returncode == 1
    out = records(done.stdout)
    assert [r["key"] for r in out] == [1, 2]
    for r in out:
        assert r["attempts"] == 2
        assert "TimeoutError" in r["error"]["type"] or "Timeout" in r["error"]["type"]


def test_a_module_that_fails_to_import_is_a_usage_error(trilane, workdir: Path) -> None:
    (workdir / "broken.py").write_text("def f(x):\n    return x +\n")
    done = trilane("run", "broken:f", input="1\n")
    assert done.returncode == 2
    assert "importing module 'broken' raised SyntaxError" in done.stderr


def test_results_json_cannot_encode_are_written_as_repr(trilane, workdir: Path) -> None:
    (workdir / "odd.py").write_text("def as_set(x):\n    return {x}\n")
    done = trilane("run", "odd:as_set", "--backend", "serial", input="a\n")
    assert done.returncode == 0, done.stderr
    assert records(done.stdout)[0]["result"] == "{'a'}"
