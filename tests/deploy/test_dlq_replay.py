"""Replaying dead letters after a fix (deploy/README.md, DLQs), on the real broker and
PostgreSQL: the fixed consumer processes the message once, and a second replay does nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_platform import kafka_admin
from eropaf_platform.consumer import Incoming, PoisonMessage
from eropaf_platform.db import migrate_async
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings
from eropaf_platform.testing.wait import wait_until_async

pytestmark = pytest.mark.integration


class Handler:
    """Fails on "bad" messages while broken; records what it processed."""

    def __init__(self) -> None:
        self.broken = True
        self.processed: list[bytes] = []

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        for message in messages:
            if self.broken and message.value.startswith(b"bad"):
                raise PoisonMessage("cannot handle bad messages yet")
            self.processed.append(message.value)


async def test_replay_after_fix_processes_once(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(
        service_name="replaytest",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=db,
        kafka_topic_partitions=1,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
    )
    handler = Handler()
    service = Service(settings, topics=[topic, f"{topic}.dlq"])
    await migrate_async(db)
    service.subscribe(topic, consumer="replaytest", handler=handler, group_id=f"g-{topic}")
    await service.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, b"bad-1", key=b"k1", headers=[("ce_id", b"id-bad-1")]
            )
            await producer.send_and_wait(topic, b"good-1", key=b"k2", headers=[("ce_id", b"id-2")])
        finally:
            await producer.stop()

        async def dead_letters() -> list[kafka_admin.DeadLetter]:
            return await kafka_admin.read_dead_letters(settings, f"{topic}.dlq")

        async def one_dead_letter() -> bool:
            return len(await dead_letters()) == 1

        await wait_until_async(one_dead_letter, timeout=30)
        letters = await dead_letters()
        summary = letters[0].summary()
        assert summary["consumer"] == "replaytest"
        assert summary["ce_id"] == "id-bad-1"
        assert summary["error"] == "PoisonMessage"
        assert "value" not in summary
        assert handler.processed == [b"good-1"]

        # Redelivering the same message unchanged would be dropped as processed: the replay
        # removes that record first.
        handler.broken = False
        replayed, skipped = await kafka_admin.replay_dead_letters(settings, letters)
        assert (len(replayed), skipped) == (1, [])

        async def bad_processed() -> bool:
            return b"bad-1" in handler.processed

        await wait_until_async(bad_processed, timeout=30)

        # A second replay of the same dead letter does nothing: processed after it was written.
        replayed, skipped = await kafka_admin.replay_dead_letters(settings, letters)
        assert (replayed, len(skipped)) == ([], 1)
        assert handler.processed.count(b"bad-1") == 1
    finally:
        await service.stop()
