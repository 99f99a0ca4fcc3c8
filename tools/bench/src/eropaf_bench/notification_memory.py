"""Notification memory: the service's resident memory while it takes in many cases and visits.

The service runs as its own process (``python -m eropaf_notification``) on a local broker
(Tansu), a fresh PostgreSQL database on 127.0.0.1:5432 and an SMTP server (aiosmtpd) in a
process of its own, with the demo roster (its ``dagelijks`` coordinator gets every case of
its team, held for the daily digest). The bench publishes ``--cases`` ``OutreachDecided``
events (home visit, phone, letter in turn) over as many case refs and ``--visits``
``VisitPlanned`` among them, waits until the service consumed them all, lets the jobs
(reminders, digests; every ``--jobs-interval`` seconds) run for ``--settle`` seconds more and
reports the process's peak resident memory (``VmHWM``) and its RSS at the end. Mail is sent
meanwhile, but not waited for. Floor (the system's): no service over 300 MB.

    .venv/bin/python -m eropaf_bench.notification_memory [--cases 50000] [--visits 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FLOOR_RSS_MB = 300.0
DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AMS = ZoneInfo("Europe/Amsterdam")
TEAM = "wil"
GEMEENTEN = ("0356", "0321", "0353", "1961", "0331")
DUOS = (
    ("wil-anouk", "mitros-lars"),
    ("wil-bram", "mitros-noor"),
    ("wil-sanne", "viveste-ilse"),
    ("wil-fatima", "provides-lotte"),
)


def _ref(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg
    from aiokafka import AIOKafkaProducer

    from eropaf_bench.notification import SinkProcess
    from eropaf_contracts.ddas import Dagdeel
    from eropaf_contracts.envelope import Envelope
    from eropaf_contracts.events import (
        OutreachDecided,
        OutreachKind,
        StaffChanged,
        StaffRole,
        Urgency,
        VisitPlanned,
    )
    from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
    from eropaf_demo.staff import roster_path
    from eropaf_platform.db import drop_database, ensure_database, libpq_url
    from eropaf_platform.local.broker import LocalBroker
    from eropaf_platform.local.ports import free_port
    from eropaf_platform.local.service_process import ServiceProcess

    logs = Path(tempfile.mkdtemp(prefix="eropaf-bench-notification-memory-"))
    smtp_port = free_port()
    sink = SinkProcess(smtp_port, logs / "accepted.txt")
    sink.start()
    broker = LocalBroker()
    broker.start()
    db = DEFAULT_SERVER_URL.rsplit("/", 1)[0] + f"/eropaf_bench_notifmem_{uuid.uuid4().hex[:8]}"
    ensure_database(db)
    process = ServiceProcess(
        "eropaf_notification",
        {
            "EROPAF_DATABASE_URL": db,
            "EROPAF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "EROPAF_CONSUMER_GROUP_PREFIX": "eropaf-bench",
            "EROPAF_SMTP_HOST": "127.0.0.1",
            "EROPAF_SMTP_PORT": str(smtp_port),
            "EROPAF_MAIL_DOMAIN": "eropaf.bench",
            "EROPAF_LOG_LEVEL": "WARNING",
            "EROPAF_JOBS_INTERVAL_S": str(args.jobs_interval),
        },
        logs / "notification.log",
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5)

    async def send(topic: str, e: Envelope) -> Any:
        return await producer.send(topic, e.to_bytes(), key=e.key.encode(), headers=e.headers())

    started = time.monotonic()
    samples: list[tuple[float, dict[str, float]]] = []
    try:
        process.start()
        await process.wait_ready()
        await producer.start()
        pid = process.pid
        assert pid is not None
        now = datetime.now(UTC)
        with roster_path().open(encoding="utf-8") as f:
            roster = list(csv.DictReader(f, delimiter=";"))
        for row in roster:
            member = StaffChanged(
                code=row["code"],
                naam=row["naam"],
                email=row["email"],
                organisatie=row["organisatie"],
                rol=StaffRole(row["rol"]),
                gemeenten=row["gemeenten"].split("|"),
                taal=row["taal"],
                bericht=row["bericht"],
                changed_at=now,
            )
            await (await send(STAFF_TOPIC, Envelope.wrap(member, key=member.code)))
        at_start = memory_mb(pid)
        kinds = (OutreachKind.HOME_VISIT, OutreachKind.PHONE, OutreachKind.LETTER)
        every = max(1, args.cases // max(1, args.visits))
        today = date.today()
        visits = 0
        pending = []
        for i in range(args.cases):
            gemeente = GEMEENTEN[i % len(GEMEENTEN)]
            case = OutreachDecided(
                case_ref=_ref(f"case-{i}"),
                household_ref=_ref(f"household-{i}"),
                gemeentecode=gemeente,
                team=TEAM,
                postcode_area="3431",
                outreach=kinds[i % len(kinds)],
                urgency=Urgency.NORMAL,
                deadline=today + timedelta(days=14),
                priority=1,
                rule_ids=["bench"],
                decided_at=now,
                partner_codes=["mitros"],
            )
            pending.append(await send(CASES_TOPIC, Envelope.wrap(case, key=case.case_ref)))
            if i % every == 0 and visits < args.visits:
                visits += 1
                day = today + timedelta(days=1 + visits % 20)
                start = datetime.combine(day, clock(9), AMS)
                visit = VisitPlanned(
                    visit_id=_ref(f"visit-{i}"),
                    case_ref=case.case_ref,
                    gemeentecode=gemeente,
                    team=TEAM,
                    postcode_area="3431",
                    datum=day,
                    dagdeel=Dagdeel.OCHTEND,
                    start=start,
                    end=start + timedelta(hours=1),
                    staff=list(DUOS[visits % len(DUOS)]),
                    sequence=0,
                    attempt=1,
                    deadline=day + timedelta(days=7),
                )
                pending.append(await send(VISITS_TOPIC, Envelope.wrap(visit, key=visit.case_ref)))
            if len(pending) >= 2000:
                for future in pending:
                    await future
                pending.clear()
                samples.append((time.monotonic() - started, memory_mb(pid)))
        for future in pending:
            await future
        published_s = time.monotonic() - started

        url = libpq_url(db)
        deadline = time.monotonic() + args.timeout
        consumed, events = 0, len(roster) + args.cases + visits
        while consumed < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{consumed} of {events} events consumed")
            await asyncio.sleep(2)
            samples.append((time.monotonic() - started, memory_mb(pid)))
            with psycopg.connect(url) as conn:
                counted = conn.execute("SELECT count(*) FROM processed_message").fetchone()
                consumed = int(counted[0]) if counted else 0
        consumed_s = time.monotonic() - started
        settle_until = time.monotonic() + args.settle
        while time.monotonic() < settle_until:
            await asyncio.sleep(2)
            samples.append((time.monotonic() - started, memory_mb(pid)))
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT status, count(*) FROM notification_intent GROUP BY status"
            ).fetchall()
        intents = {str(status): int(n) for status, n in rows}
        sink.poll()
        at_end = memory_mb(pid)
    finally:
        await producer.stop()
        process.stop()
        broker.stop()
        sink.stop()
        drop_database(db)

    step = max(1, len(samples) // 40)  # about 40 (seconds, RSS) pairs
    return {
        "notification_memory": {
            "cases": args.cases,
            "visits": visits,
            "jobs_interval_s": args.jobs_interval,
            "published_s": round(published_s, 1),
            "consumed_s": round(consumed_s, 1),
            "intents": intents,
            "mails_accepted": sink.count,
            "rss_at_start_mb": at_start["VmRSS"],
            "peak_rss_mb": at_end["VmHWM"],
            "rss_at_end_mb": at_end["VmRSS"],
            "rss_mb_at_second": {str(round(t)): m["VmRSS"] for t, m in samples[::step]},
            "load_average_1m": round(os.getloadavg()[0], 2),
            "floor_rss_mb": FLOOR_RSS_MB,
            "floor_met": at_end["VmHWM"] <= FLOOR_RSS_MB,
            "service_log": str(logs / "notification.log"),
        }
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50_000, help="OutreachDecided events")
    parser.add_argument("--visits", type=int, default=5_000, help="VisitPlanned events")
    parser.add_argument(
        "--jobs-interval", type=float, default=10.0, help="seconds between reminder/digest rounds"
    )
    parser.add_argument("--settle", type=float, default=40.0, help="seconds after consuming")
    parser.add_argument("--timeout", type=float, default=1800.0, help="for consuming")
    parser.add_argument("--output", type=Path, help="also write the figures (JSON) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=1)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0 if result["notification_memory"]["floor_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
