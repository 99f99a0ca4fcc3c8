"""Memory of one replan: ``python -m eropaf_bench.replan_memory --cases 40000``.

Stores the demo roster and ``--cases`` open home-visit cases (none planned yet) in a fresh
database, then runs scheduling's replan use case once in a new process and prints, as JSON,
its resident set (MB) after the imports (OR-Tools included) and its peak in each phase:
reading the cases, the solve, writing the plan (visits, backlog, events in the outbox).
Linux only (the peak is read from /proc and reset between phases).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files

__all__ = ["main", "run"]

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
CORPORATIONS = {
    "0356": ("mitros", "portaal", "jutphaas"),
    "0321": ("viveste",),
    "0353": ("provides", "mitros"),
    "0331": ("wbv-lopik",),
    "1961": ("lekstede",),
}


def _rss_mb() -> dict[str, int]:
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) // 1024
    return found


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


async def _seed(url: str, cases: int) -> None:
    from eropaf_contracts.events import OutreachKind, Urgency
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
    from eropaf_scheduling.app import MIGRATIONS
    from eropaf_scheduling.domain.roster import parse_roster
    from eropaf_scheduling.domain.schedule import CaseRecord
    from eropaf_scheduling.service_layer import services
    from eropaf_scheduling.service_layer.unit_of_work import (
        SqlSchedulingUnitOfWork,
        sql_units_of_work,
    )

    await migrate_async(url, MIGRATIONS, service="scheduling")
    engine = make_engine(url)
    sessions = make_sessions(engine)
    roster = files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
    async with sql_units_of_work(sessions)() as uow:
        await services.import_roster(uow, parse_roster(roster), NOW)
    rng = random.Random(cases)
    records = []
    for i in range(cases):
        gemeente = rng.choice(list(CORPORATIONS))
        records.append(
            CaseRecord(
                case_ref=hashlib.sha256(f"memory-{i}".encode()).hexdigest()[:32],
                gemeentecode=gemeente,
                team="wil",
                postcode_area="3431",
                outreach=OutreachKind.HOME_VISIT,
                urgency=rng.choices(list(Urgency), weights=(1, 3, 8))[0],
                deadline=date(2026, 6, 2) + timedelta(days=rng.randint(0, 14)),
                priority=rng.randint(0, 300),
                partner_codes=(rng.choice(CORPORATIONS[gemeente]),),
            )
        )
    for start in range(0, cases, 5_000):
        async with transaction(sessions) as session:
            uow = SqlSchedulingUnitOfWork(session)
            await uow.repo.save_cases(records[start : start + 5_000])
            await uow.repo.request_replan(NOW)
    await engine.dispose()


async def _replan(url: str) -> dict[str, object]:
    from eropaf_contracts.region import load_region
    from eropaf_platform.db import make_engine, make_sessions
    from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
    from eropaf_scheduling.domain.model import Plan, PlanningProblem
    from eropaf_scheduling.service_layer import services
    from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

    figures: dict[str, object] = {"after_imports_mb": _rss_mb()["VmRSS"]}
    inner = CpSatPlanner(max_deterministic_time=5.0, max_seconds=20.0)

    class Measured:
        def plan(self, problem: PlanningProblem) -> Plan:
            figures["read_peak_mb"] = _rss_mb()["VmHWM"]
            _reset_peak()
            plan = inner.plan(problem)
            figures["solve_peak_mb"] = _rss_mb()["VmHWM"]
            _reset_peak()
            return plan

    engine = make_engine(url)
    _reset_peak()
    outcome = await services.replan(
        sql_units_of_work(make_sessions(engine)),
        Measured(),
        services.PlanningConfig(region=load_region()),
        NOW,
    )
    figures["write_peak_mb"] = _rss_mb()["VmHWM"]
    await engine.dispose()
    assert outcome is not None
    figures["visits"] = len(outcome.plan.assignments)
    figures["backlog"] = len(outcome.plan.backlog)
    return figures


def run(cases: int) -> dict[str, object]:
    from eropaf_bench.database import BenchDatabase

    database = BenchDatabase(None)
    url = database.create()
    try:
        asyncio.run(_seed(url, cases))
        measured = subprocess.run(
            [sys.executable, "-m", "eropaf_bench.replan_memory", "--replan", url],
            check=True,
            capture_output=True,
            text=True,
        )
        figures: dict[str, object] = {"cases": cases}
        figures.update(json.loads(measured.stdout.strip().splitlines()[-1]))
        return figures
    finally:
        database.drop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eropaf_bench.replan_memory")
    parser.add_argument("--cases", type=int, default=40_000)
    parser.add_argument("--replan", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replan:
        print(json.dumps(asyncio.run(_replan(args.replan))))
    else:
        print(json.dumps(run(args.cases)))


if __name__ == "__main__":
    main()
