"""Start-up: the consumer groups join while the database is migrated, and no batch is
handled before the migrations are done."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from eropaf_platform import service as service_module
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from .support import (
    LedgerHandler,
    count_effects,
    create_effect_table,
    deposit_message,
    produce,
    settings_for,
)

pytestmark = pytest.mark.integration


class WatchedEvent(asyncio.Event):
    """An event that tells when somebody first had to wait for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()

    async def wait(self) -> bool:  # type: ignore[override]
        if not self.is_set():
            self.waited.set()
        return await super().wait()


async def test_a_batch_arriving_during_the_migrations_waits_for_them(
    kafka_bootstrap_servers: str,
    fresh_database_url: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fresh_database_url()
    await create_effect_table(url)
    topic = f"start-order-{uuid.uuid4().hex[:8]}"
    out_topic = f"{topic}-out"
    await produce(kafka_bootstrap_servers, topic, [deposit_message(5)])

    gate = asyncio.Event()
    real_migrate = service_module.migrate_async

    async def held_migrate(url_: str, migrations: Path | None, *, service: str) -> None:
        await gate.wait()
        await real_migrate(url_, migrations, service=service)

    monkeypatch.setattr(service_module, "migrate_async", held_migrate)
    svc = Service(
        settings_for("startorder", kafka_bootstrap_servers, url), topics=[topic, out_topic]
    )
    handler = LedgerHandler(out_topic=out_topic)
    svc.subscribe(topic, consumer="start-order", handler=handler)
    migrated = WatchedEvent()
    svc._migrated = migrated

    starting = asyncio.create_task(svc.start())
    try:
        # The group joined and fetched the deposit while the migrations were held.
        await asyncio.wait_for(migrated.waited.wait(), timeout=60)
        assert handler.calls == 0
        assert not svc.started
        gate.set()
        await asyncio.wait_for(starting, timeout=60)
        await wait_until_async(lambda: handler.calls >= 1, timeout=30, interval=0.05)

        async def committed() -> int | None:  # the handler ran; its batch commits after it
            return await count_effects(svc.sessions) or None

        assert await wait_until_async(committed, timeout=30, interval=0.05) == 1
    finally:
        gate.set()
        if not starting.done():
            starting.cancel()
        await svc.stop()
