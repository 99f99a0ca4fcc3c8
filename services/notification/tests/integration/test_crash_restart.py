"""The service as a real process, killed with SIGKILL in the middle of a stream of events and
restarted: no message lost, none doubled outside the documented window (messages the mail
server accepted before the kill whose "sent" was not yet recorded), and a repeat carries the
same Message-ID."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_contracts.events import DeliveryChannel
from eropaf_notification.adapters import tables
from eropaf_notification.domain.model import notification_id
from eropaf_platform.db import make_engine
from eropaf_platform.local.service_process import ServiceProcess
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import SmtpServer, publish
from ..factories import envelope, planned, staff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VISITS = 300
BATCH = 50


def notification_process(
    bootstrap: str, database_url: str, smtp: SmtpServer, group_prefix: str, log_path: Path
) -> ServiceProcess:
    return ServiceProcess(
        "eropaf_notification",
        {
            "EROPAF_DATABASE_URL": database_url,
            "EROPAF_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EROPAF_CONSUMER_GROUP_PREFIX": group_prefix,
            "EROPAF_KAFKA_TOPIC_PARTITIONS": "2",
            "EROPAF_CONSUMER_MAX_RECORDS": "50",
            "EROPAF_SMTP_HOST": smtp.host,
            "EROPAF_SMTP_PORT": str(smtp.port),
            "EROPAF_MAIL_DOMAIN": "eropaf.test",
            "EROPAF_DELIVERY_BATCH_SIZE": str(BATCH),
            "EROPAF_DELIVERY_LEASE_S": "2",
            "EROPAF_DELIVERY_POLL_INTERVAL_S": "0.05",
            "EROPAF_RETRY_FIRST_S": "0.2",
            "EROPAF_RETRY_LONGEST_S": "1",
            "EROPAF_OUTBOX_POLL_INTERVAL_S": "0.1",
            "EROPAF_LOG_LEVEL": "WARNING",
        },
        log_path,
    )


async def test_kill_9_mid_stream_loses_nothing_and_doubles_only_the_window(
    kafka_bootstrap_servers: str,
    _database_registry: Any,
    smtp_server: SmtpServer,
    tag: str,
    tmp_path: Path,
) -> None:
    def answer(_raw: bytes, _rcpt: list[str]) -> None:
        time.sleep(0.003)  # the server takes a little while per message
        return None

    smtp_server.answer = answer
    members = [f"{tag}-m{i}" for i in range(12)]
    visits = [
        planned(
            f"{tag}-v{i}",
            day=date(2026, 11, 9) + timedelta(days=i % 20),
            duo=(members[i % 12], members[(i + 5) % 12]),
            case=f"{tag}-c{i}",
        )
        for i in range(VISITS)
    ]
    expected = {
        f"<{notification_id(f'visit:{v.visit_id}', code, 0, DeliveryChannel.EMAIL)}@eropaf.test>"
        for v in visits
        for code in v.staff
    }
    stream = [envelope(staff(m)) for m in members]
    for i, v in enumerate(visits):
        stream.append(envelope(v))
        if i % 10 == 0:
            stream.append(envelope(v))  # a redelivered copy (same envelope id)
    await publish(kafka_bootstrap_servers, *stream[: len(stream) // 2])

    db = _database_registry.create("eropaf_notification_crash")
    group = f"crash-{uuid.uuid4().hex[:8]}"
    process = notification_process(
        kafka_bootstrap_servers, db, smtp_server, group, tmp_path / "n.log"
    )
    process.start()
    try:
        await process.wait_ready()
        publishing = asyncio.create_task(
            publish(kafka_bootstrap_servers, *stream[len(stream) // 2 :])
        )
        await wait_until_async(lambda: len(smtp_server.snapshot()) >= 150, timeout=120)
        process.kill()  # SIGKILL: no shutdown of any kind
        killed_at = time.monotonic()
        await publishing
        before_kill = {m.message_id for m in smtp_server.snapshot() if m.at <= killed_at}
        assert len(before_kill) < len(expected), "killed too late to test anything"

        process = notification_process(
            kafka_bootstrap_servers, db, smtp_server, group, tmp_path / "n.log"
        )
        process.start()
        await process.wait_ready()

        engine = make_engine(db)
        try:

            async def all_sent() -> bool:
                async with engine.connect() as conn:
                    counts: dict[str, int] = dict(
                        (
                            await conn.execute(
                                sa.select(tables.intent.c.status, sa.func.count()).group_by(
                                    tables.intent.c.status
                                )
                            )
                        ).all()
                    )
                return counts == {"sent": len(expected)}

            await wait_until_async(all_sent, timeout=180)
        finally:
            await engine.dispose()
    finally:
        process.stop()

    accepted = Counter(m.message_id for m in smtp_server.snapshot())
    assert set(accepted) == expected  # none lost, nothing else
    doubled = {mid for mid, n in accepted.items() if n > 1}
    assert all(accepted[mid] == 2 for mid in doubled)
    # Only messages accepted before the kill can come twice, at most the batches in flight.
    assert doubled <= before_kill
    assert len(doubled) <= 2 * BATCH
