"""The planner's interface and the rules every plan obeys, checked without a solver.

``Planner.plan`` is pure: the same :class:`PlanningProblem` gives the same :class:`Plan`.
:func:`violations` lists every broken hard rule of a plan (the tests and the service check
each plan with it before saving).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Protocol

from eropaf_contracts.events import StaffRole
from eropaf_scheduling.domain.model import (
    Assignment,
    Plan,
    PlanningCase,
    PlanningProblem,
    StaffMember,
)
from eropaf_scheduling.domain.time import PartOfDay, Slot, visit_windows

__all__ = [
    "Planner",
    "counsellor_candidates",
    "employee_candidates",
    "planning_slots",
    "slot_capacity",
    "violations",
]


class Planner(Protocol):
    def plan(self, problem: PlanningProblem) -> Plan:
        """A plan for every open case of the problem: visits, backlog and visits moved."""
        ...


def planning_slots(problem: PlanningProblem) -> list[Slot]:
    return [Slot(day, part) for day in problem.days for part in PartOfDay]


def slot_capacity(problem: PlanningProblem, member: StaffMember, part: PartOfDay) -> int:
    """Visits one person can make in one part of day (visit windows, at most max_per_dag)."""
    windows = len(visit_windows(part, problem.visit_minutes, problem.travel_buffer))
    return min(windows, member.max_per_dag)


def counsellor_candidates(problem: PlanningProblem, case: PlanningCase) -> list[StaffMember]:
    """Counsellors of the team serving the case, serving its municipality (by code)."""
    return sorted(
        (
            m
            for m in problem.staff
            if m.active
            and m.rol is StaffRole.SCHULDHULPVERLENER
            and m.organisatie == case.team
            and case.gemeentecode in m.gemeenten
        ),
        key=lambda m: m.code,
    )


def employee_candidates(problem: PlanningProblem, case: PlanningCase) -> list[StaffMember]:
    """The duo's other member: an employee of a signalling corporation serving the
    municipality; when no corporation signalled, a second counsellor."""
    corporations = [c for c in case.corporations if c in problem.corporation_codes]
    if not corporations:
        return counsellor_candidates(problem, case)
    return sorted(
        (
            m
            for m in problem.staff
            if m.active
            and m.rol is StaffRole.MEDEWERKER
            and m.organisatie in corporations
            and case.gemeentecode in m.gemeenten
        ),
        key=lambda m: m.code,
    )


def violations(problem: PlanningProblem, plan: Plan) -> list[str]:
    """Every hard rule the plan breaks (empty for a valid plan)."""
    found: list[str] = []
    cases = {c.case_ref: c for c in problem.cases}
    staff = {m.code: m for m in problem.staff}
    per_case = Counter(a.case_ref for a in plan.assignments)
    found += [f"case {ref} has {n} visits" for ref, n in per_case.items() if n > 1]
    per_window: Counter[tuple[str, Slot, int]] = Counter()
    per_day: Counter[tuple[str, date]] = Counter(problem.prior_load)
    per_week: Counter[tuple[str, tuple[int, int]]] = Counter()
    for (code, day), n in problem.prior_load.items():
        per_week[(code, day.isocalendar()[:2])] += n
    areas: dict[tuple[str, Slot], set[str]] = defaultdict(set)
    for a in plan.assignments:
        case = cases.get(a.case_ref)
        if case is None:
            found.append(f"visit for unknown or closed case {a.case_ref}")
            continue
        if a.slot.datum < problem.first_day or a.slot.datum not in problem.days:
            found.append(f"{a.case_ref}: {a.slot} is not a planning day")
        if a.staff[0] == a.staff[1]:
            found.append(f"{a.case_ref}: duo of one person")
        side_a = {m.code for m in employee_candidates(problem, case)}
        side_b = {m.code for m in counsellor_candidates(problem, case)}
        if a.staff[0] not in side_a:
            found.append(f"{a.case_ref}: {a.staff[0]} may not be the duo's employee")
        if a.staff[1] not in side_b:
            found.append(f"{a.case_ref}: {a.staff[1]} is not a counsellor serving the case")
        windows = visit_windows(a.slot.part, problem.visit_minutes, problem.travel_buffer)
        if not 0 <= a.window < len(windows):
            found.append(f"{a.case_ref}: no visit window {a.window} in {a.slot.part}")
        for code in a.staff:
            member = staff.get(code)
            if member is None or not member.available(a.slot, problem.absences):
                found.append(f"{a.case_ref}: {code} not available {a.slot}")
            per_window[(code, a.slot, a.window)] += 1
            per_day[(code, a.slot.datum)] += 1
            per_week[(code, a.slot.datum.isocalendar()[:2])] += 1
            areas[(code, a.slot)].add(case.gemeentecode)
    found += [
        f"{code} double-booked {slot} window {w}"
        for (code, slot, w), n in per_window.items()
        if n > 1
    ]
    for (code, day), n in per_day.items():
        if code in staff and n > staff[code].max_per_dag:
            found.append(f"{code} has {n} visits on {day} (max {staff[code].max_per_dag})")
    for (code, week), n in per_week.items():
        if code in staff and n > staff[code].max_per_week:
            found.append(f"{code} has {n} visits in week {week} (max {staff[code].max_per_week})")
    for (code, slot), munis in areas.items():
        ordered = sorted(munis)
        for i, x in enumerate(ordered):
            for y in ordered[i + 1 :]:
                if not problem.nearby(x, y):
                    found.append(f"{code} {slot}: {x} and {y} are too far apart")
    return found


def is_moved(before: Assignment, after: Assignment | None) -> bool:
    return after is None or not before.same_visit(after)
