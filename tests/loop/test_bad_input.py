"""Bad input and broken policies: clear errors, documented fallbacks, never a hang."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

import trilane
from trilane import FifoPolicy, MockClock, Policy, TaskInfo


def test_unknown_policy_name_lists_the_valid_names() -> None:
    coro = asyncio.sleep(0)
    for make in (
        lambda: trilane.new_event_loop(policy="lottery"),
        lambda: trilane.Loop(policy="lottery"),
        lambda: trilane.run(coro, policy="lottery"),
    ):
        with pytest.raises(ValueError, match="lottery") as info:
            make()
        for name in trilane.policy_names():
            assert name in str(info.value)
    coro.close()


def test_policy_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="policy must be"):
        trilane.new_event_loop(policy=42)  # type: ignore[arg-type]


def test_policy_names_accept_dashes() -> None:
    loop = trilane.new_event_loop(policy="round-robin")
    try:
        assert loop.policy.name == "round_robin"
    finally:
        loop.close()


@pytest.mark.parametrize("main", [None, 42, "main", asyncio.sleep, lambda: None])
def test_run_needs_a_coroutine(main: Any) -> None:
    with pytest.raises(TypeError, match="coroutine"):
        trilane.run(main)
    # asyncio.run raises ValueError on 3.11; NotACoroutine is both
    with pytest.raises(ValueError, match="coroutine"):
        trilane.run(main)


def test_coroutine_rejected_for_its_policy_was_not_started() -> None:
    coro = asyncio.sleep(0, "later")
    with pytest.raises(ValueError, match="valid names"):
        trilane.run(coro, policy="nope")
    assert trilane.run(coro) == "later"  # nothing ran it: it can still run


@pytest.mark.parametrize("priority", [1.5, "high", None.__class__, [1]])
def test_non_integer_priority_is_a_type_error(priority: Any) -> None:
    async def main() -> list[str]:
        errors = []
        coro = asyncio.sleep(0)
        try:
            trilane.spawn(coro, priority=priority)
        except TypeError as exc:
            errors.append(str(exc))
            coro.close()
        try:
            trilane.set_priority(priority)
        except TypeError as exc:
            errors.append(str(exc))
        return errors

    errors = trilane.run(main())
    assert len(errors) == 2
    assert all("priority must be an int" in e for e in errors)


def test_bool_priority_is_rejected_and_int_subclasses_accepted() -> None:
    class Level(int):
        pass

    async def main() -> int:
        with pytest.raises(TypeError):
            trilane.set_priority(True)
        task = trilane.spawn(asyncio.sleep(0), priority=Level(3))
        await task
        return trilane.task_stats(task).priority

    assert trilane.run(main()) == 3


class _Broken(Policy[Any]):
    """A fifo queue that raises from ``push``/``pop``/``charge`` after ``after`` calls."""

    name = "broken"

    def __init__(self, where: str, after: int, drain_fails: bool = False) -> None:
        super().__init__()
        self.items: deque[Any] = deque()
        self.where = where
        self.after = after
        self.drain_fails = drain_fails
        self.calls = 0

    def _maybe_fail(self, where: str) -> None:
        if where == self.where:
            self.calls += 1
            if self.calls > self.after:
                raise ZeroDivisionError(f"policy bug in {where}")

    def push(self, item: Any, owner: TaskInfo) -> None:
        self._maybe_fail("push")
        self.items.append(item)

    def pop(self) -> Any:
        self._maybe_fail("pop")
        return self.items.popleft()

    def charge(self, owner: TaskInfo, seconds: float) -> None:
        self._maybe_fail("charge")

    def __len__(self) -> int:
        return len(self.items)

    def drain(self) -> Iterator[Any]:
        if self.drain_fails:
            raise OSError("drain is broken too")
        while self.items:
            yield self.items.popleft()


async def _workload() -> list[int]:
    async def worker(i: int) -> int:
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        return i

    return list(await asyncio.gather(*(worker(i) for i in range(10))))


@pytest.mark.parametrize("where", ["push", "pop", "charge"])
def test_policy_that_raises_is_reported_then_fifo_takes_over(where: str) -> None:
    policy = _Broken(where, after=20)
    loop = trilane.new_event_loop(policy=policy, clock=MockClock())
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        assert loop.run_until_complete(_workload()) == list(range(10))
        assert isinstance(loop.policy, FifoPolicy)
    finally:
        loop.close()
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ZeroDivisionError)
    assert seen[0]["policy"] is policy
    assert "fifo" in seen[0]["message"]


def test_policy_whose_drain_also_fails_raises_policy_error() -> None:
    policy = _Broken("pop", after=20, drain_fails=True)
    loop = trilane.new_event_loop(policy=policy, clock=MockClock())
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    coro = _workload()
    try:
        with pytest.raises(trilane.PolicyError, match="drain") as info:
            loop.run_until_complete(coro)
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert len(seen) == 1
        # the loop is usable again on fifo
        assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"
    finally:
        # The lost tasks can never run again (not even to be cancelled): just close.
        loop.close()
        coro.close()


def test_policy_that_fails_at_close_is_reported_not_raised() -> None:
    policy = _Broken("never", after=0, drain_fails=True)
    loop = trilane.new_event_loop(policy=policy)
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    loop.call_soon(lambda: None)
    loop.close()
    assert loop.is_closed()
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], OSError)


def test_policy_failing_from_another_thread_push_is_contained() -> None:
    policy = _Broken("push", after=5)
    loop = trilane.new_event_loop(policy=policy)
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))

    async def main() -> int:
        results = await asyncio.gather(*(asyncio.to_thread(pow, 2, i) for i in range(10)))
        return sum(results)

    try:
        assert loop.run_until_complete(main()) == 1023
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    assert len(seen) == 1


def test_policy_instance_is_used_as_given() -> None:
    policy = FifoPolicy[Any]()
    a = trilane.new_event_loop(policy=policy)
    try:
        assert a.policy is policy
    finally:
        a.close()
