"""Poll for a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not become true before the deadline."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
) -> T:
    """Call `predicate` until it returns a truthy value; return that value.

    Raises `WaitTimeout` after `timeout` seconds. The predicate is called once
    more at the deadline, so a slow last poll still counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(message or f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(min(interval, remaining))


@overload
async def wait_until_async(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


@overload
async def wait_until_async(
    predicate: Callable[[], T | None],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
) -> T: ...


async def wait_until_async(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
) -> Any:
    """Async `wait_until`; `predicate` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        result = await outcome if inspect.isawaitable(outcome) else outcome
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(message or f"condition not met within {timeout}s: {predicate!r}")
        await asyncio.sleep(min(interval, remaining))
