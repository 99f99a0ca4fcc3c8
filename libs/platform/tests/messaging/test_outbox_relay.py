"""The outbox relay's position, against the real broker and real PostgreSQL: no row passed
over when writers commit out of order, no row sent twice after an interrupted batch, the
retention purge keeps what is not yet published."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_platform import outbox
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.outbox import EVENT_ID_HEADER, OutboxRelay, OutgoingMessage
from eropaf_platform.settings import ServiceSettings
from eropaf_platform.tables import outbox_message
from eropaf_platform.testing.wait import wait_until_async

from .support import read_all, settings_for

pytestmark = pytest.mark.integration


def message(topic: str, n: int) -> OutgoingMessage:
    return OutgoingMessage(topic=topic, key=f"k{n % 3}", value=f"m{n}".encode(), event_id=f"e{n}")


@dataclass
class Outbox:
    topic: str
    engine: Any
    sessions: Any
    settings: ServiceSettings


@asynccontextmanager
async def fresh_outbox(bootstrap: str, db: str, **settings: Any) -> AsyncIterator[Outbox]:
    """A migrated fresh database and a topic of its own; relays are the test's to make."""
    await migrate_async(db)
    engine = make_engine(db)
    try:
        yield Outbox(
            topic=f"test.outbox.{uuid.uuid4().hex[:8]}",
            engine=engine,
            sessions=make_sessions(engine),
            settings=settings_for("relay", bootstrap, db, **settings),
        )
    finally:
        await engine.dispose()


async def publish(relay: OutboxRelay, expect: int) -> int:
    """Publish until ``expect`` rows went out. The horizon is the whole server's oldest running
    transaction: another test's transaction may hold rows back for a moment."""
    sent = 0

    async def all_sent() -> bool:
        nonlocal sent
        sent += await relay.publish_pending()
        return sent >= expect

    await wait_until_async(all_sent, timeout=10)
    return sent


async def pending(relay: OutboxRelay, expect: int) -> Sequence[Any]:
    """The first ``expect`` rows after the position, once the horizon lets them be seen."""
    return await wait_until_async(lambda: _when_full(relay._pending(expect), expect), timeout=10)


async def _when_full(rows: Awaitable[Sequence[Any]], expect: int) -> Sequence[Any] | None:
    got = await rows
    return got if len(got) == expect else None


async def published_values(bootstrap: str, topic: str, expect: int) -> list[bytes]:
    return [r.value for r in await read_all(bootstrap, topic, expect=expect, timeout=10)]


