"""backend="auto": async for coroutines, thread for I/O, process for picklable CPU work, and why."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mapfuncs import asleep_for, sleep_for, spin

import trilane
from trilane._map import _auto
from trilane._map._auto import Probe, choose
from trilane._profile import MachineProfile, save_profile

# Every test here checks that it leaves no thread, child process or fd behind.
pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture(autouse=True)
def _no_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profile.json"
    monkeypatch.setenv("TRILANE_PROFILE", str(path))
    return path


@pytest.fixture
def steady_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other jobs share this machine, so a CPU-bound probe may see well under 100% CPU/wall.
    # A sleeping function sees ~0%; a threshold of 0.15 still tells them apart.
    monkeypatch.setattr(_auto, "IO_BOUND_BELOW", 0.15)


def test_a_coroutine_function_runs_on_async() -> None:
    it = trilane.map(asleep_for, [0.0, 0.01])
    assert it.plan.backend == "async"
    assert "coroutine function" in it.plan.reason
    assert list(it) == [0.0, 0.01]


def test_an_io_bound_function_runs_on_threads() -> None:
    calls = []

    def fetch(x: float) -> float:
        calls.append(x)
        return sleep_for(x)

    it = trilane.map(fetch, [0.05] * 8)
    assert it.plan.backend == "thread"
    assert "I/O-bound" in it.plan.reason and "CPU/wall" in it.plan.reason
    assert it.plan.measured["cpu_ratio"] < 0.5
    assert list(it) == [0.05] * 8
    assert len(calls) == 8  # the probed items were kept, not run again


@pytest.mark.slow
@pytest.mark.usefixtures("steady_threshold")
def test_a_picklable_cpu_bound_function_runs_on_processes() -> None:
    items = [300_000] * 24  # ~20-60 ms each
    it = trilane.map(spin, items)
    plan = it.plan
    assert plan.backend == "process", plan.reason
    assert "CPU-bound" in plan.reason and "pickles" in plan.reason
    assert "no machine profile" in plan.reason and plan.profile is False
    assert list(it) == [spin(300_000)] * 24


@pytest.mark.usefixtures("steady_threshold")
def test_a_cpu_bound_function_that_cannot_be_pickled_runs_on_threads_and_says_why() -> None:
    def local_spin(n: int) -> int:  # a closure: not picklable
        return spin(n)

    it = trilane.map(local_spin, [300_000] * 24)
    assert it.plan.backend == "thread"
    assert "cannot be pickled" in it.plan.reason and "module top level" in it.plan.reason
    assert list(it) == [spin(300_000)] * 24


@pytest.mark.slow
@pytest.mark.usefixtures("steady_threshold")
def test_the_saved_machine_profile_is_used_and_named(_no_profile: Path) -> None:
    save_profile(
        MachineProfile(
            cpus=2, process_roundtrip=123e-6, thread_roundtrip=20e-6, async_switch=5e-6,
            process_startup=0.05, measured_at=time.time(),
        )
    )  # fmt: skip
    it = trilane.map(spin, [300_000] * 24)
    assert it.plan.profile is True and "saved machine profile" in it.plan.reason
    assert list(it) == [spin(300_000)] * 24


def test_choose_rules() -> None:
    cpu = Probe([(0.01, 0.01)] * 3, sample_item=1)
    io = Probe([(0.01, 0.0001)] * 3, sample_item=1)
    one_cpu = MachineProfile(1, 1e-4, 1e-5, 1e-6, 0.1, 0.0)
    two = MachineProfile(2, 1e-4, 1e-5, 1e-6, 0.1, 0.0)
    assert choose(spin, False, io, None, two).backend == "thread"
    assert choose(spin, False, cpu, None, two).backend == "process"
    plan = choose(spin, False, cpu, None, one_cpu)
    assert plan.backend == "serial" and "1 CPU" in plan.reason
    plan = choose(spin, False, cpu, 5, two)  # 50 ms of work left < 2 × 100 ms start-up
    assert plan.backend == "serial" and "start-up" in plan.reason
    plan = choose(spin, False, Probe([(0.01, 0.01)], sample_item=lambda: 0), None, two)
    assert plan.backend == "thread" and "the items cannot be pickled" in plan.reason
    assert choose(spin, False, Probe([]), None, two).backend == "serial"
    assert choose(asleep_for, True, None, None, None).backend == "async"


def test_auto_on_an_empty_input_is_serial() -> None:
    it = trilane.map(spin, [])
    assert list(it) == [] and it.plan.backend == "serial"
