"""The one place that reaches into FastStream's and aiokafka's internals.

Every use of a private attribute or of a client that FastStream owns goes through here, so an
upgrade of either library breaks one module, and ``tests/unit/test_kafka_internals.py``
(which checks each assumption against the installed versions) says which.

* :func:`refresh_metadata`: aiokafka has no public call that fetches cluster metadata now
  (``consumer._client.force_metadata_update()``); an assigned consumer needs it to see the
  partitions of a topic created moments ago.
* :func:`mark_running`: the service starts the broker's parts itself (subscribers in
  parallel), then sets ``broker.running`` as ``KafkaBroker.start()`` would.
* :func:`top_up`: a batch subscriber's handler fetches more records with ``getmany`` on the
  aiokafka consumer FastStream gave the message (``message.consumer``).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def refresh_metadata(consumer: Any) -> None:
    """Fetch the cluster's metadata now (topics and partitions) for an aiokafka consumer."""
    await consumer._client.force_metadata_update()


def mark_running(broker: Any) -> None:
    """Record a FastStream broker whose subscribers and publishers were started by hand as
    started: ``stop()`` and the health checks then treat it as ``start()`` would leave it."""
    broker.running = True


def message_consumer(message: Any) -> Any | None:
    """The aiokafka consumer behind a FastStream Kafka message; None when the message has no
    fetcher (FastStream's in-memory test broker)."""
    consumer = getattr(message, "consumer", None)
    return consumer if hasattr(consumer, "getmany") else None


async def top_up(message: Any, records: list[Any], limit: int, linger_s: float) -> list[Any]:
    """Fill ``records`` (a batch FastStream handed over) up to ``limit`` with what the
    message's consumer fetches within ``linger_s``; unchanged without a fetcher.

    Every batch costs a transaction, round trips and an offset commit, so bigger batches are
    most of a consumer's throughput. FastStream's ack after the handler commits the positions
    of everything taken here, and only once the handler's work is durable.
    """
    consumer = message_consumer(message)
    if consumer is None:
        return records
    loop = asyncio.get_running_loop()
    deadline = loop.time() + linger_s
    while len(records) < limit:
        remaining_ms = int((deadline - loop.time()) * 1000)
        if remaining_ms <= 0:
            break
        more = await consumer.getmany(timeout_ms=remaining_ms, max_records=limit - len(records))
        records.extend(r for batch in more.values() for r in batch)
    return records
