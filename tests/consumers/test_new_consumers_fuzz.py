"""Scheduling's and notification's consumers against malformed messages: each one either has
its effect, is skipped as another service's event, or lands in the topic's dead-letter queue
with its cause; none stops the consumer, and a good event after them still takes effect.

Driven in process through each service's real batch processor on PostgreSQL (no broker:
delivery itself is the platform's, proven in libs/platform/tests/messaging)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseClosed,
    CaseUpdated,
    OutreachDecided,
    StaffChanged,
    StaffRole,
    Urgency,
    VisitPlanned,
)
from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
from eropaf_platform.consumer import BatchProcessor, Incoming
from eropaf_platform.db import migrate_async
from eropaf_platform.service import Service
from eropaf_platform.tables import outbox_message

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REF = "ab" * 16


def _record(topic: str, value: bytes, headers: dict[str, bytes], offset: int) -> Incoming:
    return Incoming(
        topic=topic,
        partition=0,
        offset=offset,
        key=REF.encode(),
        value=value,
        headers=headers,
        timestamp_ms=0,
    )


def _envelope_bytes(event_type: str, data: Any) -> bytes:
    return orjson.dumps(
        {
            "id": uuid.uuid4().hex,
            "type": event_type,
            "version": 1,
            "time": "2026-06-01T08:00:00Z",
            "key": REF,
            "data": data,
        }
    )


def _examples(event_types: list[str], count: int) -> list[bytes]:
    found: list[bytes] = []
    anything = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    )
    values = st.one_of(
        st.binary(max_size=64),
        anything.map(orjson.dumps),
        st.tuples(st.sampled_from(event_types), anything).map(
            lambda t: _envelope_bytes(t[0], t[1])
        ),
    )

    @settings(max_examples=count, derandomize=True, database=None)
    @given(values)
    def collect(value: bytes) -> None:
        found.append(value)

    collect()
    return found[:count]


async def _dead_letters(service: Service, topic: str) -> int:
    async with service.sessions() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count()).where(outbox_message.c.topic == f"{topic}.dlq")
            )
            or 0
        )


def _should_die(record: Incoming, acted_on: set[str], by_header: bool) -> bool:
    """Dead-lettered unless it is an envelope of an event the service skips, or (a consumer
    that filters by header) says it is one."""
    header = record.headers.get("ce_type")
    if by_header and header is not None and header.decode() not in acted_on:
        return False
    try:
        envelope = Envelope.from_bytes(record.value)
    except ValueError:
        return True
    return envelope.type in acted_on


async def _run(
    service: Service,
    processor: BatchProcessor,
    topic: str,
    event_types: list[str],
    acted_on: set[str],
    *,
    by_header: bool,
) -> tuple[int, int]:
    values = _examples(event_types, 60)
    records = []
    for i, value in enumerate(values):
        # A malformed envelope carries the type header of what it claims to be, or none.
        headers: dict[str, bytes] = {"ce_id": f"fuzz-{topic}-{i}".encode()}  # all distinct
        if i % 2:
            headers["ce_type"] = event_types[i % len(event_types)].encode()
        records.append(_record(topic, value, headers, i))
    before = await _dead_letters(service, topic)
    await processor.process(records)
    dead = await _dead_letters(service, topic) - before
    assert dead == sum(_should_die(r, acted_on, by_header) for r in records)
    return len(records), dead


async def test_scheduling_dead_letters_what_it_cannot_read(
    fresh_database_url: Callable[[], str],
) -> None:
    from eropaf_scheduling.app import CASES_CONSUMER, MIGRATIONS, SchedulingSettings, build

    db = fresh_database_url()
    await migrate_async(db, MIGRATIONS, service="scheduling")
    settings = SchedulingSettings(
        kafka_bootstrap_servers="127.0.0.1:1", database_url=db, dev_mode=True,
        retry_initial_backoff_s=0.01, retry_max_backoff_s=0.05,
    )  # fmt: skip
    service, _config = build(settings)
    try:
        processor = service.processors[CASES_CONSUMER]
        acted_on = {OutreachDecided.EVENT_TYPE, CaseUpdated.EVENT_TYPE, CaseClosed.EVENT_TYPE}
        sent, dead = await _run(
            service,
            processor,
            CASES_TOPIC,
            [OutreachDecided.EVENT_TYPE, "eropaf.other.thing"],
            acted_on,
            by_header=False,
        )
        print(f"\nscheduling: {sent} malformed case events, {dead} dead-lettered")
        assert dead >= sent // 2
        # A good event after them still takes effect: the consumer goes on.
        good = OutreachDecided(
            case_ref=REF,
            household_ref=REF,
            gemeentecode="0356",
            team="wil",
            postcode_area="3431",
            outreach="home_visit",
            urgency=Urgency.HIGH,
            deadline=date(2026, 6, 12),
            priority=5,
            rule_ids=["crisis"],
            decided_at=NOW,
            partner_codes=["mitros"],
        )
        envelope = Envelope.wrap(good, key=REF)
        await processor.process(
            [_record(CASES_TOPIC, envelope.to_bytes(), dict(envelope.headers()), 10_000)]
        )
        async with service.sessions() as session:
            cases = await session.scalar(sa.text("SELECT count(*) FROM sched_case"))
        assert cases == 1
    finally:
        await service.engine.dispose()


async def test_notification_dead_letters_what_it_cannot_read(
    fresh_database_url: Callable[[], str],
) -> None:
    from eropaf_notification.app import MIGRATIONS, NotificationSettings, build
    from eropaf_notification.handlers import _MODELS, CONSUMER

    db = fresh_database_url()
    await migrate_async(db, MIGRATIONS, service="notification")
    settings = NotificationSettings(
        kafka_bootstrap_servers="127.0.0.1:1", database_url=db, dev_mode=True,
        retry_initial_backoff_s=0.01, retry_max_backoff_s=0.05,
    )  # fmt: skip
    service = build(settings)
    try:
        processor = service.processors[CONSUMER]
        acted_on = set(_MODELS)
        total = 0
        for topic, types in (
            (VISITS_TOPIC, [VisitPlanned.EVENT_TYPE]),
            (STAFF_TOPIC, [StaffChanged.EVENT_TYPE]),
        ):
            sent, dead = await _run(service, processor, topic, types, acted_on, by_header=True)
            total += dead
            print(f"\nnotification: {sent} malformed events on {topic}, {dead} dead-lettered")
        assert total >= 60
        staff = StaffChanged(
            code="wil-anna",
            naam="Anna",
            email="anna@wil.example",
            organisatie="wil",
            rol=StaffRole.SCHULDHULPVERLENER,
            gemeenten=["0356"],
            taal="nl",
            bericht="direct",
            changed_at=NOW,
        )
        envelope = Envelope.wrap(staff, key=staff.code)
        await processor.process(
            [_record(STAFF_TOPIC, envelope.to_bytes(), dict(envelope.headers()), 10_000)]
        )
        async with service.sessions() as session:
            members = await session.scalar(sa.text("SELECT count(*) FROM notification_staff"))
        assert members == 1
    finally:
        await service.engine.dispose()
