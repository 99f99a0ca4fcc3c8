"""Planning benchmark: the CP-SAT planner on the pilot month and on a large region's week.

``python -m eropaf_bench.planning`` prints three figures and checks their floors:

- pilot month: 35 home-visit cases over four weeks with the demo roster (floor: < 1 s);
- large week: 1,000 cases, 100 employees and 100 counsellors over 5 municipalities, capacity
  for about 1,100 visits (floors: < 60 s, >= 95 % planned);
- replan of that week after one counsellor is absent (floors: < 10 s, visits moved at most
  the absent person's visits plus 5 % of all visits).

``--stack 40,150,700`` instead times the replan as the running stack makes it
(:func:`stack_like`: the demo roster, 10 working days, the previous plan pinned, 10 % new
cases), each figure within the planner's wall-time cap (default 20 s) plus a margin.

``--stored`` instead times the replan use case on PostgreSQL with cases stored (reads, solve,
writes; :func:`stored_replan`), no floor.

Inputs are generated from a fixed seed, so every run plans the same problem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from importlib.resources import files

__all__ = ["PlanningFigure", "large_week", "main", "pilot_month", "run", "run_stack", "stack_like"]

MUNICIPALITIES = ("0321", "0353", "0331", "0356", "1961")
PILOT_MONDAY = date(2026, 6, 1)


@dataclass
class PlanningFigure:
    name: str
    cases: int
    planned: int
    on_time: int
    backlog: int
    moved: int
    seconds: float
    floor: str
    ok: bool


def _ref(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def pilot_month() -> object:
    """35 cases over a month, deadlines spread, with the demo region's roster."""
    from eropaf_contracts.events import Urgency
    from eropaf_contracts.region import load_region
    from eropaf_scheduling.domain.model import PlanningCase, PlanningProblem
    from eropaf_scheduling.domain.roster import parse_roster
    from eropaf_scheduling.domain.time import working_days

    region = load_region()
    staff = parse_roster(
        files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
    )
    rng = random.Random(35)
    corporations = {
        "0356": ("mitros", "portaal", "jutphaas"),
        "0321": ("viveste",),
        "0353": ("provides", "mitros"),
        "0331": ("wbv-lopik",),
        "1961": ("lekstede",),
    }
    days = working_days(PILOT_MONDAY, 20, frozenset(region.holidays))
    cases = []
    for i in range(35):
        gemeente = rng.choice(MUNICIPALITIES)
        opened = days[min(19, i * 20 // 35)]
        urgency = rng.choices(list(Urgency), weights=(1, 3, 8))[0]
        span = {Urgency.CRISIS: 3, Urgency.HIGH: 5, Urgency.NORMAL: 10}[urgency]
        deadline = working_days(opened, span, frozenset(region.holidays))[-1]
        cases.append(
            PlanningCase(
                case_ref=_ref(f"pilot-{i}"),
                gemeentecode=gemeente,
                team="wil",
                postcode_area="3431",
                urgency=urgency,
                deadline=deadline,
                priority=rng.randint(0, 150),
                corporations=(rng.choice(corporations[gemeente]),),
                not_before=opened,
            )
        )
    return PlanningProblem(
        first_day=PILOT_MONDAY,
        days=tuple(days),
        staff=tuple(staff),
        absences=(),
        cases=tuple(cases),
        corporation_codes=frozenset(
            p.code for p in region.partners if region.is_corporation(p.code)
        ),
        travel={tuple(t.between): t.minutes for t in region.travel_minutes},  # type: ignore[misc]
        travel_within=region.travel_within_municipality_minutes,
        visit_minutes=region.visit_minutes,
    )


def large_week(n_cases: int = 1_000) -> object:
    """1,000 cases; per municipality 2 corporations of 10 employees and 20 counsellors."""
    from eropaf_contracts.events import StaffRole, Urgency
    from eropaf_scheduling.domain.model import PlanningCase, PlanningProblem, StaffMember
    from eropaf_scheduling.domain.time import WEEKDAYS, PartOfDay, working_days

    rng = random.Random(1000)
    week = [(d, p) for d in WEEKDAYS[:5] for p in PartOfDay]
    staff: list[StaffMember] = []
    corporations: list[tuple[str, str]] = []
    for gi, gemeente in enumerate(MUNICIPALITIES):
        for ci in range(2):
            corp = f"corp-{gi}{ci}"
            corporations.append((corp, gemeente))
            for k in range(10):
                staff.append(
                    StaffMember(
                        code=f"{corp}-m{k}",
                        naam=f"Medewerker {corp} {k}",
                        email=f"m{k}@{corp}.example",
                        organisatie=corp,
                        rol=StaffRole.MEDEWERKER,
                        gemeenten=frozenset({gemeente}),
                        beschikbaar=frozenset(rng.sample(week, 8)),
                        max_per_dag=3,
                        max_per_week=11,
                    )
                )
        for k in range(20):
            staff.append(
                StaffMember(
                    code=f"shv-{gemeente}-{k}",
                    naam=f"Schuldhulpverlener {gemeente} {k}",
                    email=f"shv{k}-{gemeente}@team.example",
                    organisatie="team",
                    rol=StaffRole.SCHULDHULPVERLENER,
                    gemeenten=frozenset({gemeente}),
                    beschikbaar=frozenset(rng.sample(week, 8)),
                    max_per_dag=3,
                    max_per_week=11,
                )
            )
    days = working_days(PILOT_MONDAY, 5, frozenset())
    cases = []
    for i in range(n_cases):
        corp, gemeente = corporations[i % len(corporations)]
        urgency = rng.choices(list(Urgency), weights=(5, 20, 75))[0]
        last = {Urgency.CRISIS: 1, Urgency.HIGH: 3, Urgency.NORMAL: 4}[urgency]
        cases.append(
            PlanningCase(
                case_ref=_ref(f"large-{i}"),
                gemeentecode=gemeente,
                team="team",
                postcode_area="3431",
                urgency=urgency,
                deadline=days[rng.randint(min(last, 2), last)],
                priority=rng.randint(0, 200),
                corporations=(corp,),
            )
        )
    return PlanningProblem(
        first_day=PILOT_MONDAY,
        days=tuple(days),
        staff=tuple(staff),
        absences=(),
        cases=tuple(cases),
        corporation_codes=frozenset(c for c, _ in corporations),
    )


def stack_like(n_cases: int, *, new_share: float = 0.1) -> tuple[object, object]:
    """A replan as the running stack makes it: the demo roster, a 10-working-day horizon,
    ``n_cases`` open home-visit cases over the five municipalities (deadlines spread, some
    already passed), visits done before the horizon (prior load). Returns the first problem
    (no previous plan) and a function giving the replan problem from the first plan: its
    visits pinned (their invites went out) and ``new_share`` more cases signalled since."""
    from dataclasses import replace
    from datetime import timedelta

    from eropaf_contracts.events import Urgency
    from eropaf_contracts.region import load_region
    from eropaf_scheduling.domain.model import Assignment, Plan, PlanningCase, PlanningProblem
    from eropaf_scheduling.domain.roster import parse_roster
    from eropaf_scheduling.domain.time import working_days

    region = load_region()
    staff = parse_roster(
        files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
    )
    holidays = frozenset(region.holidays)
    rng = random.Random(n_cases)
    corporations = {
        "0356": ("mitros", "portaal", "jutphaas"),
        "0321": ("viveste",),
        "0353": ("provides", "mitros"),
        "0331": ("wbv-lopik",),
        "1961": ("lekstede",),
    }
    days = working_days(PILOT_MONDAY, 10, holidays)

    def case(i: int) -> PlanningCase:
        gemeente = rng.choice(MUNICIPALITIES)
        urgency = rng.choices(list(Urgency), weights=(1, 3, 8))[0]
        span = {Urgency.CRISIS: 2, Urgency.HIGH: 5, Urgency.NORMAL: 10}[urgency]
        deadline = days[min(9, rng.randint(0, span))] - timedelta(days=7 * (rng.random() < 0.05))
        return PlanningCase(
            case_ref=_ref(f"stack-{n_cases}-{i}"),
            gemeentecode=gemeente,
            team="wil",
            postcode_area="3431",
            urgency=urgency,
            deadline=deadline,
            priority=rng.randint(0, 300),
            corporations=(rng.choice(corporations[gemeente]),) if rng.random() < 0.9 else (),
        )

    cases = tuple(case(i) for i in range(n_cases))
    prior = {
        (m.code, PILOT_MONDAY - timedelta(days=d)): 1
        for m in staff
        for d in (3, 4)
        if m.active and m.max_per_dag > 0 and rng.random() < 0.5
    }
    first = PlanningProblem(
        first_day=PILOT_MONDAY,
        days=tuple(days),
        staff=tuple(staff),
        absences=(),
        cases=cases,
        corporation_codes=frozenset(
            p.code for p in region.partners if region.is_corporation(p.code)
        ),
        travel={tuple(t.between): t.minutes for t in region.travel_minutes},  # type: ignore[misc]
        travel_within=region.travel_within_municipality_minutes,
        visit_minutes=region.visit_minutes,
        prior_load=prior,
    )
    extra = tuple(case(n_cases + i) for i in range(max(1, int(n_cases * new_share))))

    def replan(plan: object) -> PlanningProblem:
        assert isinstance(plan, Plan)
        pinned = tuple(
            Assignment(a.case_ref, a.slot, a.staff, window=a.window, pinned=True)
            for a in plan.assignments
        )
        return replace(first, cases=cases + extra, previous=pinned)

    return first, replan


def run_stack(sizes: tuple[int, ...], max_seconds: float = 20.0) -> list[PlanningFigure]:
    """The stack-like first plan and replan per size (no floor: figures only)."""
    from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
    from eropaf_scheduling.domain.model import Plan, PlanningProblem
    from eropaf_scheduling.domain.planning import violations

    planner = CpSatPlanner(max_seconds=max_seconds)
    figures = []
    for n in sizes:
        first, replan = stack_like(n)
        assert isinstance(first, PlanningProblem)
        assert callable(replan)
        plan: Plan | None = None
        for name in ("first", "replan"):
            problem = first if plan is None else replan(plan)
            assert isinstance(problem, PlanningProblem)
            started = time.perf_counter()
            plan = planner.plan(problem)
            seconds = time.perf_counter() - started
            assert isinstance(plan, Plan)
            bad = violations(problem, plan)
            if bad:
                raise AssertionError(f"stack {n} {name}: invalid plan: {bad[:5]}")
            figures.append(
                PlanningFigure(
                    name=f"stack-like {name} {_plan_digest(plan)}",
                    cases=len(problem.cases),
                    planned=len(plan.assignments),
                    on_time=len(problem.cases) - len(plan.backlog),
                    backlog=len(plan.backlog),
                    moved=plan.moved,
                    seconds=round(seconds, 3),
                    floor=f"<= {max_seconds:.0f} s cap",
                    ok=seconds <= max_seconds * 1.25 + 1,
                )
            )
    return figures


def run(deterministic_time: float = 2.5) -> list[PlanningFigure]:
    from dataclasses import replace

    from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
    from eropaf_scheduling.domain.model import Absence, Plan, PlanningProblem
    from eropaf_scheduling.domain.planning import violations

    planner = CpSatPlanner(max_deterministic_time=deterministic_time)

    def figure(name: str, p: PlanningProblem, plan: Plan, floor: str, ok: bool) -> PlanningFigure:
        bad = violations(p, plan)
        if bad:
            raise AssertionError(f"{name}: invalid plan: {bad[:5]}")
        return PlanningFigure(
            name=name,
            cases=len(p.cases),
            planned=len(plan.assignments),
            on_time=len(p.cases) - len(plan.backlog),
            backlog=len(plan.backlog),
            moved=plan.moved,
            seconds=round(plan.solve_seconds, 3),
            floor=floor,
            ok=ok,
        )

    figures = []
    pilot = pilot_month()
    assert isinstance(pilot, PlanningProblem)
    plan = planner.plan(pilot)
    figures.append(figure("pilot month", pilot, plan, "< 1 s", plan.solve_seconds < 1.0))

    week = large_week()
    assert isinstance(week, PlanningProblem)
    plan = planner.plan(week)
    on_time = len(week.cases) - len(plan.backlog)
    figures.append(
        figure(
            "large week",
            week,
            plan,
            "< 60 s, >= 95 % planned",
            plan.solve_seconds < 60 and on_time >= 0.95 * len(week.cases),
        )
    )

    loads: dict[str, int] = {}
    for a in plan.assignments:
        loads[a.staff[1]] = loads.get(a.staff[1], 0) + 1
    absentee = max(sorted(loads), key=lambda c: loads[c])
    absent = replace(
        week,
        absences=(Absence(absentee, week.days[0], week.days[-1]),),
        previous=plan.assignments,
    )
    again = planner.plan(absent)
    limit = loads[absentee] + 0.05 * len(plan.assignments)
    figures.append(
        figure(
            f"replan after absence ({absentee}, {loads[absentee]} visits)",
            absent,
            again,
            f"< 10 s, moved <= {limit:.0f}",
            again.solve_seconds < 10 and again.moved <= limit,
        )
    )
    return figures


@dataclass
class StoredReplanFigure:
    name: str
    open_cases: int
    home_visit_cases: int
    seconds: float  # the whole use case: reads, solve, writes
    solve_seconds: float
    digest: str  # of the plan's visits and backlog: equal runs planned alike

    @property
    def load_and_write_seconds(self) -> float:
        return round(self.seconds - self.solve_seconds, 3)


def stored_replan(
    database_url: str,
    *,
    home_visit_cases: int = 300,
    other_open_cases: int = 3_000,
    ended_cases: int = 3_000,
    deterministic_time: float = 1.0,
) -> list[StoredReplanFigure]:
    """The replan use case on PostgreSQL (scheduling's repository) with cases stored: the
    large week's staff, ``home_visit_cases`` of its cases, ``other_open_cases`` open phone
    and letter cases and ``ended_cases`` ended ones with their visit done. Timed: the first
    plan, and the replan after one counsellor is absent; each whole and without its solve."""
    import asyncio

    return asyncio.run(
        _stored_replan(
            database_url, home_visit_cases, other_open_cases, ended_cases, deterministic_time
        )
    )


async def _stored_replan(
    database_url: str, homes: int, others: int, ended: int, deterministic_time: float
) -> list[StoredReplanFigure]:
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from eropaf_contracts.events import OutreachKind
    from eropaf_contracts.region import load_region
    from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
    from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
    from eropaf_scheduling.adapters.tables import CaseRow, VisitRow
    from eropaf_scheduling.app import MIGRATIONS
    from eropaf_scheduling.domain.model import PlanningProblem
    from eropaf_scheduling.service_layer import services
    from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

    week = large_week()
    assert isinstance(week, PlanningProblem)
    now = datetime(2026, 5, 29, 8, 0, tzinfo=UTC)  # a Friday: the week is the next one
    config = services.PlanningConfig(region=load_region())
    await migrate_async(database_url, MIGRATIONS, service="scheduling")
    engine = make_engine(database_url)

    sessions = make_sessions(engine)
    unit_of_work = sql_units_of_work(sessions)

    def row(ref: str, case: object, outreach: OutreachKind, state: str) -> dict[str, object]:
        from eropaf_scheduling.domain.model import PlanningCase

        assert isinstance(case, PlanningCase)
        return {
            "case_ref": ref,
            "gemeentecode": case.gemeentecode,
            "team": case.team,
            "postcode_area": case.postcode_area,
            "outreach": outreach.value,
            "urgency": case.urgency.value,
            "deadline": case.deadline,
            "priority": case.priority,
            "partner_codes": list(case.corporations),
            "state": state,
            "attempt": 1,
            "avoid_parts": [],
            "outreach_planned": outreach is not OutreachKind.HOME_VISIT,
        }

    cases = week.cases
    rows = [row(c.case_ref, c, OutreachKind.HOME_VISIT, "open") for c in cases[:homes]]
    kinds = (OutreachKind.PHONE, OutreachKind.LETTER)
    rows += [
        row(_ref(f"other-{i}"), cases[i % len(cases)], kinds[i % 2], "open") for i in range(others)
    ]
    rows += [
        row(_ref(f"ended-{i}"), cases[i % len(cases)], OutreachKind.HOME_VISIT, "ended")
        for i in range(ended)
    ]
    done = [
        {
            "visit_id": _ref(f"done-{i}"),
            "case_ref": _ref(f"ended-{i}"),
            "attempt": 1,
            "datum": week.first_day - timedelta(days=7 + i % 20),
            "part": "ochtend",
            "window": 0,
            "staff": [week.staff[0].code, week.staff[-1].code],
            "status": "done",
            "sequence": 0,
        }
        for i in range(ended)
    ]
    figures: list[StoredReplanFigure] = []
    try:
        async with unit_of_work() as uow:
            await services.import_roster(uow, list(week.staff), now)
        async with transaction(sessions) as session:
            await session.execute(sa.insert(CaseRow.__table__), rows)  # type: ignore[attr-defined]
            await session.execute(sa.insert(VisitRow.__table__), done)  # type: ignore[attr-defined]
            await session.execute(sa.text("ANALYZE"))
        planner = CpSatPlanner(max_deterministic_time=deterministic_time)

        async def timed(name: str) -> None:
            async with unit_of_work() as uow:
                await uow.repo.request_replan(now)
            started = time.perf_counter()
            outcome = await services.replan(unit_of_work, planner, config, now)
            seconds = time.perf_counter() - started
            assert outcome is not None
            figures.append(
                StoredReplanFigure(
                    name,
                    homes + others,
                    homes,
                    round(seconds, 3),
                    round(outcome.plan.solve_seconds, 3),
                    _plan_digest(outcome.plan),
                )
            )

        await timed("first plan")
        counsellor = next(m.code for m in week.staff if m.organisatie == "team")
        async with unit_of_work() as uow:
            await services.record_absence(uow, counsellor, week.days[0], week.days[-1], now)
        await timed(f"replan after absence ({counsellor})")
    finally:
        await engine.dispose()
    return figures


def _plan_digest(plan: object) -> str:
    from eropaf_scheduling.domain.model import Plan

    assert isinstance(plan, Plan)
    visits = sorted(
        (a.case_ref, str(a.slot.datum), a.slot.part.value, a.window, *a.staff)
        for a in plan.assignments
    )
    backlog = sorted((e.case_ref, e.reason.value) for e in plan.backlog)
    return hashlib.sha256(repr((visits, backlog)).encode()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--deterministic-time", type=float, default=2.5)
    parser.add_argument(
        "--stored",
        action="store_true",
        help="only the replan use case on PostgreSQL with stored cases (stored_replan)",
    )
    parser.add_argument("--database-url", default=None, help="server for --stored")
    parser.add_argument(
        "--stack",
        default=None,
        metavar="SIZES",
        help="only stack-like first plans and replans of these sizes, e.g. 40,150,700",
    )
    parser.add_argument("--max-seconds", type=float, default=20.0, help="cap for --stack")
    args = parser.parse_args(argv)
    if args.stored:
        return _main_stored(args.database_url)
    if args.stack:
        sizes = tuple(int(n) for n in args.stack.split(","))
        figures = run_stack(sizes, args.max_seconds)
    else:
        figures = run(args.deterministic_time)
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=2))
    else:
        for f in figures:
            print(
                f"{f.name:<48} {f.cases:>5} cases {f.planned:>5} planned {f.on_time:>5} on time"
                f" {f.backlog:>4} backlog {f.moved:>4} moved {f.seconds:>8.3f} s"
                f"  floor {f.floor}: {'ok' if f.ok else 'MISSED'}"
            )
    return 0 if all(f.ok for f in figures) else 1


def _main_stored(server_url: str | None) -> int:
    import uuid

    from eropaf_bench.database import DEFAULT_SERVER_URL, create_database, drop_database

    server = server_url or DEFAULT_SERVER_URL
    name = f"eropaf_bench_replan_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    try:
        figures = stored_replan(url)
    finally:
        drop_database(server, name)
    for f in figures:
        print(
            f"{f.name:<40} {f.open_cases:>5} open cases ({f.home_visit_cases} home visits)"
            f" {f.seconds:>7.3f} s, of which solve {f.solve_seconds:.3f} s,"
            f" reads and writes {f.load_and_write_seconds:.3f} s, plan {f.digest}"
        )
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    sys.exit(code)
