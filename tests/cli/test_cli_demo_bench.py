"""`trilane demo --quick` and `trilane bench --quick` run end to end; bench's rules on made-up numbers."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from trilane._cli import _bench, _bench_report
from trilane._profile import load_profile


@pytest.mark.slow
@pytest.mark.timeout(120)  # ~15 s on an idle machine; other tests may be sharing the CPUs
def test_demo_quick_tells_the_whole_story(trilane) -> None:
    done = trilane("demo", "--quick", timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # 1. count(): three coroutines in about a second
    assert out.count("One") >= 3 and out.count("Two") >= 3
    assert "three count() coroutines took 1." in out
    # 2. the risk items table: one row per way
    for row in ("serial (1 at a time)", "threads (", "processes (", "async (", "auto ("):
        assert row in out
    assert "hung on their first call" in out and "item(s) 13" in out
    assert "failed: item(s) 77" in out
    # 3. the trap is caught by the watchdog
    assert "the watchdog caught it" in out and "hint:" in out
    # 4. priority
    assert "fifo" in out and "priority" in out and "wake-up delay" in out and "bulk steps/s" in out
    assert "demo finished" in out


@pytest.mark.slow
@pytest.mark.timeout(120)  # ~12 s on an idle machine
def test_bench_quick_prints_the_table_and_writes_its_files(trilane, workdir: Path) -> None:
    done = trilane("bench", "--quick", "--out", "results", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for model in ("process", "threads", "async"):
        assert any(line.startswith(f"│ {model} ") for line in lines), f"no {model} row in:\n{done.stdout}"
    assert "when to use" in done.stdout
    out = workdir / "results"
    md = (out / "bench.md").read_text()
    for model in ("process", "threads", "async"):
        assert f"\n| {model} |" in md
    data = json.loads((out / "bench.json").read_text())
    assert [row["model"] for row in data["table"]] == ["process", "threads", "async"]
    assert all(row["when_to_use"] for row in data["table"])
    assert set(data["io_throughput"]["async"]) == {"1", "10", "100", "1000"}
    assert set(data["communication"]["process"]) == {"1 KiB", "1 MiB", "10 MiB"}
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # CI installs only the test extra: no chart, and the command says how to get one
        assert not (out / "bench.png").exists()
        assert 'pip install "trilane[plot]"' in done.stdout
    # the machine profile went where TRILANE_PROFILE points (set by the fixture)
    profile = json.loads((workdir / "profile.json").read_text())
    assert profile["process_roundtrip"] == data["roundtrip"]["process"]
    assert str(workdir / "profile.json") in done.stdout


def fake_results(**changes: Any) -> dict[str, Any]:
    """Bench results with made-up numbers, shaped as run_bench returns them."""
    results: dict[str, Any] = {
        "quick": True,
        "repeat": 1,
        "io_wait": 0.02,
        "seconds": 1.0,
        "machine": {"cpus": 4, "python": "3.11", "platform": "test", "start_method": "fork", "date": "today"},
        "switch": {"process": 10e-6, "thread": 6e-6, "async": 2e-6},
        "roundtrip": {"process": 100e-6, "thread": 20e-6},
        "communication": {
            "process": {"1 KiB": 100e-6, "1 MiB": 1e-3, "10 MiB": 10.1e-3},
            "thread": {"1 KiB": 20e-6, "1 MiB": 20e-6, "10 MiB": 20e-6},
            "async": {"1 KiB": 5e-6, "1 MiB": 5e-6, "10 MiB": 5e-6},
        },
        "startup": {"process": 5e-3, "thread": 100e-6, "async": 8e-6, "process_pool": 20e-3},
        "memory": {"process": 2 * 1024**2, "thread": 16 * 1024, "async": 1024},
        "io_throughput": {
            "process": {"1": 50, "10": 500, "100": 800, "1000": 800},
            "thread": {"1": 50, "10": 490, "100": 4500, "1000": 9000},
            "async": {"1": 50, "10": 495, "100": 4900, "1000": 45000},
            "process_workers": {"1": 1, "10": 10, "100": 16, "1000": 16},
        },
        "cpu_speedup": {"process": 3.6, "thread": 1.0, "async": 1.0, "items": 16, "item_seconds": 0.02},
    }
    for key, value in changes.items():
        results[key] = value
    return results


def test_rules_pick_processes_for_cpu_work_when_they_speed_it_up() -> None:
    use = _bench_report.when_to_use(fake_results())
    # 10x the 100 µs round trip; 10x the ~1 ms/MiB of payload
    assert "CPU-bound" in use["process"] and "1 ms" in use["process"] and "3.6×" in use["process"]
    slow = fake_results(cpu_speedup={"process": 1.05, "thread": 1.0, "async": 1.0, "items": 4, "item_seconds": 0.02})
    assert _bench_report.when_to_use(slow)["process"].startswith("isolation only")


def test_rules_put_the_thread_async_crossover_where_threads_fall_behind() -> None:
    results = fake_results()
    assert _bench_report.thread_limit(results) == 100  # 9000 < 80% of 45000 at 1000
    use = _bench_report.when_to_use(results)
    assert "up to ~100 concurrent waits" in use["threads"]
    assert "more than 100 concurrent waits" in use["async"] and "16× less than a thread" in use["async"]
    assert "not CPU-bound" in use["threads"]
    keeps_up = fake_results()
    keeps_up["io_throughput"]["thread"]["1000"] = 40000
    assert _bench_report.thread_limit(keeps_up) == 1000
    assert "at least 1000" in _bench_report.when_to_use(keeps_up)["threads"]
    free_threaded = fake_results(
        cpu_speedup={"process": 3.0, "thread": 3.5, "async": 1.0, "items": 4, "item_seconds": 0}
    )
    assert "CPU-bound work too" in _bench_report.when_to_use(free_threaded)["threads"]


def test_table_rows_and_markdown_carry_the_numbers() -> None:
    results = fake_results()
    rows = _bench_report.table_rows(results)
    assert [r[0] for r in rows] == ["process", "threads", "async"]
    assert "10.1 ms per 10 MiB" in rows[0][2] and "2 MiB private memory" in rows[0][2]
    assert "1 KiB per coroutine" in rows[2][1]
    md = _bench_report.to_markdown(results)
    assert "| model | advantages | costs | when to use |" in md
    assert "| 1000 | 800/s (16 procs) | 9,000/s | 45,000/s | 50,000/s |" in md


@pytest.mark.parametrize(("value", "text"), [(4.2e-6, "4.2 µs"), (0.0123, "12.3 ms"), (2.5, "2.50 s"), (3e-9, "3 ns")])
def test_fmt_seconds(value: float, text: str) -> None:
    assert _bench_report.fmt_seconds(value) == text


def test_without_matplotlib_bench_says_how_to_install_it_and_still_writes_md_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setenv("TRILANE_PROFILE", str(tmp_path / "profile.json"))
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setattr(_bench, "run_bench", lambda quick, step: fake_results())
    code = _bench.run(argparse.Namespace(quick=True, out=str(tmp_path / "out"), no_profile=False))
    assert code == 0
    printed = capsys.readouterr().out
    assert 'pip install "trilane[plot]"' in printed
    assert (tmp_path / "out" / "bench.md").exists() and (tmp_path / "out" / "bench.json").exists()
    assert not (tmp_path / "out" / "bench.png").exists()
    profile = load_profile()
    assert profile is not None and profile.cpus == 4 and profile.process_roundtrip == 100e-6


def test_a_busy_machine_is_flagged_and_the_process_rule_says_so() -> None:
    assert _bench_report.busy_note(fake_results()) == ""
    busy = fake_results()
    busy["machine"] = {**busy["machine"], "load_before": 9.0, "cpu_share": 0.4}
    busy["cpu_speedup"] = {**busy["cpu_speedup"], "process": 0.8}
    note = _bench_report.busy_note(busy)
    assert "busy" in note and "load average 9.0 on 4 CPUs" in note and "40%" in note
    assert "measure again when it is idle" in _bench_report.when_to_use(busy)["process"]
    assert note in _bench_report.to_markdown(busy)
