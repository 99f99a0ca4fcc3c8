"""The per-token rate limit of the HTTP channel, on a fake clock."""

from __future__ import annotations

import pytest

from eropaf_intake.adapters.rate_limit import RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == 1  # half a second to the next token, rounded up
    assert limiter.acquire("b") == 0  # per token
    clock.now = 0.5
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") == 1
    clock.now = 100
    assert [limiter.acquire("a") for _ in range(4)] == [0, 0, 0, 1]  # refills to the burst only


def test_slow_rates_wait_longer_and_zero_turns_it_off() -> None:
    clock = Clock()
    slow = RateLimiter(0.1, 1, clock=clock)
    assert slow.acquire("a") == 0
    assert slow.acquire("a") == 10
    off = RateLimiter(0, 1, clock=clock)
    assert all(off.acquire("a") == 0 for _ in range(100))


def test_memory_is_bounded_by_forgetting_full_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock, max_keys=10)
    for i in range(1000):
        clock.now += 0.001
        limiter.acquire(f"k{i}")
    assert len(limiter._buckets) <= 10
