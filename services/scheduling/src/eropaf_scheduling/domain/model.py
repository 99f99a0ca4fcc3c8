"""What planning works on: staff, absences, open home-visit cases, visits, and the plan.

Pure data; no I/O. The planner (``adapters.planner``) turns a :class:`PlanningProblem` into a
:class:`Plan`; :func:`eropaf_scheduling.domain.planning.compare` says what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

from eropaf_contracts.events import BacklogReason, StaffRole, Urgency
from eropaf_scheduling.domain.time import WEEKDAYS, PartOfDay, Slot

__all__ = [
    "URGENCY_RANK",
    "Absence",
    "Assignment",
    "BacklogEntry",
    "Plan",
    "PlanningCase",
    "PlanningProblem",
    "StaffMember",
    "visit_id_for",
]

URGENCY_RANK = {Urgency.CRISIS: 0, Urgency.HIGH: 1, Urgency.NORMAL: 2}


@dataclass(frozen=True, order=True)
class Absence:
    """Leave or sickness, inclusive dates."""

    code: str
    first: date
    last: date

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class StaffMember:
    code: str
    naam: str
    email: str
    organisatie: str  # partner code (medewerker) or team code (schuldhulpverlener)
    rol: StaffRole
    gemeenten: frozenset[str]
    beschikbaar: frozenset[tuple[str, PartOfDay]]  # ("ma", OCHTEND), ...
    max_per_dag: int
    max_per_week: int
    taal: str = "nl"
    bericht: str = "direct"
    active: bool = True

    def available(self, slot: Slot, absences: tuple[Absence, ...] = ()) -> bool:
        """Weekly pattern minus absences; inactive staff and coordinators are never available."""
        if not self.active or self.rol is StaffRole.COORDINATOR:
            return False
        if (slot.weekday, slot.part) not in self.beschikbaar:
            return False
        return not any(a.code == self.code and a.covers(slot.datum) for a in absences)

    @property
    def works_weekends(self) -> bool:
        return any(day in ("za", "zo") for day, _ in self.beschikbaar)

    def availability_text(self) -> str:
        return "|".join(
            f"{day}-{part.value}"
            for day, part in sorted(
                self.beschikbaar, key=lambda dp: (WEEKDAYS.index(dp[0]), dp[1].order)
            )
        )


@dataclass(frozen=True)
class PlanningCase:
    """An open home-visit case as the planner sees it (the attempt it must plan next)."""

    case_ref: str
    gemeentecode: str
    team: str
    postcode_area: str
    urgency: Urgency
    deadline: date  # last day for first contact
    priority: int
    corporations: tuple[str, ...] = ()  # signalling corporations: the employee comes from one
    attempt: int = 1
    not_before: date | None = None  # e.g. the day after a card was left
    avoid_parts: frozenset[PartOfDay] = frozenset()  # parts of day already tried

    def order_key(self) -> tuple[int, date, int, str]:
        return (URGENCY_RANK[self.urgency], self.deadline, -self.priority, self.case_ref)


@dataclass(frozen=True)
class Assignment:
    """One planned visit: a case, a slot and a duo (employee side first, counsellor second)."""

    case_ref: str
    slot: Slot
    staff: tuple[str, str]
    window: int = 0  # index of the visit window inside the part of day
    pinned: bool = False  # its invite has gone out: it moves only when it must

    def same_visit(self, other: Assignment) -> bool:
        return self.slot == other.slot and self.staff == other.staff and self.window == other.window


@dataclass(frozen=True)
class BacklogEntry:
    case_ref: str
    gemeentecode: str
    team: str
    deadline: date
    attempt: int
    reason: BacklogReason
    planned_late: Slot | None = None  # a visit after the deadline, when one could be found


@dataclass(frozen=True)
class PlanningProblem:
    """Everything one solve needs; nothing is read from anywhere else."""

    first_day: date  # no visit before this local date
    days: tuple[date, ...]  # planning dates (working days; weekends only for weekend staff)
    staff: tuple[StaffMember, ...]
    absences: tuple[Absence, ...]
    cases: tuple[PlanningCase, ...]
    previous: tuple[Assignment, ...] = ()  # the current plan (pinned or not)
    corporation_codes: frozenset[str] = frozenset()
    travel: dict[tuple[str, str], int] = field(default_factory=dict)  # symmetric
    travel_within: int = 15
    visit_minutes: int = 60
    travel_buffer: int = 30  # minutes between two visits; farther areas are not combined
    # visits already made or booked before first_day, per (staff code, date): capacity used
    prior_load: dict[tuple[str, date], int] = field(default_factory=dict)

    def travel_minutes(self, a: str, b: str) -> int | None:
        if a == b:
            return self.travel_within
        return self.travel.get((a, b), self.travel.get((b, a)))

    def nearby(self, a: str, b: str) -> bool:
        minutes = self.travel_minutes(a, b)
        return minutes is not None and minutes <= self.travel_buffer


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...]
    backlog: tuple[BacklogEntry, ...]
    moved: int  # previous visits that changed slot, window or duo, or were dropped
    solve_seconds: float
    status: str
    stats: dict[str, int] = field(default_factory=dict)


def visit_id_for(case_ref: str, attempt: int, generation: int = 0) -> str:
    """Stable id of the visit serving one attempt of a case (the invite's UID derives from it)."""
    digest = hashlib.sha256(f"visit|{case_ref}|{attempt}|{generation}".encode()).hexdigest()
    return digest[:32]
