"""Exact traces of each policy, on the policy objects and on a running loop."""

from __future__ import annotations

import asyncio

import pytest

import trilane
from trilane import FairPolicy, FifoPolicy, MockClock, PriorityPolicy, RoundRobinPolicy, TaskInfo


def drain(policy: trilane.Policy[str]) -> list[str]:
    return list(policy.drain())


def test_fifo_keeps_push_order() -> None:
    p: FifoPolicy[str] = FifoPolicy()
    for item, prio in [("a", 5), ("b", 0), ("c", 9)]:
        p.push(item, TaskInfo(prio))
    assert drain(p) == ["a", "b", "c"]


def test_priority_orders_by_level_then_fifo() -> None:
    clock = MockClock()
    p: PriorityPolicy[str] = PriorityPolicy()
    p.bind(clock.time)
    for item, prio in [("a", 0), ("b", 1), ("c", 0), ("d", 1), ("e", 2)]:
        p.push(item, TaskInfo(prio))
    assert drain(p) == ["e", "b", "d", "a", "c"]


def test_priority_aging_lets_old_low_items_overtake() -> None:
    clock = MockClock()
    p: PriorityPolicy[str] = PriorityPolicy(level_wait=0.05)
    p.bind(clock.time)
    p.push("old-low", TaskInfo(0))
    clock.jump(0.25)  # five levels' worth of waiting
    p.push("new-p4", TaskInfo(4))
    p.push("new-p6", TaskInfo(6))
    assert drain(p) == ["new-p6", "old-low", "new-p4"]


def test_priority_rejects_bad_level_wait() -> None:
    with pytest.raises(ValueError, match="level_wait"):
        PriorityPolicy(level_wait=0)


def test_fair_prefers_least_weighted_runtime() -> None:
    p: FairPolicy[str] = FairPolicy(sleeper_credit=0.0)
    hog, light = TaskInfo(0), TaskInfo(0)
    hog.run_time = 0.010  # as the engine charges it
    light.run_time = 0.001
    p.push("hog", hog)
    p.push("light", light)
    assert drain(p) == ["light", "hog"]


def test_fair_weights_by_priority() -> None:
    p: FairPolicy[str] = FairPolicy(sleeper_credit=0.0)
    high, low = TaskInfo(10), TaskInfo(0)
    high.run_time = 0.009  # 0.009 / 1.25**10 ≈ 0.00097
    low.run_time = 0.002
    p.push("low", low)
    p.push("high", high)
    assert drain(p) == ["high", "low"]


def test_round_robin_takes_turns_between_groups() -> None:
    p: RoundRobinPolicy[str] = RoundRobinPolicy()
    a, b = TaskInfo(group="a"), TaskInfo(group="b")
    for i in range(3):
        p.push(f"a{i}", a)
    p.push("b0", b)
    p.push("b1", b)
    assert drain(p) == ["a0", "b0", "a1", "b1", "a2"]


def test_unknown_policy_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="fifo, priority, fair, round_robin"):
        trilane.new_event_loop(policy="lifo")


def test_policy_names() -> None:
    assert trilane.policy_names() == ["fifo", "priority", "fair", "round_robin"]


def _trace_under(policy: str) -> list[str]:
    trace: list[str] = []

    async def worker(name: str, steps: int) -> None:
        for i in range(steps):
            trace.append(f"{name}{i}")
            await asyncio.sleep(0)

    async def main() -> None:
        tasks = [
            trilane.spawn(worker("L", 3), priority=0, group="g1"),
            trilane.spawn(worker("H", 3), priority=5, group="g2"),
            trilane.spawn(worker("M", 3), priority=0, group="g1"),
        ]
        await asyncio.gather(*tasks)

    trilane.run(main(), policy=policy, clock=MockClock())
    return trace


def test_fifo_trace_on_loop() -> None:
    assert _trace_under("fifo") == ["L0", "H0", "M0", "L1", "H1", "M1", "L2", "H2", "M2"]


