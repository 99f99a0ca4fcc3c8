"""Transactional outbox: events are rows written in the same transaction as the state change;
a relay publishes them in order; published rows are kept for a retention period so that a new
(empty) broker can be refilled.

Rows are never updated. Each records the transaction that wrote it (``tx``, a 64-bit xid);
the relay publishes in (tx, seq) order but only rows whose transaction is older than the
oldest one still running (the snapshot's xmin), and keeps the (tx, seq) of the last row the
broker acknowledged in ``outbox_position``. A transaction still running when the relay reads
has an xid at or above that horizon, so whatever it commits later sorts after everything
already published: no row is passed over, however the writers' commits interleave. (A seq
position alone would skip a lower seq committed after a higher one.) The price: a writing
transaction left open anywhere on the server holds publishing back until it ends; the
backlog gauge shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eropaf_contracts.envelope import Envelope
from eropaf_platform import bulk, metrics
from eropaf_platform.broker import connection_args, ensure_topics, make_producer
from eropaf_platform.db import libpq_url
from eropaf_platform.kafka_internals import refresh_metadata
from eropaf_platform.logging import get_logger
from eropaf_platform.partitioning import partition_for
from eropaf_platform.settings import ServiceSettings
from eropaf_platform.tables import broker_epoch, outbox_message, outbox_position

log = get_logger(__name__)

# Only one relay per service database publishes at a time: ordering per key depends on it.
RELAY_LOCK_ID = 0x45524F50  # "EROP"
# Every published record names its outbox row, so a restarted relay can tell which rows of an
# interrupted batch the broker already has (see OutboxRelay._settle_in_doubt).
EVENT_ID_HEADER = "eropaf_event_id"


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: str | None
    value: bytes
    headers: Sequence[tuple[str, str]] = ()
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def envelope_message(topic: str, envelope: Envelope) -> OutgoingMessage:
    return OutgoingMessage(
        topic=topic,
        key=envelope.key,
        value=envelope.to_bytes(),
        headers=envelope.text_headers(),
        event_id=envelope.id,
    )


# One statement per batch (eropaf_platform.bulk), rows in list order: seq (the publishing
# order) follows the order the caller queued the messages in, as with one INSERT per row.
_INSERT_OUTBOX = bulk.json_insert(
    outbox_message, ("event_id", "topic", "key", "value", "headers"), conflict=["event_id"]
)


# The relay's row of outbox_position (one relay per service database).
_POSITION = "relay"
_START = ("0", 0)  # before every row: a new broker gets the whole retained outbox again

# Rows after the position whose transaction is older than every one still running.
_PENDING = sa.text(
    """
    SELECT m.seq, m.tx::text AS tx, m.event_id, m.topic, m.key, m.value, m.headers
    FROM outbox_message m
    WHERE (m.tx, m.seq) > (CAST(:tx AS xid8), :seq)
      AND m.tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY m.tx, m.seq
    LIMIT :limit
    """
)
_UNPUBLISHED = sa.text(
    """
    SELECT count(*) FROM outbox_message m JOIN outbox_position p
      ON p.name = :name AND (m.tx, m.seq) > (p.tx, p.seq)
    """
)
_SAVE_POSITION = sa.text(
    """
    INSERT INTO outbox_position (name, tx, seq) VALUES (:name, CAST(:tx AS xid8), :seq)
    ON CONFLICT (name) DO UPDATE SET tx = EXCLUDED.tx, seq = EXCLUDED.seq
    """
)
_PURGE = sa.text(
    """
    DELETE FROM outbox_message m USING outbox_position p
    WHERE p.name = :name AND (m.tx, m.seq) <= (p.tx, p.seq) AND m.created_at < :cutoff
    """
)


async def unpublished_count(conn: Any) -> int:
    """Rows the relay has not yet published (a connection or session of the service's
    database)."""
    return int(await conn.scalar(_UNPUBLISHED, {"name": _POSITION}) or 0)


NOTIFY_CHANNEL = "eropaf_outbox"
_NOTIFY = sa.text(f"NOTIFY {NOTIFY_CHANNEL}")


# Rows per INSERT: the JSON of a batch (values in base64) is held about three times over
# while it is sent, so tens of thousands of events (a first plan's backlog) go in slices.
ADD_ROWS_PER_STATEMENT = 2_000


async def add(session: AsyncSession, messages: Iterable[OutgoingMessage]) -> None:
    """Queue messages in the caller's transaction, in order. An event id seen before is
    ignored, so re-running an effect (after a crash) cannot queue its events twice."""
    queued = list(messages)
    if not queued:
        return
    for start in range(0, len(queued), ADD_ROWS_PER_STATEMENT):
        rows = (
            {
                "event_id": m.event_id,
                "topic": m.topic,
                "key": m.key,
                "value": m.value,
                "headers": m.headers,
            }
            for m in queued[start : start + ADD_ROWS_PER_STATEMENT]
        )
        await session.execute(_INSERT_OUTBOX, {"rows": bulk.rows_json(rows)})
    # Delivered at commit (once per transaction): wakes the relay of whichever instance of
    # the service holds the relay lock, not only this process's.
    await session.execute(_NOTIFY)


async def emit(session: AsyncSession, topic: str, *envelopes: Envelope) -> None:
    await add(session, [envelope_message(topic, e) for e in envelopes])


class OutboxRelay:
    """Publishes unpublished outbox rows in sequence order, at least once."""

    def __init__(self, engine: AsyncEngine, settings: ServiceSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        # (tx, seq) of the last row the broker acknowledged, loaded when the lock is taken.
        self._position: tuple[str, int] = _START
        # Rows after the position that the broker turned out to have already (see
        # _settle_in_doubt): passed over, not sent again.
        self._already_sent: set[str] = set()
        self.published = 0

    def wake(self) -> None:
        """Called after a commit that queued events: publish now rather than at the next poll."""
        self._wake.set()

    async def backlog(self) -> int:
        async with self._engine.connect() as conn:
            return await unpublished_count(conn)

    async def run(self) -> None:
        """Publish until cancelled. Broker or database faults are retried with backoff; the
        position moves past a row only after the broker acknowledged it (acks=all)."""
        backoff = self._settings.retry_initial_backoff_s
        while True:
            try:
                async with self._engine.connect() as lock_conn:
                    await self._hold_lock(lock_conn)
                    listener = asyncio.create_task(self._listen(), name="outbox-listener")
                    try:
                        await self._ensure_epoch()
                        await self._load_position()
                        await self._settle_in_doubt()
                        while True:
                            sent = await self.publish_pending()
                            backoff = self._settings.retry_initial_backoff_s
                            if sent == 0:
                                await self._sleep_or_wake(self._settings.outbox_poll_interval_s)
                    finally:
                        listener.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await listener
            except asyncio.CancelledError:
                await self._close_producer()
                raise
            except Exception as exc:
                log.warning(
                    "outbox relay fault, retrying",
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                    backoff_s=backoff,
                )
                await self._close_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.retry_max_backoff_s)

    async def _hold_lock(self, conn: Any) -> None:
        while not await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(RELAY_LOCK_ID))):
            await asyncio.sleep(1.0)
        await conn.commit()

    async def _listen(self) -> None:
        """Wake on every commit that queued messages, in any instance (LISTEN/NOTIFY); the
        poll interval remains the fallback while the listening connection is down."""
        import psycopg

        conninfo = libpq_url(self._engine.url.render_as_string(hide_password=False))
        backoff = self._settings.retry_initial_backoff_s
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.wake()  # whatever was committed while nobody listened
                    backoff = self._settings.retry_initial_backoff_s
                    async for _ in conn.notifies():
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox listener fault, retrying", error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.retry_max_backoff_s)

    async def _sleep_or_wake(self, timeout: float) -> None:
        # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a
        # cancellation that arrives in the same loop step as the wake-up, and the relay
        # then ran on while Service.stop() awaited it for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        self._wake.clear()

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self._settings)
            await producer.start()
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def _load_position(self) -> None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.cast(outbox_position.c.tx, sa.Text), outbox_position.c.seq).where(
                        outbox_position.c.name == _POSITION
                    )
                )
            ).first()
        self._position = (row[0], int(row[1])) if row is not None else _START
        self._already_sent.clear()

    async def _save_position(self, position: tuple[str, int]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                _SAVE_POSITION, {"name": _POSITION, "tx": position[0], "seq": position[1]}
            )
        self._position = position

    async def _pending(self, limit: int) -> Sequence[Any]:
        tx, seq = self._position
        async with self._engine.connect() as conn:
            return (await conn.execute(_PENDING, {"tx": tx, "seq": seq, "limit": limit})).all()

    async def publish_pending(self) -> int:
        rows = await self._pending(self._settings.outbox_batch_size)
        if not rows:
            metrics.OUTBOX_BACKLOG.labels(self._settings.service_name).set(0)
            return 0
        skip = self._already_sent  # empty but after an interrupted batch
        to_send = [r for r in rows if r.event_id not in skip] if skip else rows
        new_topics = {r.topic for r in to_send} - self._known_topics
        if new_topics:
            await ensure_topics(self._settings, sorted(new_topics))
            self._known_topics |= new_topics
        producer = await self._get_producer()
        sent = iter(await _send_in_batches(producer, to_send))
        results = [None if r.event_id in skip else next(sent) for r in rows] if skip else list(sent)
        # Move past the prefix that the broker acknowledged; the rest is retried from the
        # first failure so that order per key is kept.
        done = 0
        for res in results:
            if isinstance(res, BaseException):
                break
            done += 1
        if done:
            last = rows[done - 1]
            await self._save_position((last.tx, last.seq))
            if skip:
                self._already_sent = skip - {r.event_id for r in rows[:done]}
            # One counter update per topic and round, not per message.
            for topic, count in Counter(r.topic for r in rows[:done]).items():
                metrics.MESSAGES_OUT.labels(self._settings.service_name, topic).inc(count)
            self.published += done
        if done < len(rows):
            failure = next(res for res in results if isinstance(res, BaseException))
            raise failure
        return done

    # --- a batch interrupted between the broker's ack and our update ----------------------

    async def _settle_in_doubt(self) -> None:
        """Pass over rows that the broker already has although the position never moved
        past them.

        A crash (or a fault) between the broker's ack and saving the position leaves the batch
        in flight behind the position: publishing it again would duplicate it. Only that batch
        can be in doubt and it is the first rows after the position (rows committed since
        sort after it), nothing of ours was written after it, so its records are within the
        last ``outbox_batch_size`` offsets of each partition; they are found by their event id.
        """
        window = self._settings.outbox_batch_size
        rows = await self._pending(window)
        if not rows:
            return
        on_broker = await self._event_ids_at_end(
            {r.topic for r in rows}, {r.event_id for r in rows}, window
        )
        if not on_broker:
            return
        prefix = 0
        while prefix < len(rows) and rows[prefix].event_id in on_broker:
            prefix += 1
        if prefix:
            await self._save_position((rows[prefix - 1].tx, rows[prefix - 1].seq))
        # Acknowledged out of order (batches of different partitions): skipped when reached.
        self._already_sent = on_broker - {r.event_id for r in rows[:prefix]}
        log.warning("outbox rows found on the broker already, not sent again", count=len(on_broker))

    async def _event_ids_at_end(self, topics: set[str], wanted: set[str], window: int) -> set[str]:
        consumer = AIOKafkaConsumer(
            **connection_args(self._settings), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            await refresh_metadata(consumer)
            partitions = [
                TopicPartition(topic, p)
                for topic in sorted(topics)
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                return set()
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(starts[tp], ends[tp] - window))
            found: set[str] = set()
            pending = {tp for tp in partitions if ends[tp] > starts[tp]}
            deadline = asyncio.get_running_loop().time() + 30.0
            while pending and asyncio.get_running_loop().time() < deadline:
                batches = await consumer.getmany(*pending, timeout_ms=1_000, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        event_id = dict(record.headers or ()).get(EVENT_ID_HEADER)
                        if event_id is not None and event_id.decode() in wanted:
                            found.add(event_id.decode())
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return found
        finally:
            await consumer.stop()

    # --- a broker that forgot everything -------------------------------------------------

    def _epoch_topic(self) -> str:
        return f"eropaf.epoch.{self._settings.service_name}"

    async def _ensure_epoch(self) -> None:
        """The local broker keeps nothing across restarts. Each service leaves an epoch
        marker on the broker; if the marker we remember is gone, the broker is new and every
        retained event is queued for publishing again (consumers drop what they had)."""
        topic = self._epoch_topic()
        async with self._engine.connect() as conn:
            remembered = await conn.scalar(
                sa.select(broker_epoch.c.epoch).where(broker_epoch.c.name == "broker")
            )
        on_broker = await self._read_epoch_marker(topic)
        if remembered is not None and remembered == on_broker:
            return
        epoch = str(uuid.uuid4())
        async with self._engine.begin() as conn:
            requeued = 0
            if remembered is not None:
                requeued = int(
                    await conn.scalar(sa.select(sa.func.count()).select_from(outbox_message)) or 0
                )
                await conn.execute(
                    _SAVE_POSITION, {"name": _POSITION, "tx": _START[0], "seq": _START[1]}
                )
            stmt = pg_insert(broker_epoch).values(name="broker", epoch=epoch)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"], set_={"epoch": epoch, "seen_at": sa.func.now()}
                )
            )
        await ensure_topics(self._settings, [topic], partitions=1, configs={"retention.ms": "-1"})
        producer = await self._get_producer()
        await (await producer.send(topic, value=epoch.encode(), key=b"epoch"))
        if remembered is not None:
            log.warning("broker is new: retained outbox queued again", requeued=requeued)

    async def _read_epoch_marker(self, topic: str) -> str | None:
        consumer = AIOKafkaConsumer(
            **connection_args(self._settings), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await refresh_metadata(consumer)
                partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                return None
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                return None
            consumer.seek(tp, end - 1)
            batch = await consumer.getmany(tp, timeout_ms=5_000)
            records = batch.get(tp, [])
            return records[-1].value.decode() if records else None
        finally:
            await consumer.stop()

    # --- retention ------------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self._settings.outbox_retention_days)
        async with self._engine.begin() as conn:
            result = await conn.execute(_PURGE, {"name": _POSITION, "cutoff": cutoff})
        return int(result.rowcount or 0)


async def _send_in_batches(producer: AIOKafkaProducer, rows: Sequence[Any]) -> list[Any]:
    """Send rows as record batches built per partition; one result per row, in row order
    (``None`` when the broker acknowledged it, else the exception).

    ``producer.send`` costs a future, a partitioner lookup and an accumulator round per
    record; a batch is one future for hundreds of records. Partitions are chosen as ``send``
    would (murmur2 of the key), and batches of a partition are queued in row order, so the
    order per key is the same.
    """
    builders: dict[tuple[str, int], Any] = {}
    sent: list[tuple[Any, list[int]]] = []  # (future, row indexes) per submitted batch
    members: dict[tuple[str, int], list[int]] = {}
    partitions: dict[str, tuple[list[int], list[int]]] = {}

    async def submit(tp: tuple[str, int]) -> None:
        future = await producer.send_batch(builders.pop(tp), tp[0], partition=tp[1])
        sent.append((future, members.pop(tp)))

    for index, r in enumerate(rows):
        if r.topic not in partitions:
            known = sorted(await producer.partitions_for(r.topic))
            available = sorted(
                producer.client.cluster.available_partitions_for_topic(r.topic) or known
            )
            partitions[r.topic] = (known, available)
        key = r.key.encode() if r.key is not None else None
        tp = (r.topic, partition_for(key, *partitions[r.topic]))
        headers = [*((k, v.encode()) for k, v in r.headers), (EVENT_ID_HEADER, r.event_id.encode())]
        while True:
            builder = builders.get(tp)
            if builder is None:
                builder = builders[tp] = producer.create_batch()
                members[tp] = []
            if builder.append(key=key, value=r.value, timestamp=None, headers=headers) is not None:
                members[tp].append(index)
                break
            if not members[tp]:
                raise ValueError(f"outbox row {r.seq} is larger than a record batch")
            await submit(tp)  # full: send it, the row goes into a new one
    for tp in list(builders):
        await submit(tp)
    results: list[Any] = [None] * len(rows)
    outcomes = await asyncio.gather(*(f for f, _ in sent), return_exceptions=True)
    for (_, indexes), outcome in zip(sent, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            for i in indexes:
                results[i] = outcome
    return results
