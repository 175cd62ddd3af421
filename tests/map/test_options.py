"""Option validation: every bad value is refused up front, with the valid values in the message."""

from __future__ import annotations

import random

import pytest

import trilane
from trilane._map._options import Backoff, default_key, parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("100/s", 100.0), ("5/min", 5 / 60), ("1000/h", 1000 / 3600), ("10/2s", 5.0), ("3 / second", 3.0), (2.5, 2.5)],
)
def test_parse_rate(text: str | float, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["100", "fast", "10/fortnight", "-1/s", "0/s", "/s", 0, -3.0])
def test_bad_rate_is_a_value_error_that_shows_the_format(bad: object) -> None:
    with pytest.raises(ValueError, match=r"rate"):
        trilane.map(abs, [1], rate=bad)  # type: ignore[arg-type]


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'gpu'.*'serial'.*'thread'.*'process'.*'async'.*'dask'"):
        trilane.map(abs, [1], backend="gpu")


def test_unknown_errors_mode_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown errors mode 'ignore'.*'raise'.*'collect'.*'skip'"):
        trilane.map(abs, [1], errors="ignore")


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"retries": -1}, ValueError, "retries must be 0 or more"),
        ({"retries": 1.5}, TypeError, "retries must be an int"),
        ({"timeout": 0}, ValueError, "timeout must be a positive"),
        ({"timeout": "1"}, TypeError, "timeout must be a number"),
        ({"concurrency": 0}, ValueError, "concurrency must be at least 1"),
        ({"workers": -2}, ValueError, "workers must be at least 1"),
        ({"chunksize": 0}, ValueError, "chunksize must be at least 1"),
        ({"chunksize": "big"}, TypeError, "chunksize must be a positive int"),
        ({"retry_on": "ValueError"}, TypeError, "retry_on must be an exception class"),
        ({"backoff": "slow"}, TypeError, "backoff must be"),
        ({"progress": "yes"}, ValueError, "progress must be True, False or 'force'"),
        ({"key": 3}, TypeError, "key must be a function"),
        ({"priority": 1.0}, TypeError, "priority must be an int"),
    ],
)
def test_each_bad_option_is_refused_before_any_item_is_pulled(kwargs: dict, exc: type, pattern: str) -> None:
    pulled = []

    def items():
        pulled.append(1)
        yield 1

    with pytest.raises(exc, match=pattern):
        trilane.map(abs, items(), **kwargs)
    assert pulled == []


def test_amap_validates_the_same_way() -> None:
    with pytest.raises(ValueError, match="valid backends"):
        trilane.amap(abs, [1], backend="nope")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    b = Backoff(initial=1.0, factor=2.0, cap=5.0, jitter=0.5)
    rng = random.Random(1)
    for retry, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        for _ in range(20):
            d = b.delay(retry, rng)
            assert base * 0.5 <= d <= base
    assert Backoff(initial=1.0, jitter=0.0).delay(3) == 4.0
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)


def test_default_key_is_the_item_when_json_and_hashable_else_the_index() -> None:
    assert default_key("a", 3) == "a"
    assert default_key(7, 3) == 7
    assert default_key((1, "x"), 3) == (1, "x")
    assert default_key([1, 2], 3) == 3  # not hashable
    assert default_key(frozenset({1}), 4) == 4  # not JSON
    assert default_key(object(), 5) == 5