async def test_a_row_committed_after_a_later_row_is_not_passed_over(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    async with fresh_outbox(kafka_bootstrap_servers, fresh_database_url()) as box:
        relay = OutboxRelay(box.engine, box.settings)
        async with box.sessions() as early:
            await early.begin()
            await outbox.add(early, [message(box.topic, 1)])  # lower seq, still uncommitted
            async with box.sessions() as late, late.begin():
                await outbox.add(late, [message(box.topic, 2)])
            # The later row is committed, but a transaction older than it is still running:
            # what it commits would sort before, so nothing is published yet.
            assert await relay.publish_pending() == 0
            assert await relay.backlog() == 1
            await early.commit()
        assert await publish(relay, 2) == 2
        assert await relay.backlog() == 0
        assert sorted(await published_values(kafka_bootstrap_servers, box.topic, 2)) == [
            b"m1",
            b"m2",
        ]
        assert await relay.publish_pending() == 0
        await relay._close_producer()


async def test_a_batch_the_broker_has_but_the_position_missed_is_not_sent_again(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    """A crash between the broker's ack and saving the position: the next relay finds those
    records on the broker by their event id and moves past them."""
    async with fresh_outbox(kafka_bootstrap_servers, fresh_database_url()) as box:
        async with box.sessions() as s, s.begin():
            await outbox.add(s, [message(box.topic, n) for n in range(6)])
        crashed = OutboxRelay(box.engine, box.settings)
        rows = await pending(crashed, 4)
        producer = await crashed._get_producer()
        # The first four reach the broker (as the interrupted relay sent them); no position.
        assert await outbox._send_in_batches(producer, rows) == [None] * 4
        await crashed._close_producer()

        relay = OutboxRelay(box.engine, box.settings)
        await relay._load_position()
        await relay._settle_in_doubt()
        assert await relay.backlog() == 2
        assert await publish(relay, 2) == 2
        records = await read_all(kafka_bootstrap_servers, box.topic, expect=6, timeout=10)
        assert sorted(r.value for r in records) == [f"m{n}".encode() for n in range(6)]
        assert len({dict(r.headers)[EVENT_ID_HEADER] for r in records}) == 6
        await relay._close_producer()


async def test_purge_keeps_rows_not_yet_published_and_recent_ones(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    async with fresh_outbox(
        kafka_bootstrap_servers, fresh_database_url(), outbox_batch_size=2
    ) as box:
        relay = OutboxRelay(box.engine, box.settings)
        async with box.sessions() as s, s.begin():
            await outbox.add(s, [message(box.topic, n) for n in range(3)])
        await pending(relay, 2)
        assert await relay.publish_pending() == 2  # one batch: e0, e1 published, e2 not
        # e0 (published) and e2 (not) are past the retention period, e1 (published) is not.
        old = sa.func.now() - timedelta(days=30 * box.settings.outbox_retention_days)
        async with box.engine.begin() as conn:
            await conn.execute(
                sa.update(outbox_message)
                .where(outbox_message.c.event_id.in_(["e0", "e2"]))
                .values(created_at=old)
            )
        assert await relay.purge(now=datetime.now(UTC)) == 1
        async with box.engine.connect() as conn:
            result = await conn.execute(
                sa.select(outbox_message.c.event_id).order_by(outbox_message.c.seq)
            )
            assert result.scalars().all() == ["e1", "e2"]
        assert await publish(relay, 1) == 1
        await relay._close_producer()


async def test_upgrade_carries_on_before_the_first_row_not_yet_published(
    fresh_database_url: Callable[[], str],
) -> None:
    """Migration platform_0003 turns the published marks of an existing outbox into the
    relay's position: rows published before the first unpublished one are not sent again."""
    import asyncio

    from alembic import command

    from eropaf_platform.db import MIGRATIONS_DIR, _alembic_config

    db = fresh_database_url()
    config = _alembic_config(MIGRATIONS_DIR, db, "alembic_version_platform")
    await asyncio.to_thread(command.upgrade, config, "platform_0002")
    engine = make_engine(db)
    try:
        async with engine.begin() as conn:
            for n in range(5):
                await conn.execute(
                    sa.text(
                        "INSERT INTO outbox_message (event_id, topic, key, value, published_at)"
                        " VALUES (:e, 't', 'k', '\\x00', CASE WHEN :n < 3 THEN now() END)"
                    ),
                    {"e": f"e{n}", "n": n},
                )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            assert await outbox.unpublished_count(conn) == 2
    finally:
        await engine.dispose()


async def test_upgrade_keeps_the_headers_of_rows_not_yet_published(
    fresh_database_url: Callable[[], str],
) -> None:
    """Migration platform_0004 (headers json, not jsonb) keeps queued rows' headers as they
    were, in order, and can be undone."""
    import asyncio

    from alembic import command

    from eropaf_platform.db import MIGRATIONS_DIR, _alembic_config

    db = fresh_database_url()
    config = _alembic_config(MIGRATIONS_DIR, db, "alembic_version_platform")
    await asyncio.to_thread(command.upgrade, config, "platform_0003")
    headers = [["ce_type", "eropaf.test"], ["ce_id", "e0"], ["ce_source", "eropaf-test"]]
    engine = make_engine(db)
    column_type = sa.text(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = 'outbox_message' AND column_name = 'headers'"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO outbox_message (event_id, topic, key, value, headers)"
                    " VALUES ('e0', 't', 'k', '\\x00', CAST(:h AS jsonb))"
                ),
                {"h": json.dumps(headers)},
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(column_type) == "json"
            assert await conn.scalar(sa.text("SELECT headers FROM outbox_message")) == headers
            assert await outbox.unpublished_count(conn) == 1
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, config, "platform_0003")
        async with engine.connect() as conn:
            assert await conn.scalar(column_type) == "jsonb"
            assert await conn.scalar(sa.text("SELECT headers FROM outbox_message")) == headers
    finally:
        await engine.dispose()


async def test_many_messages_are_added_in_slices_in_their_order(
    fresh_database_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = fresh_database_url()
    await migrate_async(db)
    engine = make_engine(db)
    monkeypatch.setattr(outbox, "ADD_ROWS_PER_STATEMENT", 3)
    try:
        async with make_sessions(engine)() as s, s.begin():
            await outbox.add(s, [message("t", n) for n in range(8)])
            # a repeated event id is ignored, in any slice
            await outbox.add(s, [message("t", n) for n in (7, 8)])
        async with engine.connect() as conn:
            result = await conn.execute(
                sa.select(outbox_message.c.event_id).order_by(outbox_message.c.seq)
            )
            assert result.scalars().all() == [f"e{n}" for n in range(9)]
    finally:
        await engine.dispose()
