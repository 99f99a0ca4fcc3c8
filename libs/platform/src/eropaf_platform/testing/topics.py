"""Reading a topic as it stands, for tests and benchmarks that check what was published."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from eropaf_platform.kafka_internals import refresh_metadata


async def read_to_end(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic`` from its beginning up to its end as of the call (all
    partitions, no consumer group); fails if that is not read within ``timeout`` seconds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        await refresh_metadata(consumer)
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            assert time.monotonic() < deadline, f"{topic} not read within {timeout} s"
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records.extend(batch)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return records
