"""Delivery guarantees of the platform, against the real broker and real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_platform.consumer import Incoming
from eropaf_platform.db import migrate_async
from eropaf_platform.outbox import OutboxRelay
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from .support import (
    LedgerHandler,
    count_effects,
    create_effect_table,
    deposit_message,
    produce,
    read_all,
    settings_for,
)

pytestmark = pytest.mark.integration


def topics() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"test.deposits.{suffix}", f"test.recorded.{suffix}"


async def start_ledger(
    bootstrap: str, db: str, in_topic: str, out_topic: str, handler: LedgerHandler, **extra: object
) -> Service:
    service = Service(settings_for("ledger", bootstrap, db, **extra), topics=[in_topic, out_topic])
    await migrate_async(db)
    await create_effect_table(db)
    service.subscribe(in_topic, consumer="ledger", handler=handler, group_id=f"g-{in_topic}")
    await service.start()
    return service


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """Offsets the group committed on its topic (a consumer of the group, without joining it)."""
    topic = group.removeprefix("g-")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        result = {}
        for p in partitions:
            tp = TopicPartition(topic, p)
            offset = await consumer.committed(tp)
            if offset is not None and offset >= 0:
                result[tp] = offset
        return result
    finally:
        await consumer.stop()


async def test_each_message_has_one_effect_and_one_event(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    in_topic, out_topic = topics()
    handler = LedgerHandler(out_topic)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    try:
        await produce(
            kafka_bootstrap_servers, in_topic, [deposit_message(i + 1) for i in range(50)]
        )
        await wait_until_async(lambda: _count(service, 50), timeout=30)
        records = await read_all(kafka_bootstrap_servers, out_topic, expect=50)
        assert len(records) == 50
        assert max(handler.seen_batches) > 1, "messages are handled in batches"
    finally:
        await service.stop()


async def _count(service: Service, expected: int) -> bool:
    return await count_effects(service.sessions) >= expected


async def test_redelivered_message_has_no_second_effect(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    in_topic, out_topic = topics()
    handler = LedgerHandler(out_topic)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    try:
        same = deposit_message(7, id="deposit-fixed-id")
        # The same message (same own id) delivered three times, as after a broker restart.
        await produce(kafka_bootstrap_servers, in_topic, [same, same, deposit_message(8), same])
        await wait_until_async(lambda: _count(service, 2), timeout=30)
        await wait_until_async(
            lambda: _committed_all(kafka_bootstrap_servers, f"g-{in_topic}", 4), timeout=30
        )
        assert await count_effects(service.sessions) == 2
        records = await read_all(kafka_bootstrap_servers, out_topic, expect=2)
        assert len(records) == 2
    finally:
        await service.stop()


async def _committed_all(bootstrap: str, group: str, total: int) -> bool:
    offsets = await committed_offsets(bootstrap, group)
    return sum(offsets.values()) >= total


async def test_poison_message_goes_to_dlq_and_next_is_processed(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    in_topic, out_topic = topics()
    handler = LedgerHandler(out_topic)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    try:
        bad_bytes = (None, b"{not json", [("ce_id", b"garbage-1")])
        failing = deposit_message(-5)  # parses, but the handler raises every time
        await produce(kafka_bootstrap_servers, in_topic, [bad_bytes, failing, deposit_message(3)])
        await wait_until_async(lambda: _count(service, 1), timeout=30)
        dead = await read_all(kafka_bootstrap_servers, f"{in_topic}.dlq", expect=2)
        assert len(dead) == 2
        by_class = {dict(r.headers)["dlq_error_class"].decode(): dict(r.headers) for r in dead}
        assert set(by_class) == {"PoisonMessage", "ValueError"}
        unparseable = by_class["PoisonMessage"]
        assert unparseable["dlq_original_topic"].decode() == in_topic
        assert unparseable["dlq_original_offset"].decode() == "0"
        assert "dlq_original_partition" in unparseable
        assert unparseable["dlq_attempts"] == b"1"  # unparseable: no point retrying
        assert by_class["ValueError"]["dlq_attempts"] == b"3"
        assert b"negative deposit" in by_class["ValueError"]["dlq_error_message"]
        assert {r.value for r in dead} == {b"{not json", failing[1]}
        assert await count_effects(service.sessions) == 1
    finally:
        await service.stop()


async def test_transient_database_error_delays_but_never_skips(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    in_topic, out_topic = topics()
    failures = {"left": 3}

    async def lose_connection(session: AsyncSession, messages: Sequence[Incoming]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            # A real lost connection: the server ends this very session's backend.
            await session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))

    handler = LedgerHandler(out_topic, before_effect=lose_connection)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    try:
        await produce(kafka_bootstrap_servers, in_topic, [deposit_message(i + 1) for i in range(5)])
        await wait_until_async(lambda: _count(service, 5), timeout=30)
        assert failures["left"] == 0
        assert await count_effects(service.sessions) == 5
        dead = await read_all(kafka_bootstrap_servers, f"{in_topic}.dlq", expect=0, timeout=1)
        assert dead == []
    finally:
        await service.stop()


async def test_offsets_are_not_committed_before_the_effect(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    db = fresh_database_url()
    in_topic, out_topic = topics()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold(session: AsyncSession, messages: Sequence[Incoming]) -> None:
        entered.set()
        await release.wait()

    handler = LedgerHandler(out_topic, before_effect=hold)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    group = f"g-{in_topic}"
    try:
        await produce(kafka_bootstrap_servers, in_topic, [deposit_message(1)])
        await asyncio.wait_for(entered.wait(), 30)
        assert await committed_offsets(kafka_bootstrap_servers, group) == {}
        assert await count_effects(service.sessions) == 0
        release.set()
        await wait_until_async(
            lambda: _committed_all(kafka_bootstrap_servers, group, 1), timeout=30
        )
        assert await count_effects(service.sessions) == 1
    finally:
        release.set()
        await service.stop()


async def test_uncommitted_batch_is_redelivered_to_a_restarted_consumer_without_second_effect(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    """Effect durable, then the consumer dies before committing its offsets."""
    db = fresh_database_url()
    in_topic, out_topic = topics()
    handler = LedgerHandler(out_topic)
    service = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler)
    processor = service.processors["ledger"]
    original = processor.process
    done = asyncio.Event()

    async def process_then_die(messages: Sequence[Incoming]) -> None:
        await original(messages)
        done.set()
        raise asyncio.CancelledError  # dies after the commit, before the offset commit

    processor.process = process_then_die  # type: ignore[method-assign]
    await produce(kafka_bootstrap_servers, in_topic, [deposit_message(i + 1) for i in range(3)])
    await asyncio.wait_for(done.wait(), 30)
    await service.stop()
    assert await committed_offsets(kafka_bootstrap_servers, f"g-{in_topic}") == {}

    handler2 = LedgerHandler(out_topic)
    service2 = await start_ledger(kafka_bootstrap_servers, db, in_topic, out_topic, handler2)
    try:
        await wait_until_async(
            lambda: _committed_all(kafka_bootstrap_servers, f"g-{in_topic}", 3), timeout=30
        )
        assert await count_effects(service2.sessions) == 3
        records = await read_all(kafka_bootstrap_servers, out_topic, expect=3)
        assert len({r.value for r in records}) == 3
    finally:
        await service2.stop()


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import asyncio, os, sys
    from eropaf_contracts.envelope import Envelope
    from eropaf_platform import outbox
    from eropaf_platform.db import make_engine, make_sessions
    sys.path.insert(0, sys.argv[3])
    from support import Recorded

    async def main():
        engine = make_engine(sys.argv[1])
        sessions = make_sessions(engine)
        async with sessions() as s, s.begin():
            event = Envelope.wrap(Recorded(amount=42), key="k", id="crash-event")
            await outbox.emit(s, sys.argv[2], event)
        os._exit(137)  # the process dies between commit and publish

    asyncio.run(main())
    """
)


async def test_outbox_event_survives_crash_between_commit_and_publish(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    from pathlib import Path

    db = fresh_database_url()
    _, out_topic = topics()
    await migrate_async(db)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASH_AFTER_COMMIT, db, out_topic, str(Path(__file__).parent)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]

    settings = settings_for("crashy", kafka_bootstrap_servers, db)
    service = Service(settings)
    relay = OutboxRelay(service.engine, settings)
    task = asyncio.create_task(relay.run())
    try:
        records = await read_all(kafka_bootstrap_servers, out_topic, expect=1)
        assert [r.headers for r in records if dict(r.headers)["ce_id"] == b"crash-event"]
        assert len(records) == 1

        async def caught_up() -> bool:
            return await relay.backlog() == 0

        await wait_until_async(caught_up, timeout=30)
        assert relay.published == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.engine.dispose()
