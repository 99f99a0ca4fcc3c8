"""Case events on PostgreSQL: a batch stores exactly what the same events one by one store
(the repository's bulk reads and writes, re-keying composed in SQL), and a malformed message
in a batch goes to the dead-letter topic with its cause while the rest is handled."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachKind
from eropaf_contracts.topics import CASES_TOPIC
from eropaf_platform.consumer import BatchProcessor, Incoming
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.tables import outbox_message
from eropaf_scheduling.adapters.repository import SqlSchedulingRepository
from eropaf_scheduling.adapters.tables import CaseAliasRow
from eropaf_scheduling.app import MIGRATIONS, SchedulingSettings
from eropaf_scheduling.handlers import CaseEventsHandler
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import CaseEvent
from eropaf_scheduling.service_layer.unit_of_work import SqlSchedulingUnitOfWork

from ..service_layer.test_case_events import (
    CONFIG,
    NOW,
    REFS,
    Stored,
    closed,
    decided,
    events,
    stored_state,
    stored_states,
    updated,
    wrapped,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def sessions(_database_registry: Any) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = _database_registry.create("eropaf_sched_case_events")
    await migrate_async(url, MIGRATIONS, service="scheduling")
    engine = make_engine(url)
    try:
        yield make_sessions(engine)
    finally:
        await engine.dispose()


async def seed(session: AsyncSession, stored: Stored) -> None:
    fake = stored_state(stored).repo
    repo = SqlSchedulingRepository(session)
    await repo.save_cases(list(fake.cases.values()))
    await repo.save_visits(list(fake.visits.values()))
    await repo.add_attempts(fake.attempts)
    await repo.replace_backlog(fake.backlog_rows)
    if fake.aliases:
        await session.execute(
            sa.insert(CaseAliasRow.__table__),  # type: ignore[attr-defined]
            [{"old_ref": o, "case_ref": n} for o, n in fake.aliases.items()],
        )


async def stored_rows(session: AsyncSession) -> dict[str, Any]:
    async def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in (await session.execute(sa.text(sql))).all())

    published = []
    for topic, key, value in (
        await session.execute(
            sa.select(
                outbox_message.c.topic, outbox_message.c.key, outbox_message.c.value
            ).order_by(outbox_message.c.seq)
        )
    ).all():
        body = json.loads(value)
        published.append((topic, key, body["type"], body["causation_id"], body["data"]))
    return {
        "cases": await rows("SELECT * FROM sched_case"),
        "aliases": await rows("SELECT * FROM sched_case_alias"),
        "visits": await rows("SELECT * FROM sched_visit"),
        "attempts": await rows(
            "SELECT case_ref, attempt, contactsoort, datum, visit_id FROM sched_contact_attempt"
        ),
        "backlog": await rows("SELECT * FROM sched_backlog"),
        "replan": await rows("SELECT requested > planned, requested_at FROM sched_replan"),
        "published": published,
    }


async def outcome(
    sessions: async_sessionmaker[AsyncSession],
    stored: Stored,
    batches: list[list[tuple[CaseEvent, Envelope]]],
) -> dict[str, Any]:
    """What the batches store, in a transaction rolled back afterwards."""
    async with sessions() as session:
        await seed(session, stored)
        for batch in batches:
            async with session.begin_nested():
                await services.case_events(SqlSchedulingUnitOfWork(session), batch, CONFIG, NOW)
        found = await stored_rows(session)
        await session.rollback()
    return found


@settings(max_examples=40, deadline=None)
@given(stored=stored_states, sequence=st.lists(events, min_size=1, max_size=12))
async def test_a_batch_stores_what_the_events_one_by_one_store(
    sessions: async_sessionmaker[AsyncSession], stored: Stored, sequence: list[CaseEvent]
) -> None:
    items = wrapped(sequence)
    one_by_one = await outcome(sessions, stored, [[item] for item in items])
    batch = await outcome(sessions, stored, [items])
    assert batch == one_by_one


async def test_renames_merges_and_closures_in_one_batch_on_postgresql(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b, c, d = REFS[:4]
    sequence: list[CaseEvent] = [
        decided(a, OutreachKind.HOME_VISIT),
        updated(b, [a]),
        updated(c, [b]),
        updated(c, [c, d]),
        decided(a, OutreachKind.PHONE),
        closed(b),
    ]
    stored = Stored(home=(3,), backlog=(3,), ended=(), alias=None)
    found = await outcome(sessions, stored, [wrapped(sequence)])
    assert [row[0] for row in found["cases"]] == [c]
    assert sorted(found["aliases"]) == sorted([(a, c), (b, c), (d, c)])
    assert [(v[1], v[7]) for v in found["visits"]] == [(c, "cancelled")]
    assert [row[0] for row in found["backlog"]] == [c]  # d's entry went with it
    assert found == await outcome(sessions, stored, [[item] for item in wrapped(sequence)])


def incoming(envelope: Envelope, offset: int) -> Incoming:
    return Incoming(
        topic=CASES_TOPIC,
        partition=0,
        offset=offset,
        key=envelope.key.encode(),
        value=envelope.to_bytes(),
        headers=dict(envelope.headers()),
        timestamp_ms=offset,
    )


async def test_a_malformed_event_in_a_batch_is_dead_lettered_and_the_rest_handled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b = REFS[4:6]
    good = [env for _, env in wrapped([decided(a, OutreachKind.LETTER), closed(a)])]
    bad = good[0].model_copy(update={"id": "malformed-1", "data": {"case_ref": "not a ref"}})
    last = Envelope.wrap(decided(b, OutreachKind.HOME_VISIT), key=b)
    messages = [incoming(e, i) for i, e in enumerate([good[0], bad, good[1], last])]
    settings_ = SchedulingSettings(database_url="postgresql://unused/x", dev_mode=True)
    processor = BatchProcessor(
        consumer="test-case-events",
        handler=CaseEventsHandler(CONFIG),
        sessions=sessions,
        settings=settings_,
    )
    await processor.process(messages)
    async with sessions() as session:
        states: dict[str, str] = dict(
            (
                await session.execute(
                    sa.text("SELECT case_ref, state FROM sched_case WHERE case_ref = ANY(:refs)"),
                    {"refs": [a, b]},
                )
            ).all()
        )
        dead = (
            await session.execute(
                sa.select(outbox_message.c.headers).where(
                    outbox_message.c.topic == f"{CASES_TOPIC}.dlq"
                )
            )
        ).all()
    assert states == {a: "closed", b: "open"}
    [(headers,)] = dead
    found = {name: value for name, value in headers}
    assert found["dlq_error_class"] == "PoisonMessage"
    assert found["dlq_original_offset"] == "1"
    assert "outreach" in found["dlq_error_message"]  # the cause names the missing fields
