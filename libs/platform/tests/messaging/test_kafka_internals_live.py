"""`kafka_internals.refresh_metadata` against the real broker: a started consumer sees a
topic created after it started once the metadata is refreshed."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from eropaf_platform.kafka_internals import refresh_metadata
from eropaf_platform.local.broker import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_refresh_metadata_shows_a_topic_created_after_start(
    kafka_bootstrap_servers: str,
) -> None:
    topic = f"test.metadata.{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap_servers, group_id=None, metadata_max_age_ms=600_000
    )
    await consumer.start()
    try:
        await create_topics(kafka_bootstrap_servers, [topic], partitions=3)
        await refresh_metadata(consumer)
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        await consumer.stop()
