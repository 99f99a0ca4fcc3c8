"""Builders of planning data for the scheduling tests."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from eropaf_contracts.events import StaffRole, Urgency
from eropaf_scheduling.domain.model import (
    Absence,
    Assignment,
    PlanningCase,
    PlanningProblem,
    StaffMember,
)
from eropaf_scheduling.domain.time import WEEKDAYS, PartOfDay, working_days

ALL_WEEK = frozenset((d, p) for d in WEEKDAYS[:5] for p in PartOfDay)


def ref(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def member(
    code: str,
    rol: StaffRole,
    organisatie: str,
    gemeenten: tuple[str, ...] = ("0356",),
    beschikbaar: frozenset[tuple[str, PartOfDay]] = ALL_WEEK,
    max_per_dag: int = 3,
    max_per_week: int = 10,
) -> StaffMember:
    return StaffMember(
        code=code,
        naam=code.title(),
        email=f"{code}@example.org",
        organisatie=organisatie,
        rol=rol,
        gemeenten=frozenset(gemeenten),
        beschikbaar=beschikbaar,
        max_per_dag=max_per_dag,
        max_per_week=max_per_week,
    )


def employee(code: str, corporation: str = "mitros", **kw: object) -> StaffMember:
    return member(code, StaffRole.MEDEWERKER, corporation, **kw)  # type: ignore[arg-type]


def counsellor(code: str, team: str = "wil", **kw: object) -> StaffMember:
    return member(code, StaffRole.SCHULDHULPVERLENER, team, **kw)  # type: ignore[arg-type]


def case(
    name: str,
    deadline: date,
    urgency: Urgency = Urgency.NORMAL,
    gemeente: str = "0356",
    corporations: tuple[str, ...] = ("mitros",),
    priority: int = 0,
    **kw: object,
) -> PlanningCase:
    return PlanningCase(
        case_ref=ref(name),
        gemeentecode=gemeente,
        team="wil",
        postcode_area="3431",
        urgency=urgency,
        deadline=deadline,
        priority=priority,
        corporations=corporations,
        **kw,  # type: ignore[arg-type]
    )


def problem(
    first_day: date,
    staff: list[StaffMember],
    cases: list[PlanningCase],
    *,
    days: int = 5,
    absences: tuple[Absence, ...] = (),
    previous: tuple[Assignment, ...] = (),
    holidays: frozenset[date] = frozenset(),
    corporations: frozenset[str] = frozenset({"mitros", "viveste", "lekstede"}),
    travel: dict[tuple[str, str], int] | None = None,
) -> PlanningProblem:
    plan_days = working_days(first_day, days, holidays)
    weekend = any(m.works_weekends for m in staff)
    if weekend:
        plan_days = [
            plan_days[0] + timedelta(days=i)
            for i in range((plan_days[-1] - plan_days[0]).days + 1)
            if plan_days[0] + timedelta(days=i) not in holidays
        ]
    return PlanningProblem(
        first_day=first_day,
        days=tuple(plan_days),
        staff=tuple(staff),
        absences=absences,
        cases=tuple(cases),
        previous=previous,
        corporation_codes=corporations,
        travel=travel if travel is not None else {("0356", "0321"): 15},
    )
