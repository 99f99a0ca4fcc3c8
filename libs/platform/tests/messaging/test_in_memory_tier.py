"""The fast tier: a service's subscribers driven by FastStream's in-memory broker.

It shows the wiring (topic -> subscriber -> handler -> database) without a broker process.
It cannot show commits, redelivery or rebalances: those are proven on the real broker in
test_delivery_guarantees.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from faststream.kafka import TestKafkaBroker

from eropaf_platform.db import migrate_async
from eropaf_platform.service import Service

from .support import (
    LedgerHandler,
    count_effects,
    create_effect_table,
    deposit_message,
    settings_for,
)

pytestmark = pytest.mark.integration  # PostgreSQL is real; only the broker is in memory


async def test_subscriber_wiring_runs_the_handler_in_memory(
    fresh_database_url: Callable[[], str],
) -> None:
    db = fresh_database_url()
    await migrate_async(db)
    await create_effect_table(db)
    topic = f"test.memory.{uuid.uuid4().hex[:8]}"
    service = Service(settings_for("memory", "127.0.0.1:1", db))
    handler = LedgerHandler(f"{topic}.out")
    service.subscribe(topic, consumer="memory", handler=handler)
    key, value, headers = deposit_message(5, id="mem-1")
    try:
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(
                value, topic, key=key.encode(), headers=dict((k, v.decode()) for k, v in headers)
            )
            await broker.publish(
                value, topic, key=key.encode(), headers=dict((k, v.decode()) for k, v in headers)
            )
        assert handler.calls == 1  # the second copy (same id) was dropped before the handler
        assert await count_effects(service.sessions) == 1
    finally:
        await service.engine.dispose()
