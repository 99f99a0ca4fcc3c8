"""Delivery against a mail server that is down, then answers 4xx for a while, then accepts:
every message delivered exactly once; a 5xx: one failed delivery with its reason."""

from __future__ import annotations

import time
from datetime import date, timedelta

import orjson
import pytest
import sqlalchemy as sa

from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_notification.adapters import tables
from eropaf_platform.service import Service
from eropaf_platform.testing.topics import read_to_end
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import SmtpServer, StartNotification, publish
from ..factories import envelope, planned, staff

pytestmark = pytest.mark.integration


async def statuses(service: Service, tag: str) -> dict[str, int]:
    """Intents by status, of this test's staff (a service reads the topics from the start)."""
    async with service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(tables.intent.c.status, sa.func.count())
            .where(tables.intent.c.recipient.startswith(tag))
            .group_by(tables.intent.c.status)
        )
        return {status: n for status, n in rows.all()}


async def deliveries(bootstrap: str, tag: str) -> list[dict]:
    records = await read_to_end(bootstrap, NOTIFICATION_DELIVERIES_TOPIC)
    out = [orjson.loads(r.value) for r in records]
    return [e for e in out if e["data"]["recipient"].startswith(tag)]


async def test_down_then_4xx_then_accepting_delivers_each_message_once(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    tag: str,
) -> None:
    smtp_server.stop()  # down: connections refused
    busy_until = [float("inf")]
    smtp_server.answer = lambda _raw, _rcpt: (
        "451 4.3.0 Try again later" if time.monotonic() < busy_until[0] else None
    )
    service = await start_notification()
    members = [f"{tag}-m{i}" for i in range(6)]
    await publish(kafka_bootstrap_servers, *(envelope(staff(m)) for m in members))
    visits = [
        planned(
            f"{tag}-v{i}",
            day=date(2026, 11, 9) + timedelta(days=i % 5),
            duo=(members[i % 6], members[(i + 1) % 6]),
            case=f"{tag}-c{i}",
        )
        for i in range(15)
    ]
    await publish(kafka_bootstrap_servers, *(envelope(v) for v in visits))
    expected = 2 * len(visits)

    async def owed() -> bool:
        return sum((await statuses(service, tag)).values()) == expected

    await wait_until_async(owed, timeout=30)

    async def refused_connections() -> bool:
        async with service.engine.connect() as conn:
            n = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(tables.attempt)
                .where(tables.attempt.c.detail.like("SMTP unavailable%"))
            )
        return (n or 0) >= expected

    await wait_until_async(refused_connections, timeout=30)
    smtp_server.start()  # up again, but busy: 4xx for a while
    busy_until[0] = time.monotonic() + 2.0
    await wait_until_async(lambda: len(smtp_server.refused) > 0, timeout=30)

    async def all_sent() -> bool:
        return (await statuses(service, tag)).get("sent") == expected

    await wait_until_async(all_sent, timeout=60)
    accepted = [m for m in smtp_server.snapshot() if any(tag in r for r in m.rcpt_tos)]
    ids = [m.message_id for m in accepted]
    assert len(ids) == expected and len(set(ids)) == expected
    assert all(reply.startswith("451") for reply, _ in smtp_server.refused)

    async def published() -> list[dict] | None:
        events = await deliveries(kafka_bootstrap_servers, tag)
        return events if len(events) >= expected else None

    events = await wait_until_async(published, timeout=30)
    assert {e["type"] for e in events} == {"eropaf.notification.delivered"}
    assert len({e["data"]["notification_id"] for e in events}) == expected
    assert max(e["data"]["attempts"] for e in events) >= 3  # refused, 451, then sent
    a, i = tables.attempt, tables.intent
    async with service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(a.c.outcome, sa.func.count())
            .join(i, i.c.notification_id == a.c.notification_id)
            .where(i.c.recipient.startswith(tag))
            .group_by(a.c.outcome)
        )
        outcomes: dict[str, int] = {outcome: n for outcome, n in rows.all()}
    assert outcomes["sent"] == expected and outcomes["retry"] >= expected


async def test_a_5xx_ends_as_one_failed_delivery_with_its_reason(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    tag: str,
) -> None:
    gone, fine = f"{tag}-gone", f"{tag}-fine"
    smtp_server.answer = lambda _raw, rcpt: (
        "550 5.1.1 Mailbox unavailable" if any(gone in r for r in rcpt) else None
    )
    service = await start_notification()
    await publish(kafka_bootstrap_servers, envelope(staff(gone)), envelope(staff(fine)))
    await publish(kafka_bootstrap_servers, envelope(planned(f"{tag}-v", duo=(gone, fine))))

    async def settled() -> dict[str, int] | None:
        s = await statuses(service, tag)
        return s if s.get("failed") == 1 and s.get("sent") == 1 else None

    await wait_until_async(settled, timeout=30)

    async def published() -> list[dict] | None:
        events = await deliveries(kafka_bootstrap_servers, tag)
        return events if len(events) >= 2 else None

    events = await wait_until_async(published, timeout=30)
    failed = [e["data"] for e in events if e["type"] == "eropaf.notification.failed"]
    assert len(failed) == 1 and failed[0]["recipient"] == gone
    assert failed[0]["reason"].startswith("SMTP 550") and failed[0]["attempts"] == 1
    assert [r for r in smtp_server.refused if any(tag in a for a in r[1])] == [
        ("550 5.1.1 Mailbox unavailable", [f"{gone}@staff.example.org"])
    ]  # not retried
    mine = [m.rcpt_tos for m in smtp_server.snapshot() if any(tag in a for a in m.rcpt_tos)]
    assert mine == [[f"{fine}@staff.example.org"]]
