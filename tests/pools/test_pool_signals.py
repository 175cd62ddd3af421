"""Whole-process faults, each in a subprocess: Ctrl-C, SIGINT ignored, the
parent SIGKILLed, and the memory a 10M-item map uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import assert_pids_gone

pytestmark = [pytest.mark.timeout(40), pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts"


def _start(script: str, *args: str, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(SCRIPTS / script), *args]
    if ignore_sigint:
        # An ignored signal stays ignored across exec: the script starts with SIGINT ignored.
        shim = "import os, signal as s, sys; s.signal(s.SIGINT, s.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
        cmd = [sys.executable, "-c", shim, *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_pids_and_running(proc: subprocess.Popen[str]) -> set[int]:
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first and first[0] == "pids", first
    assert proc.stdout.readline().strip() == "running"
    return {int(p) for p in first[1:]}


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return out, err


def test_sigint_stops_a_map_within_a_second_and_kills_the_workers(no_leaks: None) -> None:
    proc = _start("map_forever.py", "1000", "0.5")
    pids = _read_pids_and_running(proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc, timeout=20)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert "done" not in out
    assert elapsed < 3.0  # 1 s target, generous for a shared machine: the map had ~250 s left
    assert_pids_gone(pids, within=5)


def test_sigint_ignored_at_start_leaves_the_map_running(no_leaks: None) -> None:
    proc = _start("map_forever.py", "8", "0.1", ignore_sigint=True)
    pids = _read_pids_and_running(proc)
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc, timeout=30)
    assert proc.returncode == 0, err
    assert out.split() == ["done", str(sum(range(8)))]
    assert_pids_gone(pids, within=5)


def test_parent_sigkilled_leaves_no_orphan_workers(no_leaks: None) -> None:
    proc = _start("map_forever.py", "1000", "0.5")
    pids = _read_pids_and_running(proc)
    proc.kill()
    _finish(proc, timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert_pids_gone(pids, within=5)  # they notice on their own


def test_ten_million_item_generator_keeps_rss_flat(no_leaks: None) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "rss_map.py"), "10000000", "process"],
        capture_output=True,
        text=True,
        timeout=35,
        check=True,
    ).stdout
    growth = float(out.split()[1])
    assert growth < 100, f"peak RSS grew by {growth} MB"


def test_rss_script_detects_a_list_input() -> None:
    """The RSS measurement can fail: materialising the input shows up in VmHWM."""
    code = "import os;h=lambda:int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]);"
    code += "b=h();x=list(range(5_000_000));print((h()-b)/1024)"
    grew = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert grew > 100
    assert os.cpu_count()


def test_interpreter_exits_without_shutdown(no_leaks: None) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "no_shutdown.py")],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout.split("\n")
    pids = {int(p) for p in out[0].split()[1:]}
    assert out[1] == "2"
    assert_pids_gone(pids, within=5)