def test_priority_trace_on_loop() -> None:
    # The policy's clock is virtual and stands still, so aging never kicks in here.
    assert _trace_under("priority") == ["H0", "H1", "H2", "L0", "M0", "L1", "M1", "L2", "M2"]


def test_round_robin_trace_on_loop() -> None:
    # H is alone in group g2, so it gets every other turn; L and M share g1's turns.
    assert _trace_under("round_robin") == ["L0", "H0", "M0", "H1", "L1", "H2", "M1", "L2", "M2"]


def test_fair_limits_sleeper_credit() -> None:
    p: FairPolicy[str] = FairPolicy(sleeper_credit=0.005, start_debit=0.0)
    busy, sleeper = TaskInfo(0), TaskInfo(0)
    busy.run_time = 1.0
    p.push("busy", busy)
    assert drain(p) == ["busy"]  # the queue's minimum vruntime is now 1.0
    busy.run_time = 1.001
    p.push("busy", busy)
    p.push("sleeper", sleeper)  # ran 0 s, but comes back only 5 ms behind the minimum
    assert drain(p) == ["sleeper", "busy"]
    busy.run_time = 1.02
    p.push("busy", busy)
    sleeper.run_time = 0.02  # now 0.02 + (0.995 offset) > 1.0, so busy (1.02) is behind it
    p.push("sleeper", sleeper)
    assert drain(p) == ["sleeper", "busy"]


def test_priority_with_many_levels_breaks_ties_by_level() -> None:
    clock = MockClock()
    p: PriorityPolicy[str] = PriorityPolicy(level_wait=0.05)
    p.bind(clock.time)
    p.push("p0", TaskInfo(0))
    clock.jump(0.05)
    p.push("p1", TaskInfo(1))  # same rank as p0: the higher level wins the tie
    p.push("p-1", TaskInfo(-1))
    assert drain(p) == ["p1", "p0", "p-1"]
    assert len(p) == 0


def test_fair_runs_one_granule_in_push_order() -> None:
    p: FairPolicy[str] = FairPolicy(sleeper_credit=0.0, granularity=0.001)
    a, b = TaskInfo(0), TaskInfo(0)
    a.run_time = 0.0009  # same 1 ms step as b: push order decides
    b.run_time = 0.0001
    p.push("a", a)
    p.push("b", b)
    assert drain(p) == ["a", "b"]
    with pytest.raises(ValueError, match="granularity"):
        FairPolicy(granularity=0)


def test_fair_places_new_owners_behind_by_weight() -> None:
    p: FairPolicy[str] = FairPolicy(sleeper_credit=0.0, start_debit=0.001)
    crowd = [TaskInfo(0) for _ in range(3)]
    urgent = TaskInfo(10)
    for i, owner in enumerate(crowd):
        p.push(f"low{i}", owner)
    p.push("urgent", urgent)  # new too, but its debit is 1 ms / 1.25**10
    assert drain(p)[0] == "urgent"


@pytest.mark.parametrize("make", [FifoPolicy, PriorityPolicy, FairPolicy, RoundRobinPolicy])
def test_len_and_drain_agree_with_pop_order(make: type[trilane.Policy[int]]) -> None:
    # drain() must give pop()'s order and empty the queue; len() must count what is queued.
    owners = [TaskInfo(p, group=p % 3) for p in (0, 2, 1, 0, 2)]
    for owner, ran in zip(owners, (0.004, 0.0, 0.0002, 0.0, 0.01), strict=True):
        owner.run_time, owner.steps = ran, 1
    first, second = make(), make()
    for policy in (first, second):
        policy.bind(MockClock().time)
        for i in range(40):
            policy.push(i, owners[i % len(owners)])
    assert len(first) == 40
    popped = [first.pop() for _ in range(15)]
    assert len(first) == 25
    assert popped + list(first.drain()) == list(second.drain())
    assert len(first) == len(second) == 0
