"""``trilane trace``: runs a script on trilane's loop with the watchdog and reports where it blocked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trilane._cli import main as cli
from trilane._core import _run as trilane_run_module

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "blocking_requests.py"


def _line_of(path: Path, text: str) -> int:
    (line,) = [n for n, src in enumerate(path.read_text().splitlines(), 1) if text in src]
    return line


@pytest.mark.slow
def test_trace_of_the_example_names_the_requests_call_site(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {**os.environ, "COLUMNS": "220"}
    proc = subprocess.run(
        [sys.executable, "-m", "trilane", "trace", "--json", str(out), str(EXAMPLE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    line = _line_of(EXAMPLE, 'requests.get(url, params={"n": n}, timeout=10)  # blocks')
    # The printed report names the call site and the fix.
    assert f"examples/blocking_requests.py:{line}" in proc.stdout
    assert "synchronous HTTP (requests)" in proc.stdout and "trilane.to_thread" in proc.stdout
    assert "with_requests" in proc.stdout  # the per-coroutine table
    report = json.loads(out.read_text())
    assert report["exit_code"] == 0 and report["loops"] >= 1
    top = report["sites"][0]
    assert (Path(top["file"]).name, top["line"], top["function"]) == ("blocking_requests.py", line, "with_requests")
    assert top["hint"]["kind"] == "http" and top["count"] == 5
    # Only requests blocked: aiohttp and to_thread did not.
    assert len(report["sites"]) == 1
    by_coro = {c["coroutine"]: c for c in report["coroutines"]}
    assert by_coro["with_requests"]["blocked_s"] > 0
    assert by_coro["with_aiohttp"]["blocked_s"] == 0 and by_coro["with_to_thread"]["blocked_s"] == 0


SCRIPT = """
import asyncio, sys, time

async def stall():
    await asyncio.sleep(0)
    time.sleep(0.06)

async def main():
    await asyncio.gather(stall(), stall())

asyncio.run(main())
with asyncio.Runner() as runner:
    runner.run(stall())
import trilane
trilane.run(stall())
trilane.run(stall(), watchdog=None)  # chose no watchdog: its tasks are listed, its blocking is not
print("argv", sys.argv[1:])
sys.exit(int(sys.argv[1]))
"""


def test_trace_routes_asyncio_run_and_runner_and_returns_the_scripts_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "stalls.py"
    script.write_text(SCRIPT)
    out = tmp_path / "r.json"
    code = cli(["trace", "--threshold", "30", "--json", str(out), str(script), "3", "--flag"])
    assert code == 3
    printed = capsys.readouterr().out
    assert "argv ['3', '--flag']" in printed
    report = json.loads(out.read_text())
    assert report["loops"] == 4 and report["threshold_s"] == 0.03
    (site,) = report["sites"]
    assert (site["line"], site["function"], site["count"]) == (6, "stall", 4)
    assert site["hint"]["kind"] == "sleep"
    assert {c["coroutine"]: c["tasks"] for c in report["coroutines"]} == {"stall": 5, "main": 1}
    # Everything patched for the script is put back.
    assert asyncio.Runner.__init__.__qualname__ == "Runner.__init__"
    assert trilane_run_module.trace_hook is None


def test_trace_of_a_script_without_a_loop_or_with_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = tmp_path / "quiet.py"
    quiet.write_text("print('no loop here')\n")
    assert cli(["trace", str(quiet)]) == 0
    assert "never ran an event loop" in capsys.readouterr().out
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('script bug')\n")
    assert cli(["trace", str(broken)]) == 1
    assert "script bug" in capsys.readouterr().err
    assert cli(["trace", str(tmp_path / "missing.py")]) == 2
    assert cli(["trace", "--threshold", "0", str(quiet)]) == 2
