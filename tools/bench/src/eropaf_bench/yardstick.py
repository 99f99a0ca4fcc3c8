"""Raw broker yardstick: how fast can plain aiokafka move signal-sized messages here?

N signal-like messages are produced (acks=all), then consumed in a consumer group that commits
per batch; the end-to-end rate is the yardstick every other section is a ratio of.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eropaf_bench.data import Message
from eropaf_bench.report import Figure

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

DEFAULT_MESSAGES = 50_000
DEFAULT_PARTITIONS = 4


@dataclass
class YardstickResult:
    produce: Figure
    consume: Figure
    end_to_end: Figure
    group_join_s: float
    mean_message_bytes: float


# Every bench producer, as a partner's publisher would be set up for throughput.
BENCH_PRODUCER: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
    "max_request_size": 4 * 1024 * 1024,
}


def bench_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **BENCH_PRODUCER)


async def run_yardstick(
    bootstrap_servers: str,
    messages: Sequence[Message],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    topic: str | None = None,
    consume_timeout_s: float = 90.0,
) -> YardstickResult:
    """Join a group, produce all messages (acks=all) and await every ack, then consume all.

    Consumption commits after every `getmany` batch. End-to-end = produce + consume time.
    """
    from aiokafka import AIOKafkaConsumer

    from eropaf_platform.local.broker import create_topics

    topic = topic or f"bench.yardstick.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap_servers, [topic], partitions=partitions)

    # Join the group first and pause fetching: group join time (seconds on some
    # brokers) is reported apart, and nothing is fetched while we produce.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    join_started = time.perf_counter()
    await consumer.start()
    try:
        while len(consumer.assignment()) < partitions:
            if time.perf_counter() - join_started > consume_timeout_s:
                raise TimeoutError("consumer group join did not complete")
            await consumer.getmany(timeout_ms=100)
        group_join_s = time.perf_counter() - join_started
        consumer.pause(*consumer.assignment())

        producer = bench_producer(bootstrap_servers)
        await producer.start()
        try:
            # Warm-up: metadata and connections, so the timing measures throughput only.
            await producer.send_and_wait(topic, b"{}", key=b"warm-up")
            started = time.perf_counter()
            pending = [
                await producer.send(topic, m.value, key=m.key, headers=m.headers) for m in messages
            ]
            await asyncio.gather(*pending)
            produce_s = time.perf_counter() - started
        finally:
            await producer.stop()

        expected = len(messages) + 1  # + warm-up
        received = 0
        consume_started = time.perf_counter()
        deadline = consume_started + consume_timeout_s
        consumer.resume(*consumer.assignment())
        while received < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"consumed {received}/{expected} within {consume_timeout_s}s")
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            count = sum(len(records) for records in batches.values())
            if count:
                received += count
                await consumer.commit()  # per batch, as the services do
        consume_s = time.perf_counter() - consume_started
    finally:
        await consumer.stop()

    n = len(messages)
    return YardstickResult(
        produce=Figure("produce", n, produce_s),
        consume=Figure("consume", n, consume_s),
        end_to_end=Figure("end-to-end", n, produce_s + consume_s),
        group_join_s=group_join_s,
        mean_message_bytes=sum(len(m.value) for m in messages) / max(n, 1),
    )
