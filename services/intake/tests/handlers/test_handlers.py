"""Intake's subscribers against PostgreSQL, fed `Incoming` records directly (no broker): what
they store and which outbox messages they queue."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.ddas import Eindresultaat
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseClosed, CreditorFeedbackRequested, CreditorStatus
from eropaf_contracts.topics import CREDITOR_FEEDBACK_TOPIC, INTAKE_SIGNALS_TOPIC, feedback_topic
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.tables import signal as signal_table
from eropaf_intake.app import MIGRATIONS, IntakeSettings
from eropaf_intake.handlers import PartnerSignalsHandler, handle_matching_events
from eropaf_platform.consumer import Incoming
from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
from eropaf_platform.tables import outbox_message
from eropaf_platform.testing.fixtures import DatabaseRegistry

pytestmark = pytest.mark.integration

CODE = "handlers-corp"
PSEUDONYM_KEY = "handler-test-pseudonym-key-" + "y" * 32


def settings(database_url: str = "postgresql+psycopg://unused/unused") -> IntakeSettings:
    return IntakeSettings(
        database_url=database_url,  # unused by the handlers: they get their session
        pseudonym_key=PSEUDONYM_KEY,
        master_keys="h1:" + base64.b64encode(b"h" * 32).decode(),
        internal_api_token="handler-token",
    )


class Db:
    def __init__(
        self, url: str, sessions: async_sessionmaker[AsyncSession], key: Any, kid: str
    ) -> None:
        self.url = url
        self.sessions = sessions
        self.key = key
        self.kid = kid
        self.offset = 0

    async def run(self, handler: Any, records: Sequence[Incoming]) -> None:
        async with transaction(self.sessions) as session:
            await handler(session, records)

    async def outbox(self, topic: str) -> list[Any]:
        async with transaction(self.sessions) as session:
            rows = await session.execute(
                sa.select(outbox_message)
                .where(outbox_message.c.topic == topic)
                .order_by(outbox_message.c.seq)
            )
            return list(rows.mappings().all())

    def partner_record(self, value: bytes, *, ce_id: str | None, signed: bool = True) -> Incoming:
        self.offset += 1
        headers = {
            "ce_type": b"nl.vroegsignalering.signal.submitted.v1",
            "ce_source": CODE.encode(),
        }
        if ce_id:
            headers["ce_id"] = ce_id.encode()
        if signed:
            headers["ce_signature"] = jws.sign_detached(value, self.key, self.kid).encode()
        return Incoming(
            topic=f"arrears.signals.{CODE}",
            partition=0,
            offset=self.offset,
            key=None,
            value=value,
            headers=headers,
            timestamp_ms=0,
        )


def envelope_record(topic: str, envelope: Envelope) -> Incoming:
    return Incoming(
        topic=topic,
        partition=0,
        offset=0,
        key=envelope.key.encode(),
        value=envelope.to_bytes(),
        headers=dict(envelope.headers()),
        timestamp_ms=0,
    )


@pytest.fixture(scope="module")
async def db(postgres_server_url: str) -> AsyncIterator[Db]:
    registry = DatabaseRegistry(postgres_server_url)
    url = registry.create("eropaf_intake_handlers")
    await migrate_async(url, MIGRATIONS, service="intake")
    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with transaction(sessions) as session:
        onboarded = await partners.onboard(session, CODE, "Corp", ["Huur"])
    assert onboarded.private_key_pem is not None
    try:
        yield Db(url, sessions, jws.private_key_from_pem(onboarded.private_key_pem), onboarded.kid)
    finally:
        await engine.dispose()
        registry.drop_all()


@pytest.fixture(scope="module")
def handler() -> PartnerSignalsHandler:
    return PartnerSignalsHandler(settings().intake_config())


def a_signal(signal_id: str) -> dict[str, Any]:
    return {
        "ID": signal_id,
        "bedrag": 120,
        "ontstaansdatum": "2026-08-01",
        "signaaldatum": datetime.now(UTC).date().isoformat(),
        "signaalpartner": {"type": "Huur"},
        "client": {
            "Burgerservicenummer": "111222333",
            "Achternaam": "Dijk",
            "Geboortedatum": "1980-04-01",
            "Postcode": "3431 AB",
            "Huisnummer": "1",
        },
    }


async def test_one_feedback_per_message_keyed_as_the_contract_says(
    db: Db, handler: PartnerSignalsHandler
) -> None:
    good = json.dumps(a_signal("H-1")).encode()
    records = [
        db.partner_record(good, ce_id="ce-h-1"),
        db.partner_record(b"not json", ce_id="ce-h-2"),
        db.partner_record(b"not json either", ce_id=None),  # no ID, no ce_id: topic:part:offset
        db.partner_record(good, ce_id="ce-h-4", signed=False),
    ]
    await db.run(handler, records)

    feedback = await db.outbox(feedback_topic(CODE))
    bodies = [json.loads(r["value"]) for r in feedback]
    assert [(b["ce_id"], b["status"]) for b in bodies] == [
        ("ce-h-1", "accepted"),
        ("ce-h-2", "rejected"),
        (None, "rejected"),
        ("ce-h-4", "rejected"),
    ]
    assert [r["key"] for r in feedback] == [
        "H-1",
        "ce-h-2",
        f"arrears.signals.{CODE}:0:{records[2].offset}",
        "ce-h-4",  # unauthenticated content is not read, not even its ID
    ]
    assert {r["code"] for r in bodies[3]["reasons"]} == {"missing_signature"}
    events = await db.outbox(INTAKE_SIGNALS_TOPIC)
    assert [Envelope.from_bytes(e["value"]).type for e in events] == [
        "eropaf.intake.signal.accepted"
    ]

    # The same message again (a redelivery after a crash) queues no second feedback.
    await db.run(handler, records[:1])
    again = [json.loads(r["value"]) for r in await db.outbox(feedback_topic(CODE))]
    assert sum(1 for b in again if b["ce_id"] == "ce-h-1") == 1


async def test_creditor_feedback_and_case_closure(db: Db, handler: PartnerSignalsHandler) -> None:
    await db.run(handler, [db.partner_record(json.dumps(a_signal("H-9")).encode(), ce_id="ce-9")])
    async with transaction(db.sessions) as session:
        ref = await session.scalar(
            sa.select(signal_table.c.signal_ref).where(signal_table.c.signal_id == "H-9")
        )
    assert ref is not None

    request = CreditorFeedbackRequested(signal_ref=ref, status=CreditorStatus.PICKED_UP)
    unknown = CreditorFeedbackRequested(signal_ref="ab" * 32, status=CreditorStatus.NOT_PICKED_UP)
    await db.run(
        handle_matching_events,
        [
            envelope_record(CREDITOR_FEEDBACK_TOPIC, Envelope.wrap(request, key=ref)),
            envelope_record(CREDITOR_FEEDBACK_TOPIC, Envelope.wrap(unknown, key="x")),
        ],
    )
    lifecycle = [
        json.loads(r["value"])
        for r in await db.outbox(feedback_topic(CODE))
        if json.loads(r["value"])["status"] == "picked_up"
    ]
    assert lifecycle == [
        {
            "ID": "H-9",
            "ce_id": None,
            "status": "picked_up",
            "reasons": [],
            "time": lifecycle[0]["time"],
        }
    ]
    assert not any(
        json.loads(r["value"])["status"] == "not_picked_up"
        for r in await db.outbox(feedback_topic(CODE))
    )

    closed_at = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    closed = CaseClosed(
        case_ref="cd" * 16,
        household_ref="ef" * 16,
        gemeentecode="0356",
        team="wil",
        signal_refs=[ref],
        resultaat=Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN,
        closed_at=closed_at,
    )
    # Closures come on the matching -> intake topic too (intake does not read the cases topic).
    await db.run(
        handle_matching_events,
        [envelope_record(CREDITOR_FEEDBACK_TOPIC, Envelope.wrap(closed, key="k"))],
    )
    async with transaction(db.sessions) as session:
        stored = await session.scalar(
            sa.select(signal_table.c.case_closed_at).where(signal_table.c.signal_ref == ref)
        )
    assert stored == closed_at


async def test_a_dead_lettered_partner_message_carries_its_personal_data_encrypted(
    db: Db,
) -> None:
    from eropaf_intake.adapters import crypto
    from eropaf_intake.handlers import dead_letter_context, partner_dead_letter_seal
    from eropaf_platform.consumer import BatchProcessor, PoisonMessage

    async def broken(session: AsyncSession, messages: Sequence[Incoming]) -> None:
        raise PoisonMessage("a bug, say")

    config = settings().intake_config()
    processor = BatchProcessor(
        consumer="intake-dlq-test",
        handler=broken,
        sessions=db.sessions,
        settings=settings().model_copy(update={"retry_initial_backoff_s": 0.01}),
        seal_dead_letter=partner_dead_letter_seal(config.keyring),
    )
    value = json.dumps(a_signal("H-DLQ-1")).encode()
    record = db.partner_record(value, ce_id="ce-dlq-1")
    await processor.process([record])

    [dead] = await db.outbox(f"{record.topic}.dlq")
    headers = dict(dead["headers"])
    assert headers["dlq_sealed"] == "true"
    assert headers["dlq_error_class"] == "PoisonMessage"
    for personal in (b"111222333", b"Dijk", b"1980-04-01", b"3431"):
        assert personal not in dead["value"]
    context = dead_letter_context(
        headers["dlq_original_topic"],
        int(headers["dlq_original_partition"]),
        int(headers["dlq_original_offset"]),
    )
    assert crypto.unseal(config.keyring, dead["value"], context) == value
    with pytest.raises(crypto.CryptoError):  # bound to where it came from
        crypto.unseal(config.keyring, dead["value"], dead_letter_context(record.topic, 0, 999))


def _skipped(consumer: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "eropaf_messages_skipped_total", {"service": "intake", "consumer": consumer}
    )
    return value or 0.0


async def test_one_consumer_handles_feedback_and_closures_and_skips_other_types(
    db: Db, handler: PartnerSignalsHandler
) -> None:
    """The consumer as intake wires it, on matching's topic for intake: both types in one
    batch (one transaction), each message recorded as processed once; any other type skipped
    before a transaction, without a processed record."""
    from eropaf_contracts.events import CaseOpened
    from eropaf_intake.app import build
    from eropaf_platform.tables import processed_message

    await db.run(handler, [db.partner_record(json.dumps(a_signal("H-20")).encode(), ce_id="ce-20")])
    async with transaction(db.sessions) as session:
        ref = await session.scalar(
            sa.select(signal_table.c.signal_ref).where(signal_table.c.signal_id == "H-20")
        )
    assert ref is not None

    service, _ = build(settings(db.url))
    consumer = "intake-creditor-feedback"
    processor = service.processors[consumer]
    closed_at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    closed = CaseClosed(
        case_ref="a1" * 16,
        household_ref="b2" * 16,
        gemeentecode="0356",
        team="wil",
        signal_refs=[ref],
        resultaat=Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN,
        closed_at=closed_at,
    )
    other = CaseOpened(
        case_ref="a1" * 16,
        household_ref="b2" * 16,
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        signal_refs=[ref],
        partner_types=[],
        total_bedrag=None,
        crisis=False,
        opened_at=closed_at,
    )
    batch = [
        envelope_record(
            CREDITOR_FEEDBACK_TOPIC,
            Envelope.wrap(
                CreditorFeedbackRequested(signal_ref=ref, status=CreditorStatus.NOT_PICKED_UP),
                key="b2" * 16,
                id=f"creditor-feedback:{ref}:not_picked_up",
            ),
        ),
        envelope_record(
            CREDITOR_FEEDBACK_TOPIC,
            Envelope.wrap(other, key="b2" * 16, id="not-for-intake"),
        ),
        envelope_record(
            CREDITOR_FEEDBACK_TOPIC,
            Envelope.wrap(closed, key="b2" * 16, id=f"case-closed:{'a1' * 16}:intake"),
        ),
    ]
    skipped_before = _skipped(consumer)
    try:
        await processor.process(batch)
        await processor.process(batch)  # redelivered: nothing twice
    finally:
        await service.engine.dispose()

    assert _skipped(consumer) - skipped_before == 2  # the CaseOpened, each time
    async with transaction(db.sessions) as session:
        stored = await session.scalar(
            sa.select(signal_table.c.case_closed_at).where(signal_table.c.signal_ref == ref)
        )
        processed = set(
            (
                await session.execute(
                    sa.select(processed_message.c.message_id).where(
                        processed_message.c.consumer == consumer
                    )
                )
            ).scalars()
        )
    assert stored == closed_at
    assert {f"creditor-feedback:{ref}:not_picked_up", f"case-closed:{'a1' * 16}:intake"} <= (
        processed
    )
    assert "not-for-intake" not in processed
    told = [
        json.loads(r["value"])
        for r in await db.outbox(feedback_topic(CODE))
        if json.loads(r["value"])["ID"] == "H-20"
    ]
    assert [t["status"] for t in told] == ["accepted", "not_picked_up"]
