"""A tiny service used to prove the platform's delivery guarantees on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.envelope import Envelope
from eropaf_platform import outbox
from eropaf_platform.consumer import Incoming, PoisonMessage
from eropaf_platform.settings import ServiceSettings

test_metadata = sa.MetaData()
effect = sa.Table(
    "test_effect",
    test_metadata,
    sa.Column("message_id", sa.Text, primary_key=False),
    sa.Column("amount", sa.Integer, nullable=False),
)


class Deposit(BaseModel):
    EVENT_TYPE: ClassVar[str] = "test.deposit"
    VERSION: ClassVar[int] = 1
    amount: int


class Recorded(BaseModel):
    EVENT_TYPE: ClassVar[str] = "test.recorded"
    VERSION: ClassVar[int] = 1
    amount: int


def settings_for(service: str, bootstrap: str, database_url: str, **extra: Any) -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        kafka_topic_partitions=2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.5,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
        **extra,
    )


@dataclass
class LedgerHandler:
    """Records each deposit (a row) and emits a ``Recorded`` event through the outbox."""

    out_topic: str
    calls: int = 0
    before_effect: Callable[[AsyncSession, Sequence[Incoming]], Awaitable[None]] | None = None
    seen_batches: list[int] = field(default_factory=list)

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        self.calls += 1
        self.seen_batches.append(len(messages))
        if self.before_effect is not None:
            await self.before_effect(session, messages)
        for m in messages:
            env = m.envelope()
            deposit = env.payload(Deposit)
            if deposit.amount < 0:
                raise ValueError("negative deposit")  # a bug-like, non-transient error
            await session.execute(
                sa.insert(effect).values(message_id=env.id, amount=deposit.amount)
            )
            await outbox.emit(
                session,
                self.out_topic,
                env.follow(Recorded(amount=deposit.amount), id=f"rec:{env.id}"),
            )


async def create_effect_table(database_url: str) -> None:
    from eropaf_platform.db import make_engine

    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)  # test-only table
    await engine.dispose()


async def count_effects(sessions: Any) -> int:
    async with sessions() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(effect)) or 0)


async def produce(
    bootstrap: str, topic: str, items: list[tuple[str | None, bytes, list[tuple[str, bytes]]]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in items:
            await producer.send_and_wait(
                topic, value, key=key.encode() if key else None, headers=headers
            )
    finally:
        await producer.stop()


def deposit_message(
    amount: int, *, id: str | None = None
) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    env = Envelope.wrap(Deposit(amount=amount), key="acct-1", id=id or str(uuid.uuid4()))
    return env.key, env.to_bytes(), env.headers()


async def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[Any]:
    """Read a topic from the start until ``expect`` records arrived (or the deadline)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expect and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        # a short grace read shows whether more than expected arrived
        batch = await consumer.getmany(timeout_ms=300)
        for recs in batch.values():
            records.extend(recs)
    finally:
        await consumer.stop()
    return records


__all__ = ["PoisonMessage"]
