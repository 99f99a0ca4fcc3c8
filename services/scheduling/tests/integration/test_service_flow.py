"""Scheduling on the real broker and PostgreSQL: matching's outreach decision in, a visit
planned, a visit not reached through the staff API, the next visit at another part of day,
and after the last attempt the case ends as ``Definitief geen contact kunnen krijgen`` (the
events matching turns into the DDAS export's contactpogingen and eindresultaat)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, OutreachKind, Urgency
from eropaf_contracts.topics import CASES_TOPIC
from eropaf_platform.db import transaction
from eropaf_platform.service import Service
from eropaf_platform.tables import outbox_message
from eropaf_platform.testing.wait import wait_until_async
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.app import SchedulingSettings, build
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.unit_of_work import SqlSchedulingUnitOfWork

from ..builders import counsellor, employee

pytestmark = pytest.mark.integration


def ref(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@pytest.fixture(scope="module")
async def scheduling(
    kafka_bootstrap_servers: str, _database_registry: Any
) -> AsyncIterator[tuple[Service, Any]]:
    db = _database_registry.create("eropaf_scheduling_test")
    settings = SchedulingSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=db,
        dev_mode=True,
        kafka_topic_partitions=2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.5,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
        replan_interval_s=0.2,
        replan_quiet_s=0.0,
        solver_deterministic_time=1.0,
    )
    service, config = build(settings, group_prefix=f"test-{uuid.uuid4().hex[:8]}")
    await service.start()
    try:
        yield service, config
    finally:
        await service.stop()


async def outbox(service: Service) -> list[tuple[str, dict[str, Any]]]:
    async with service.sessions() as s:
        rows = await s.execute(sa.select(outbox_message.c.value).order_by(outbox_message.c.seq))
        out = []
        for (value,) in rows:
            body = json.loads(value)
            out.append((body["type"], body["data"]))
        return out


async def test_not_reached_visits_until_the_last_attempt(
    scheduling: tuple[Service, Any], kafka_bootstrap_servers: str
) -> None:
    service, config = scheduling
    staff = [employee("mitros-i"), counsellor("wil-i")]
    async with transaction(service.sessions) as session:
        tokens = await services.import_roster(
            SqlSchedulingUnitOfWork(session), staff, datetime.now(UTC)
        )
    case_ref = ref(uuid.uuid4().hex)
    today = datetime.now(UTC).date()
    event = OutreachDecided(
        case_ref=case_ref,
        household_ref=ref("hh" + case_ref),
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        outreach=OutreachKind.HOME_VISIT,
        urgency=Urgency.HIGH,
        deadline=today + timedelta(days=14),
        priority=20,
        rule_ids=["huurachterstand"],
        decided_at=datetime.now(UTC),
        partner_codes=["mitros"],
    )
    envelope = Envelope.wrap(event, key=case_ref)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            CASES_TOPIC, envelope.to_bytes(), key=case_ref.encode(), headers=envelope.headers()
        )
    finally:
        await producer.stop()

    app = staff_app(config, service.unit_of_work)  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {tokens['wil-i']}"}
    parts: list[str] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        for attempt in (1, 2, 3):

            async def planned(attempt: int = attempt) -> dict[str, Any] | None:
                body = (await client.get(f"/v1/cases/{case_ref}", headers=headers)).json()
                return next(
                    (
                        v
                        for v in body.get("visits", [])
                        if v["status"] == "planned" and v["attempt"] == attempt
                    ),
                    None,
                )

            visit = await wait_until_async(planned, timeout=60, interval=0.2)
            assert visit is not None
            assert visit["dagdeel"] not in parts
            parts.append(visit["dagdeel"])
            response = await client.post(
                f"/v1/cases/{case_ref}/contact-attempts",
                json={
                    "contactsoort": "Huisbezoek",
                    "datum": visit["datum"],
                    "bereikt": False,
                    "visit_id": visit["visit_id"],
                },
                headers=headers,
            )
            assert response.status_code == 201, response.text
        case = (await client.get(f"/v1/cases/{case_ref}", headers=headers)).json()
    assert case["state"] == "ended"
    assert case["eindresultaat"] == "Definitief geen contact kunnen krijgen"
    events = [(t, d) for t, d in await outbox(service) if d.get("case_ref") == case_ref]
    types = [t.rsplit(".", 2)[-2] + "." + t.rsplit(".", 1)[-1] for t, _ in events]
    assert types.count("visit.planned") == 3
    assert types.count("contact_attempt.recorded") == 6  # a visit and a card each time
    assert types[-1] == "case_outcome.recorded"
    assert events[-1][1]["resultaat"] == "Definitief geen contact kunnen krijgen"
