"""Task attributes: spawn/priority/group inheritance, set_priority, task_stats and loop.stats()."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import trilane
from trilane import MockClock


def run(coro: Any, policy: str = "fifo") -> Any:
    return trilane.run(coro, policy=policy, clock=MockClock())


def test_spawn_sets_priority_and_group_and_children_inherit() -> None:
    async def grandchild() -> tuple[int, Any]:
        s = trilane.task_stats()
        return s.priority, s.group

    async def child() -> list[tuple[int, Any]]:
        inherited = await asyncio.create_task(grandchild())
        own = await trilane.spawn(grandchild(), priority=1)
        regrouped = await trilane.spawn(grandchild(), group="other")
        return [inherited, own, regrouped]

    async def main() -> list[tuple[int, Any]]:
        return await trilane.spawn(child(), priority=7, group="tenant-a")

    assert run(main()) == [(7, "tenant-a"), (1, "tenant-a"), (7, "other")]


def test_tasks_default_to_priority_zero_and_no_group() -> None:
    async def main() -> tuple[int, Any]:
        task = asyncio.ensure_future(asyncio.sleep(0))
        await task
        s = trilane.task_stats(task)
        return s.priority, s.group

    assert run(main()) == (0, None)


def test_set_priority_changes_current_and_other_tasks() -> None:
    async def waiter(ev: asyncio.Event) -> None:
        await ev.wait()

    async def main() -> list[Any]:
        ev = asyncio.Event()
        other = asyncio.ensure_future(waiter(ev))
        trilane.set_priority(4)
        trilane.set_priority(group="g")
        trilane.set_priority(-2, task=other)
        child = await asyncio.create_task(_stats_now())
        me = trilane.task_stats()
        ev.set()
        await other
        return [me.priority, me.group, trilane.task_stats(other).priority, child.priority, child.group]

    assert run(main()) == [4, "g", -2, 4, "g"]


async def _stats_now() -> trilane.TaskStats:
    return trilane.task_stats()


def test_task_stats_counts_steps_and_time() -> None:
    async def stepper(n: int) -> None:
        for _ in range(n):
            sum(range(1000))
            await asyncio.sleep(0)

    async def main() -> trilane.TaskStats:
        task = trilane.spawn(stepper(10), name="stepper")
        await task
        return trilane.task_stats(task)

    s = run(main())
    assert s.name == "stepper"
    assert s.steps == 11  # ten yields, then the step that returns
    assert s.run_time > 0
    assert 0 < s.longest_step <= s.run_time
    assert s.wait_time >= 0
    assert s.blocked_time == 0


def test_task_stats_outside_a_task_raises() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        trilane.task_stats()
    with pytest.raises(RuntimeError, match="no running event loop"):
        trilane.set_priority(3)

    errors: list[str] = []

    def in_callback() -> None:
        for call in (trilane.task_stats, lambda: trilane.set_priority(3)):
            try:
                call()
            except RuntimeError as exc:
                errors.append(str(exc))

    loop = trilane.new_event_loop()
    try:
        loop.call_soon(in_callback)
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert len(errors) == 2
    assert all("inside a task" in e for e in errors)


def test_runner_main_task_priority_is_inherited() -> None:
    async def main() -> list[int]:
        trilane.set_priority(6)
        child = await asyncio.create_task(_stats_now())
        again = await asyncio.create_task(_stats_now())
        return [trilane.task_stats().priority, child.priority, again.priority]

    assert run(main()) == [6, 6, 6]


def test_loop_stats_counts_ticks_callbacks_and_high_water() -> None:
    loop = trilane.new_event_loop()
    try:
        for _ in range(25):
            loop.call_soon(lambda: None)
        loop.call_soon(loop.stop)
        loop.run_forever()
        stats = loop.stats()
        assert stats.callbacks == 26
        assert stats.ready_high_water == 26
        assert stats.ticks >= 1
        loop.run_until_complete(asyncio.sleep(0))
        after = loop.stats()
        assert after.ticks > stats.ticks
        assert after.callbacks > stats.callbacks
    finally:
        loop.close()


def test_plain_callbacks_are_charged_to_the_scheduling_task() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()

        async def scheduler() -> int:
            fut = loop.create_future()
            for _ in range(5):
                loop.call_soon(sum, range(10))
            loop.call_soon(fut.set_result, None)
            before = trilane.task_stats().steps
            await fut
            return trilane.task_stats().steps - before

        task = trilane.spawn(scheduler(), priority=2)
        extra = await task
        return extra, trilane.task_stats(task).priority

    extra, priority = run(main())
    # the six plain callbacks and the task's own resumption are charged to it
    assert extra >= 6
    assert priority == 2


def test_spawn_on_a_stock_loop_records_but_does_not_schedule() -> None:
    async def main() -> tuple[int, Any]:
        task = trilane.spawn(asyncio.sleep(0), priority=5, group="x")
        await task
        s = trilane.task_stats(task)
        return s.priority, s.group

    assert asyncio.run(main()) == (5, "x")


@pytest.mark.parametrize("policy", trilane.policy_names())
def test_every_policy_finishes_the_same_work(policy: str) -> None:
    async def worker(i: int) -> int:
        for _ in range(i % 4):
            await asyncio.sleep(0)
        await asyncio.sleep(0.001 * (i % 3))
        return i

    async def main() -> list[int]:
        tasks = [trilane.spawn(worker(i), priority=i % 5, group=i % 3) for i in range(60)]
        return list(await asyncio.gather(*tasks))

    assert run(main(), policy) == list(range(60))


def test_stats_false_runs_the_same_and_charges_nothing() -> None:
    order: list[int] = []

    async def worker(i: int) -> None:
        for _ in range(3):
            order.append(i)
            await asyncio.sleep(0)

    async def main() -> trilane.TaskStats:
        await asyncio.gather(*(worker(i) for i in range(3)))
        return trilane.task_stats()

    with asyncio.Runner(loop_factory=lambda: trilane.new_event_loop(stats=False)) as runner:
        stats = runner.run(main())
        loop = runner.get_loop()
        assert isinstance(loop, trilane.Loop)
        with pytest.raises(ValueError, match="stats=False"):
            loop.set_block_hook(trilane.Watchdog())
    assert order == [0, 1, 2] * 3
    assert stats.steps == 0 and stats.run_time == 0.0
