"""The scheduling state the service keeps, and what happens to it.

Operations return the events that say what happened (payload models); the service layer
saves the records and queues the events. Pure: no I/O, the current date comes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from eropaf_contracts.ddas import Contactsoort, Eindresultaat
from eropaf_contracts.events import (
    BacklogReason,
    CaseOutcomeRecorded,
    CaseUnplanned,
    ContactAttemptRecorded,
    EventPayload,
    OutreachKind,
    OutreachPlanned,
    Urgency,
    VisitCancelled,
    VisitCancelReason,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_scheduling.domain.model import (
    Absence,
    Assignment,
    BacklogEntry,
    Plan,
    PlanningCase,
    PlanningProblem,
    StaffMember,
    visit_id_for,
)
from eropaf_scheduling.domain.time import PartOfDay, Slot, local_instant, visit_windows

__all__ = [
    "AttemptRecord",
    "CaseRecord",
    "CaseState",
    "ScheduleError",
    "VisitRecord",
    "VisitStatus",
    "apply_plan",
    "cancel_case_visits",
    "overdue_visits",
    "record_attempt",
]


class ScheduleError(ValueError):
    """A request the state does not allow (the API answers 409 or 422)."""


class CaseState:
    OPEN = "open"  # outreach running
    ENDED = "ended"  # an eindresultaat was recorded (by staff or the attempt limit)
    CLOSED = "closed"  # matching closed the case


class VisitStatus:
    PLANNED = "planned"
    CANCELLED = "cancelled"
    DONE = "done"


@dataclass(frozen=True)
class CaseRecord:
    case_ref: str
    gemeentecode: str
    team: str
    postcode_area: str
    outreach: OutreachKind
    urgency: Urgency
    deadline: date
    priority: int
    partner_codes: tuple[str, ...] = ()
    state: str = CaseState.OPEN
    attempt: int = 1  # the contact attempt to make next
    not_before: date | None = None
    avoid_parts: frozenset[PartOfDay] = frozenset()
    resultaat: Eindresultaat | None = None
    outreach_planned: bool = False

    def planning_case(self, corporations: frozenset[str]) -> PlanningCase:
        return PlanningCase(
            case_ref=self.case_ref,
            gemeentecode=self.gemeentecode,
            team=self.team,
            postcode_area=self.postcode_area,
            urgency=self.urgency,
            deadline=self.deadline,
            priority=self.priority,
            corporations=tuple(c for c in self.partner_codes if c in corporations),
            attempt=self.attempt,
            not_before=self.not_before,
            avoid_parts=self.avoid_parts,
        )

    @property
    def needs_visit(self) -> bool:
        return self.state == CaseState.OPEN and self.outreach is OutreachKind.HOME_VISIT


@dataclass(frozen=True)
class VisitRecord:
    visit_id: str
    case_ref: str
    attempt: int
    datum: date
    part: PartOfDay
    window: int
    staff: tuple[str, str]
    status: str = VisitStatus.PLANNED
    sequence: int = 0

    @property
    def slot(self) -> Slot:
        return Slot(self.datum, self.part)

    def times(self, visit_minutes: int, travel_buffer: int) -> tuple[datetime, datetime]:
        start, end = visit_windows(self.part, visit_minutes, travel_buffer)[self.window]
        return local_instant(self.datum, start), local_instant(self.datum, end)


@dataclass(frozen=True)
class AttemptRecord:
    case_ref: str
    attempt: int
    contactsoort: Contactsoort
    datum: date
    dagdeel: PartOfDay | None
    bereikt: bool
    eindresultaat: Eindresultaat | None
    visit_id: str | None
    recorded_by: str | None


@dataclass
class Changes:
    """What one operation changed: records to save and events to publish."""

    cases: list[CaseRecord] = field(default_factory=list)
    visits: list[VisitRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    events: list[EventPayload] = field(default_factory=list)
    replan: bool = False


def _visit_facts(
    case: CaseRecord, visit: VisitRecord, visit_minutes: int, travel_buffer: int
) -> dict[str, object]:
    start, end = visit.times(visit_minutes, travel_buffer)
    return {
        "visit_id": visit.visit_id,
        "case_ref": case.case_ref,
        "gemeentecode": case.gemeentecode,
        "team": case.team,
        "postcode_area": case.postcode_area,
        "datum": visit.datum,
        "dagdeel": visit.part.dagdeel,
        "start": start,
        "end": end,
        "staff": list(visit.staff),
        "sequence": visit.sequence,
        "attempt": visit.attempt,
        "deadline": case.deadline,
    }


def apply_plan(
    plan: Plan,
    cases: dict[str, CaseRecord],
    planned: dict[str, VisitRecord],
    cancelled: dict[str, VisitRecord],
    absences: tuple[Absence, ...],
    backlog_before: dict[str, BacklogReason],
    *,
    visit_minutes: int,
    travel_buffer: int,
    now: datetime,
) -> Changes:
    """Turn a plan into saved visits and events. ``planned``: the current planned visit per
    case; ``cancelled``: the last cancelled visit per case (a re-plan of its attempt reuses
    its id with a higher SEQUENCE)."""
    changes = Changes()
    by_case = {a.case_ref: a for a in plan.assignments}
    for ref in sorted(set(planned) | set(by_case)):
        case = cases.get(ref)
        if case is None:
            continue
        before = planned.get(ref)
        after = by_case.get(ref)
        if before is not None and after is None:
            absent = any(a.code in before.staff and a.covers(before.datum) for a in absences)
            gone = replace(before, status=VisitStatus.CANCELLED, sequence=before.sequence + 1)
            changes.visits.append(gone)
            changes.events.append(
                VisitCancelled(
                    **_visit_facts(case, gone, visit_minutes, travel_buffer),  # type: ignore[arg-type]
                    reason=VisitCancelReason.STAFF_ABSENT
                    if absent
                    else VisitCancelReason.REPLANNED,
                )
            )
        elif after is not None and before is None:
            old = cancelled.get(ref)
            reuse = old is not None and old.attempt == case.attempt
            visit = VisitRecord(
                visit_id=old.visit_id if reuse and old else visit_id_for(ref, case.attempt),
                case_ref=ref,
                attempt=case.attempt,
                datum=after.slot.datum,
                part=after.slot.part,
                window=after.window,
                staff=after.staff,
                sequence=old.sequence + 1 if reuse and old else 0,
            )
            changes.visits.append(visit)
            changes.events.append(
                VisitPlanned(**_visit_facts(case, visit, visit_minutes, travel_buffer))  # type: ignore[arg-type]
            )
            if not case.outreach_planned:
                changes.events.append(OutreachPlanned(case_ref=ref, planned_on=visit.datum))
                changes.cases.append(replace(case, outreach_planned=True))
        elif after is not None and before is not None:
            if (before.slot, before.window, before.staff) == (
                after.slot,
                after.window,
                after.staff,
            ):
                continue
            moved = replace(
                before,
                datum=after.slot.datum,
                part=after.slot.part,
                window=after.window,
                staff=after.staff,
                sequence=before.sequence + 1,
            )
            changes.visits.append(moved)
            old_start, old_end = before.times(visit_minutes, travel_buffer)
            changes.events.append(
                VisitRescheduled(
                    **_visit_facts(case, moved, visit_minutes, travel_buffer),  # type: ignore[arg-type]
                    previous_datum=before.datum,
                    previous_dagdeel=before.part.dagdeel,
                    previous_start=old_start,
                    previous_end=old_end,
                    previous_staff=list(before.staff),
                )
            )
    for entry in plan.backlog:
        if backlog_before.get(entry.case_ref) != entry.reason:
            changes.events.append(
                CaseUnplanned(
                    case_ref=entry.case_ref,
                    gemeentecode=entry.gemeentecode,
                    team=entry.team,
                    deadline=entry.deadline,
                    attempt=entry.attempt,
                    reason=entry.reason,
                    detected_at=now,
                )
            )
    return changes


def overdue_visits(
    cases: dict[str, CaseRecord], planned: list[VisitRecord], today: date
) -> tuple[BacklogEntry, ...]:
    """Open cases whose planned visit's day is over with no contact attempt recorded for it
    (recording one ends the visit): in the backlog as ``visit_overdue`` until the duo records
    what happened, so the coordinator sees it. The planner leaves such a case alone."""
    entries = [
        BacklogEntry(
            case.case_ref,
            case.gemeentecode,
            case.team,
            case.deadline,
            visit.attempt,
            BacklogReason.VISIT_OVERDUE,
        )
        for visit in planned
        if visit.status == VisitStatus.PLANNED
        and visit.datum < today
        and (case := cases.get(visit.case_ref)) is not None
        and case.state == CaseState.OPEN
    ]
    return tuple(sorted(entries, key=lambda e: (e.deadline, e.case_ref)))


def cancel_case_visits(
    case: CaseRecord,
    planned: VisitRecord | None,
    reason: VisitCancelReason,
    *,
    visit_minutes: int,
    travel_buffer: int,
) -> Changes:
    changes = Changes()
    if planned is not None and planned.status == VisitStatus.PLANNED:
        gone = replace(planned, status=VisitStatus.CANCELLED, sequence=planned.sequence + 1)
        changes.visits.append(gone)
        changes.events.append(
            VisitCancelled(
                **_visit_facts(case, gone, visit_minutes, travel_buffer),  # type: ignore[arg-type]
                reason=reason,
            )
        )
    return changes


def record_attempt(
    case: CaseRecord,
    planned: VisitRecord | None,
    *,
    contactsoort: Contactsoort,
    datum: date,
    dagdeel: PartOfDay | None,
    bereikt: bool,
    eindresultaat: Eindresultaat | None,
    visit_id: str | None,
    recorded_by: str,
    max_attempts: int,
    visit_minutes: int,
    travel_buffer: int,
) -> Changes:
    """A contact attempt. Not reached on a home visit: a card is left and the next attempt
    is planned at another part of day, until the last attempt ends the case as
    ``Definitief geen contact kunnen krijgen``. Reached: the eindresultaat ends the outreach."""
    if case.state != CaseState.OPEN:
        raise ScheduleError("the outreach of this case has ended")
    if bereikt and eindresultaat is None:
        raise ScheduleError("a reached contact needs an eindresultaat")
    if not bereikt and eindresultaat is not None:
        raise ScheduleError("an eindresultaat is recorded only when the household was reached")
    visit = None
    if visit_id is not None:
        if planned is None or planned.visit_id != visit_id:
            raise ScheduleError("visit_id is not the case's planned visit")
        visit = planned
        dagdeel = dagdeel or visit.part
    changes = Changes()
    attempt_no = case.attempt
    attempts = [
        AttemptRecord(
            case.case_ref,
            attempt_no,
            contactsoort,
            datum,
            dagdeel,
            bereikt,
            eindresultaat,
            visit_id,
            recorded_by,
        )
    ]
    home_visit = contactsoort is Contactsoort.HUISBEZOEK
    if home_visit and not bereikt:
        attempts.append(
            AttemptRecord(
                case.case_ref,
                attempt_no,
                Contactsoort.KAARTJE,
                datum,
                dagdeel,
                False,
                None,
                visit_id,
                recorded_by,
            )
        )
    for a in attempts:
        changes.attempts.append(a)
        changes.events.append(
            ContactAttemptRecorded(
                case_ref=a.case_ref,
                soort=a.contactsoort,
                bereikt=a.bereikt,
                datum=a.datum,
                dagdeel=a.dagdeel.dagdeel if a.dagdeel else None,
                attempt=a.attempt,
                visit_id=a.visit_id,
                gemeentecode=case.gemeentecode,
                recorded_by=recorded_by,
            )
        )
    if visit is not None:
        done = replace(visit, status=VisitStatus.DONE)
        changes.visits.append(done)
        changes.events.append(
            VisitCompleted(
                visit_id=visit.visit_id,
                case_ref=case.case_ref,
                gemeentecode=case.gemeentecode,
                datum=datum,
                staff=list(visit.staff),
                attempt=visit.attempt,
                bereikt=bereikt,
            )
        )
    elif planned is not None and (bereikt or attempt_no >= max_attempts):
        changes.visits += cancel_case_visits(
            case,
            planned,
            VisitCancelReason.CASE_CLOSED,
            visit_minutes=visit_minutes,
            travel_buffer=travel_buffer,
        ).visits
    if bereikt:
        assert eindresultaat is not None
        changes.cases.append(replace(case, state=CaseState.ENDED, resultaat=eindresultaat))
        changes.events.append(
            CaseOutcomeRecorded(case_ref=case.case_ref, resultaat=eindresultaat, datum=datum)
        )
    elif attempt_no >= max_attempts:
        final = Eindresultaat.DEFINITIEF_GEEN_CONTACT
        changes.cases.append(replace(case, state=CaseState.ENDED, resultaat=final))
        changes.events.append(
            CaseOutcomeRecorded(case_ref=case.case_ref, resultaat=final, datum=datum)
        )
    else:
        tried = case.avoid_parts | ({dagdeel} if dagdeel else set())
        changes.cases.append(
            replace(
                case,
                attempt=attempt_no + 1,
                not_before=datum + timedelta(days=1),
                avoid_parts=frozenset({dagdeel})
                if dagdeel and len(tried) >= 3
                else frozenset(tried),
            )
        )
        changes.replan = case.needs_visit
    return changes


def planning_problem(
    *,
    first_day: date,
    days: tuple[date, ...],
    staff: tuple[StaffMember, ...],
    absences: tuple[Absence, ...],
    cases: list[CaseRecord],
    planned: dict[str, VisitRecord],
    corporations: frozenset[str],
    travel: dict[tuple[str, str], int],
    travel_within: int,
    visit_minutes: int,
    travel_buffer: int,
) -> PlanningProblem:
    """The planner's input from the stored state: open home-visit cases; their planned visits
    (on or after ``first_day``) are the previous plan, pinned: their invites went out."""
    open_cases = [c for c in cases if c.needs_visit]
    previous = tuple(
        Assignment(v.case_ref, v.slot, v.staff, window=v.window, pinned=True)
        for c in open_cases
        if (v := planned.get(c.case_ref)) is not None and v.datum >= first_day
    )
    prior: dict[tuple[str, date], int] = {}
    for v in planned.values():
        if v.datum < first_day:
            for code in v.staff:
                prior[(code, v.datum)] = prior.get((code, v.datum), 0) + 1
    return PlanningProblem(
        first_day=first_day,
        days=days,
        staff=staff,
        absences=absences,
        cases=tuple(c.planning_case(corporations) for c in open_cases),
        previous=previous,
        corporation_codes=corporations,
        travel=travel,
        travel_within=travel_within,
        visit_minutes=visit_minutes,
        travel_buffer=travel_buffer,
        prior_load=prior,
    )


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
