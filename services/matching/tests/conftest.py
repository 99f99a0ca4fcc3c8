"""Builders and a running matching service for the handler and integration tests.

Intake normalises names and addresses before it derives match tokens, so spelling variants
("van Dijk" / "Van  Dijk", "3431 ab" / "3431AB") reach matching as *equal* tokens; the tests
therefore feed equal tokens for one person or address and different ones otherwise.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseClosed, MatchTokenKind, SignalAccepted, SignalResolved
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC, INTAKE_SIGNALS_TOPIC
from eropaf_matching.adapters.repository import load_cases
from eropaf_matching.adapters.tables import case_signal, match_signal
from eropaf_matching.app import MatchingSettings, build
from eropaf_matching.domain.cases import Case
from eropaf_platform.service import Service
from eropaf_platform.tables import outbox_message

GEMEENTE_BY_PC4 = {"3431": "0356", "3432": "0356", "3401": "0353", "3991": "0321"}


def pseudo(*parts: str) -> str:
    """A keyed-pseudonym look-alike (hex) for test data."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class Household:
    """Pseudonymous test data for one scenario; ``salt`` keeps runs on one broker apart."""

    salt: str

    def ref(self, name: str) -> str:
        return pseudo(self.salt, "signal", name)

    def token(self, kind: str, value: str) -> str:
        return pseudo(self.salt, "token", kind, value)

    def accepted(
        self,
        name: str,
        *,
        partner: str = "mitros",
        type: Signaalpartner = Signaalpartner.HUUR,
        pc4: str = "3431",
        bedrag: int | None = 500,
        datum: date = date(2026, 10, 5),
        bsn: str | None = None,
        surname: str | None = None,
        initials: str | None = None,
        address: str | None = None,
        crisis: bool = False,
        revision: int = 1,
        id: str | None = None,
    ) -> Envelope:
        tokens: dict[MatchTokenKind, str] = {}
        for kind, value in (
            (MatchTokenKind.BSN, bsn),
            (MatchTokenKind.BIRTH_SURNAME, surname),
            (MatchTokenKind.BIRTH_INITIALS_ADDRESS, initials),
            (MatchTokenKind.ADDRESS, address),
        ):
            if value is not None:
                tokens[kind] = self.token(kind.value, value)
        payload = SignalAccepted(
            signal_ref=self.ref(name),
            partner_code=partner,
            partner_type=type,
            gemeentecode=GEMEENTE_BY_PC4[pc4],
            postcode_area=pc4,
            bedrag=bedrag,
            signaaldatum=datum,
            crisissignaal=crisis,
            match_tokens=tokens,
            received_at=datetime.combine(datum, time(9, 0), tzinfo=UTC),
            revision=revision,
        )
        return Envelope.wrap(payload, key=payload.signal_ref, id=id)

    def resolved(self, name: str, on: date) -> Envelope:
        payload = SignalResolved(signal_ref=self.ref(name), datum_opgelost=on)
        return Envelope.wrap(payload, key=payload.signal_ref)


@pytest.fixture
def household() -> Household:
    return Household(uuid.uuid4().hex)


async def publish(bootstrap: str, *envelopes: Envelope, raw: list[bytes] | None = None) -> None:
    """Publish to intake's signals topic as intake's outbox relay would (key = signal_ref)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        # Send all, then wait for all: in order per key, and fast for large scenarios.
        sent = [
            await producer.send(
                INTAKE_SIGNALS_TOPIC, e.to_bytes(), key=e.key.encode(), headers=e.headers()
            )
            for e in envelopes
        ]
        for future in sent:
            await future
        for value in raw or []:
            await producer.send_and_wait(INTAKE_SIGNALS_TOPIC, value, key=b"garbage")
    finally:
        await producer.stop()


def matching_settings(bootstrap: str, database_url: str, **extra: Any) -> MatchingSettings:
    return MatchingSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        dev_mode=True,
        kafka_topic_partitions=2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.5,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
        **extra,
    )


StartMatching = Callable[[], Awaitable[Service]]


@pytest.fixture(scope="module")
def matching_options() -> dict[str, Any]:
    """Extra settings for the module's service (a module may override this fixture)."""
    return {}


@pytest.fixture(scope="module")
async def matching(
    kafka_bootstrap_servers: str, _database_registry: Any, matching_options: dict[str, Any]
) -> AsyncIterator[Service]:
    """One running matching service (own database, own consumer groups) per test module."""
    db = _database_registry.create("eropaf_matching_test")
    service = build(
        matching_settings(kafka_bootstrap_servers, db, **matching_options),
        group_prefix=f"test-{uuid.uuid4().hex[:8]}",
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


# --- looking at the results ----------------------------------------------------------


async def case_of(service: Service, signal_ref: str) -> Case | None:
    async with service.sessions() as s:
        case_id = await s.scalar(
            sa.select(case_signal.c.case_id).where(case_signal.c.signal_ref == signal_ref)
        )
        if case_id is None:
            return None
        cases = await load_cases(s, case_ids=[case_id])
    return cases[0] if cases else None


async def assignments(service: Service, *refs: str) -> dict[str, tuple[str, str]]:
    async with service.sessions() as s:
        rows = await s.execute(
            sa.select(
                match_signal.c.signal_ref, match_signal.c.person_id, match_signal.c.household_id
            ).where(match_signal.c.signal_ref.in_(refs))
        )
        return {r.signal_ref: (r.person_id, r.household_id) for r in rows}


@dataclass(frozen=True)
class Queued:
    event_id: str
    topic: str
    key: str | None
    envelope: dict[str, Any]

    def payload(self, model: type[BaseModel]) -> Any:
        return Envelope.model_validate(self.envelope).payload(model)


async def outbox_events(service: Service, *, containing: str = "") -> list[Queued]:
    """Events the service queued (in order), optionally only those whose id contains a text."""
    async with service.sessions() as s:
        rows = await s.execute(
            sa.select(
                outbox_message.c.event_id,
                outbox_message.c.topic,
                outbox_message.c.key,
                outbox_message.c.value,
            )
            .where(outbox_message.c.event_id.contains(containing))
            .order_by(outbox_message.c.seq)
        )
        out = []
        for r in rows:
            try:
                body = json.loads(r.value)
            except ValueError:
                body = {}
            out.append(Queued(r.event_id, r.topic, r.key, body))
        return out


async def closure_told(service: Service, case_id: str) -> CaseClosed:
    """The closure of a case as matching queued it, checked to be told both ways: on the cases
    topic for scheduling and notification, and the same event under its own id on the
    matching -> intake topic for intake, keyed by the household like the creditor feedback
    there."""
    closed = await outbox_events(service, containing=f"case-closed:{case_id}")
    assert sorted((e.topic, e.event_id) for e in closed) == [
        (CASES_TOPIC, f"case-closed:{case_id}"),
        (CREDITOR_FEEDBACK_TOPIC, f"case-closed:{case_id}:intake"),
    ]
    downstream, for_intake = sorted(closed, key=lambda e: e.topic != CASES_TOPIC)
    event = downstream.payload(CaseClosed)
    assert for_intake.payload(CaseClosed) == event
    assert downstream.envelope["type"] == for_intake.envelope["type"] == CaseClosed.EVENT_TYPE
    assert downstream.key == for_intake.key == event.household_ref
    return event
