"""Case-events benchmark: scheduling's consumer of matching's case events on PostgreSQL.

``python -m eropaf_bench.case_events`` feeds ``--decided`` OutreachDecided events (distinct
households; 70 % home visits, the rest phone calls and letters), then ``--updated``
CaseUpdated (half of them renames, a tenth merges of two cases, the rest re-routings) and
``--closed`` CaseClosed, through the platform's batch processor with scheduling's
``CaseEventsHandler`` in batches of ``--batch`` (the consumer's ``max_records``) on a fresh
database. Prints CPU seconds of this process and of the database's backends, per 1,000
events, and the wall time, as JSON. No replan runs (the replan job does that).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

__all__ = ["CaseEventsFigure", "case_event_messages", "main", "run"]


@dataclass
class CaseEventsFigure:
    events: int
    batch: int
    wall_s: float
    cpu_s: float
    db_cpu_s: float
    cpu_s_per_1000: float
    db_cpu_s_per_1000: float
    open_cases: int
    closed_cases: int
    aliases: int


def _ref(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def case_event_messages(decided: int, updated: int, closed: int, seed: int = 7) -> list[object]:
    """The events as envelopes, in the order matching would send them."""
    from eropaf_contracts.ddas import Eindresultaat, Signaalpartner
    from eropaf_contracts.envelope import Envelope
    from eropaf_contracts.events import (
        CaseChange,
        CaseClosed,
        CaseUpdated,
        OutreachDecided,
        OutreachKind,
        Urgency,
    )

    rng = random.Random(seed)
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    gemeenten = ("0321", "0353", "0331", "0356", "1961")
    kinds = [OutreachKind.HOME_VISIT] * 14 + [OutreachKind.PHONE] * 3 + [OutreachKind.LETTER] * 3
    current = [_ref(f"case-{i}") for i in range(decided)]
    households = [_ref(f"hh-{i}") for i in range(decided)]
    envelopes: list[Envelope] = []
    for i, ref in enumerate(current):
        event = OutreachDecided(
            case_ref=ref,
            household_ref=households[i],
            gemeentecode=rng.choice(gemeenten),
            team="wil",
            postcode_area=str(3400 + rng.randrange(100)),
            outreach=rng.choice(kinds),
            urgency=rng.choice([Urgency.NORMAL, Urgency.NORMAL, Urgency.HIGH]),
            deadline=date(2026, 6, 8 + rng.randrange(14)),
            priority=rng.randrange(100),
            rule_ids=["huurachterstand"],
            decided_at=now,
            partner_codes=["mitros"],
        )
        envelopes.append(Envelope.wrap(event, key=households[i]))
    gone: set[int] = set()
    for n in range(updated):
        i = rng.randrange(decided)
        while i in gone:
            i = rng.randrange(decided)
        previous: list[str] = []
        change = CaseChange.REROUTED
        if n % 10 == 0:  # merged: this case absorbs another one
            j = (i + 1) % decided
            while j in gone or j == i:
                j = (j + 1) % decided
            previous = [current[i], current[j]]
            gone.add(j)
            change = CaseChange.MERGED
        elif n % 2 == 0:  # renamed: an earlier-dated signal gives it another ref
            previous = [current[i]]
            current[i] = _ref(f"case-{i}-renamed-{n}")
            change = CaseChange.SIGNAL_ADDED
        update = CaseUpdated(
            case_ref=current[i],
            household_ref=households[i],
            gemeentecode=rng.choice(gemeenten),
            team="wil",
            postcode_area=str(3400 + rng.randrange(100)),
            signal_refs=[_ref(f"signal-{i}")],
            partner_types=[Signaalpartner.HUUR],
            change=change,
            updated_at=now,
            previous_case_refs=previous,
        )
        envelopes.append(Envelope.wrap(update, key=households[i]))
    for _ in range(closed):
        i = rng.randrange(decided)
        while i in gone:
            i = rng.randrange(decided)
        gone.add(i)
        closure = CaseClosed(
            case_ref=current[i],
            household_ref=households[i],
            gemeentecode="0356",
            team="wil",
            signal_refs=[_ref(f"signal-{i}")],
            resultaat=Eindresultaat.ZELF_BETAALD_OF_REGELING,
            closed_at=now,
        )
        envelopes.append(Envelope.wrap(closure, key=households[i]))
    return list(envelopes)


async def _run(
    database_url: str, decided: int, updated: int, closed: int, batch: int
) -> CaseEventsFigure:
    import sqlalchemy as sa

    from eropaf_bench.database import database_cpu_seconds
    from eropaf_contracts.envelope import Envelope
    from eropaf_contracts.topics import CASES_TOPIC
    from eropaf_platform.consumer import BatchProcessor, Incoming
    from eropaf_platform.db import make_engine, make_sessions, migrate_async
    from eropaf_scheduling.app import MIGRATIONS, SchedulingSettings, planning_config
    from eropaf_scheduling.handlers import CaseEventsHandler

    await migrate_async(database_url, MIGRATIONS, service="scheduling")
    settings = SchedulingSettings(database_url=database_url, dev_mode=True)
    engine = make_engine(database_url)
    sessions = make_sessions(engine)
    processor = BatchProcessor(
        consumer="bench-cases",
        handler=CaseEventsHandler(planning_config(settings)),
        sessions=sessions,
        settings=settings,
    )
    messages = []
    for offset, envelope in enumerate(case_event_messages(decided, updated, closed)):
        assert isinstance(envelope, Envelope)
        messages.append(
            Incoming(
                topic=CASES_TOPIC,
                partition=0,
                offset=offset,
                key=envelope.key.encode(),
                value=envelope.to_bytes(),
                headers=dict(envelope.headers()),
                timestamp_ms=offset,
            )
        )
    async with sessions() as session:  # warm the pool: the backends' CPU is read per pid
        await session.execute(sa.text("SELECT 1"))
    db_before = database_cpu_seconds(database_url)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for start in range(0, len(messages), batch):
        await processor.process(messages[start : start + batch])
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    db_cpu = database_cpu_seconds(database_url) - db_before
    async with sessions() as session:
        counts: dict[str, int] = dict(
            (
                await session.execute(
                    sa.text("SELECT state, count(*) FROM sched_case GROUP BY state")
                )
            ).all()
        )
        aliases = (await session.execute(sa.text("SELECT count(*) FROM sched_case_alias"))).scalar()
    await engine.dispose()
    events = len(messages)
    return CaseEventsFigure(
        events=events,
        batch=batch,
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 2),
        db_cpu_s=round(db_cpu, 2),
        cpu_s_per_1000=round(cpu * 1000 / events, 3),
        db_cpu_s_per_1000=round(db_cpu * 1000 / events, 3),
        open_cases=int(counts.get("open", 0)),
        closed_cases=int(counts.get("closed", 0)),
        aliases=int(aliases or 0),
    )


def run(
    database_url: str | None = None,
    *,
    decided: int = 5_000,
    updated: int = 500,
    closed: int = 200,
    batch: int = 500,
) -> CaseEventsFigure:
    from eropaf_bench.database import BenchDatabase

    database = BenchDatabase(database_url)
    url = database.create()
    try:
        return asyncio.run(_run(url, decided, updated, closed, batch))
    finally:
        database.drop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eropaf_bench.case_events")
    parser.add_argument("--database-url", default=None, help="default: a fresh database")
    parser.add_argument("--decided", type=int, default=5_000)
    parser.add_argument("--updated", type=int, default=500)
    parser.add_argument("--closed", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    figure = run(
        args.database_url,
        decided=args.decided,
        updated=args.updated,
        closed=args.closed,
        batch=args.batch,
    )
    print(json.dumps(asdict(figure)))


if __name__ == "__main__":
    main()
