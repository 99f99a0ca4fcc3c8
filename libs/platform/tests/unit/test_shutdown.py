"""A service stops when told to: a cancel is never lost, and no client holds stop() up."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from eropaf_platform.outbox import OutboxRelay
from eropaf_platform.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def test_a_wake_up_in_the_same_instant_as_the_cancel_does_not_keep_the_relay_running() -> (
    None
):
    # No connection is made: the engine only stands in for the relay's constructor.
    engine = create_async_engine("postgresql+psycopg://postgres@127.0.0.1/unused")
    relay = OutboxRelay(engine, ServiceSettings(database_url="postgresql://x/y"))
    rounds = 0

    async def idle_relay() -> None:
        nonlocal rounds
        while True:  # the relay's idle loop: publish nothing, sleep until woken
            rounds += 1
            await relay._sleep_or_wake(30)

    task = asyncio.create_task(idle_relay())
    while rounds == 0:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # now waiting on the wake-up event
    relay.wake()  # a commit's NOTIFY arrives ...
    task.cancel()  # ... in the same loop step as Service.stop()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done and task.cancelled()
    assert rounds == 1
    await engine.dispose()


async def test_stop_returns_when_the_broker_client_and_a_task_do_not(monkeypatch) -> None:
    from eropaf_platform.service import Service

    service = Service(
        ServiceSettings(
            database_url="postgresql://postgres@127.0.0.1/unused", shutdown_timeout_s=0.2
        )
    )
    hung = asyncio.Event()

    async def broker_stop_that_hangs() -> None:
        await hung.wait()

    monkeypatch.setattr(service.broker, "stop", broker_stop_that_hangs)
    released = asyncio.Event()

    async def deaf_to_cancel() -> None:
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                continue  # as a client that swallows the cancellation would

    stubborn = asyncio.create_task(deaf_to_cancel(), name="stubborn")
    service._tasks.append(stubborn)
    done, _ = await asyncio.wait([asyncio.create_task(service.stop())], timeout=5)
    assert done, "stop() waited past its bound"
    assert not stubborn.done()  # not finished, but no longer holding stop() up
    assert service._tasks == []
    released.set()
    await stubborn
