"""Scheduling's use cases: one function each; load through the unit of work, ask the domain,
save, queue the events, commit."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from eropaf_contracts.ddas import Contactsoort, Eindresultaat
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseClosed,
    CaseUpdated,
    EventPayload,
    OutreachDecided,
    OutreachKind,
    OutreachPlanned,
    StaffChanged,
    VisitCancelReason,
)
from eropaf_contracts.region import Region
from eropaf_contracts.topics import STAFF_TOPIC, VISITS_TOPIC
from eropaf_scheduling.domain import access
from eropaf_scheduling.domain import capacity as capacity_rules
from eropaf_scheduling.domain.case_book import CaseBook
from eropaf_scheduling.domain.model import Absence, Plan, StaffMember
from eropaf_scheduling.domain.planning import Planner
from eropaf_scheduling.domain.schedule import (
    AttemptRecord,
    CaseRecord,
    CaseState,
    Changes,
    VisitRecord,
    VisitStatus,
    apply_plan,
    cancel_case_visits,
    overdue_visits,
    planning_problem,
    record_attempt,
)
from eropaf_scheduling.domain.time import AMSTERDAM, PartOfDay, visit_windows, working_days
from eropaf_scheduling.service_layer.unit_of_work import ReplanState, SchedulingUnitOfWork

__all__ = [
    "AbsenceRecorded",
    "CaseEvent",
    "PlanningConfig",
    "ReplanOutcome",
    "UnknownCase",
    "UnknownStaff",
    "capacity",
    "case_closed",
    "case_events",
    "case_updated",
    "hash_token",
    "import_roster",
    "open_tasks",
    "outreach_decided",
    "record_absence",
    "record_absence_and_replan",
    "record_contact_attempt",
    "replan",
    "staff_with_absences",
]


class UnknownStaff(LookupError):
    pass


class UnknownCase(LookupError):
    pass


@dataclass(frozen=True)
class PlanningConfig:
    region: Region
    horizon_days: int = 10  # working days
    travel_buffer: int = 30  # minutes between two visits of one person
    # the last home-visit attempt when the region policy names none (home_visit_attempts)
    fallback_attempts: int = 3
    lead_days: int = 1  # the first plannable day is this many days after today

    @property
    def corporations(self) -> frozenset[str]:
        return frozenset(p.code for p in self.region.partners if self.region.is_corporation(p.code))

    @property
    def visit_minutes(self) -> int:
        return self.region.visit_minutes

    @property
    def max_attempts(self) -> int:
        """The last contact attempt: the region policy's, else the setting."""
        return self.region.home_visit_attempts or self.fallback_attempts


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _emit(uow: SchedulingUnitOfWork, payloads: list[EventPayload], cause: Envelope | None) -> None:
    for payload in payloads:
        topic = STAFF_TOPIC if isinstance(payload, StaffChanged) else VISITS_TOPIC
        key = payload.code if isinstance(payload, StaffChanged) else payload.case_ref  # type: ignore[attr-defined]
        envelope = cause.follow(payload, key=key) if cause else Envelope.wrap(payload, key=key)
        uow.emit(topic, envelope)


async def _save(uow: SchedulingUnitOfWork, changes: Changes, cause: Envelope | None) -> None:
    await uow.repo.save_cases(changes.cases)
    await uow.repo.save_visits(changes.visits)
    await uow.repo.add_attempts(changes.attempts)
    _emit(uow, changes.events, cause)


def _staff_changed(member: StaffMember, now: datetime) -> StaffChanged:
    return StaffChanged(
        code=member.code,
        naam=member.naam,
        email=member.email,
        organisatie=member.organisatie,
        rol=member.rol,
        gemeenten=sorted(member.gemeenten),
        taal=member.taal,
        bericht=member.bericht,
        active=member.active,
        changed_at=now,
    )


# --- roster --------------------------------------------------------------------------------


async def import_roster(
    uow: SchedulingUnitOfWork, staff: list[StaffMember], now: datetime
) -> dict[str, str]:
    """Load or update staff; the same file twice changes nothing. Returns a new token for
    each new staff member (only its hash is stored)."""
    tokens: dict[str, str] = {}
    async with uow:
        await uow.lock()
        changed = False
        for member in staff:
            before = await uow.repo.staff_member(member.code)
            if before == member:
                continue
            token = None
            if before is None:
                token = secrets.token_urlsafe(32)
                tokens[member.code] = token
            await uow.repo.save_staff(member, hash_token(token) if token else None)
            _emit(uow, [_staff_changed(member, now)], None)
            changed = True
        if changed:
            await uow.repo.request_replan(now)
        await uow.commit()
    return tokens


async def record_absence(
    uow: SchedulingUnitOfWork, code: str, first: date, last: date, now: datetime
) -> None:
    if last < first:
        raise ValueError("--to is before --from")
    async with uow:
        await uow.lock()
        if await uow.repo.staff_member(code) is None:
            raise UnknownStaff(code)
        await uow.repo.add_absence(Absence(code, first, last))
        await uow.repo.request_replan(now)
        await uow.commit()


@dataclass(frozen=True)
class AbsenceRecorded:
    code: str
    first: date
    last: date
    visits_moved: int  # the member's planned visits in the period that are no longer theirs
    replanned: bool  # False: replanning is still due (the service's replan job does it)


async def record_absence_and_replan(
    unit_of_work: Callable[[], AbstractAsyncContextManager[SchedulingUnitOfWork]],
    code: str,
    first: date,
    last: date,
    now: datetime,
    replan_now: Callable[[], Awaitable[object]],
    *,
    tries: int = 3,
) -> AbsenceRecorded:
    """Record the absence as :func:`record_absence` does, then replan at once (``replan_now``,
    e.g. :func:`replan` with no quiet time) until no replan is due, at most ``tries`` times
    (another change during a solve makes it plan again)."""

    async def theirs() -> set[str]:
        async with unit_of_work() as uow:
            return {
                v.visit_id
                for v in await uow.repo.visits_between(first, last)
                if v.status == VisitStatus.PLANNED and code in v.staff
            }

    before = await theirs()
    async with unit_of_work() as uow:
        await record_absence(uow, code, first, last, now)
    due = True
    for _ in range(tries):
        await replan_now()
        async with unit_of_work() as uow:
            due = (await uow.repo.replan_state()).due
        if not due:
            break
    moved = len(before - await theirs())
    return AbsenceRecorded(code, first, last, visits_moved=moved, replanned=not due)


# --- staff portal views ----------------------------------------------------------------


async def staff_with_absences(
    uow: SchedulingUnitOfWork, gemeenten: frozenset[str]
) -> list[tuple[StaffMember, list[Absence]]]:
    """Active staff serving any of ``gemeenten``, by code, each with their absences."""
    async with uow:
        staff = await uow.repo.staff()
        absences = await uow.repo.absences()
    return [
        (m, sorted(a for a in absences if a.code == m.code))
        for m in sorted(staff, key=lambda m: m.code)
        if m.active and m.gemeenten & gemeenten
    ]


async def capacity(
    uow: SchedulingUnitOfWork,
    config: PlanningConfig,
    gemeenten: frozenset[str],
    first: date,
    last: date,
) -> list[capacity_rules.CapacityRow]:
    """Planned visits against available slots (``domain.capacity``); four queries, whatever
    the number of visits (and one per ref a case had before a merge)."""
    async with uow:
        staff = await uow.repo.staff()
        absences = tuple(await uow.repo.absences())
        planned = [
            v
            for v in await uow.repo.visits_between(first, last)
            if v.status != VisitStatus.CANCELLED
        ]
        refs = sorted({v.case_ref for v in planned})
        cases: dict[str, CaseRecord | None] = dict(await uow.repo.cases_by_ref(refs))
        for ref in refs:
            if ref not in cases:  # a ref the case had before a merge
                cases[ref] = await uow.repo.case(ref)
    visits = [
        capacity_rules.PlannedVisit(case.gemeentecode, case.team, v.datum)
        for v in planned
        if (case := cases[v.case_ref]) is not None
    ]
    windows = {
        part: len(visit_windows(part, config.visit_minutes, config.travel_buffer))
        for part in PartOfDay
    }
    return capacity_rules.capacity(
        first=first,
        last=last,
        gemeenten=gemeenten,
        staff=staff,
        absences=absences,
        holidays=frozenset(config.region.holidays),
        windows_per_part=windows,
        visits=visits,
    )


async def open_tasks(uow: SchedulingUnitOfWork, member: StaffMember) -> list[CaseRecord]:
    """Open cases whose outreach is a phone call or a letter (a task for the team, not a
    visit) that ``member`` may see, by deadline."""
    async with uow:
        cases = await uow.repo.open_tasks()
        visits = await uow.repo.visits_of_cases([c.case_ref for c in cases])
    return [c for c in cases if access.may_see(member, c, visits[c.case_ref])]


async def visible_visits(
    uow: SchedulingUnitOfWork, member: StaffMember, first: date, last: date
) -> list[tuple[CaseRecord, VisitRecord]]:
    """The visits between ``first`` and ``last`` (by day, part, window) on cases ``member``
    may see, each with its case; three queries, whatever the number of visits."""
    async with uow:
        in_period = await uow.repo.visits_between(first, last)
        refs = sorted({v.case_ref for v in in_period})
        cases: dict[str, CaseRecord | None] = dict(await uow.repo.cases_by_ref(refs))
        for ref in refs:
            if ref not in cases:  # a ref the case had before a merge
                cases[ref] = await uow.repo.case(ref)
        found = {c.case_ref for c in cases.values() if c is not None}
        visits = await uow.repo.visits_of_cases(sorted(found))
    seen: list[tuple[CaseRecord, VisitRecord]] = []
    for v in in_period:
        case = cases[v.case_ref]
        if case is not None and access.may_see(member, case, visits[case.case_ref]):
            seen.append((case, v))
    return seen


async def may_see_case(uow: SchedulingUnitOfWork, member: StaffMember, case_ref: str) -> bool:
    """Whether ``member`` may see the case; :class:`UnknownCase` when there is none."""
    async with uow:
        case = await uow.repo.case(case_ref)
        if case is None:
            raise UnknownCase(case_ref)
        return access.may_see(member, case, await uow.repo.visits_of(case.case_ref))


# --- case events from matching ---------------------------------------------------------

CaseEvent = OutreachDecided | CaseUpdated | CaseClosed


async def case_events(
    uow: SchedulingUnitOfWork,
    events: Sequence[tuple[CaseEvent, Envelope]],
    config: PlanningConfig,
    now: datetime,
) -> None:
    """Matching's case events (each with its envelope, the cause of what it makes happen),
    applied in order in one transaction: outreach decisions open or update cases, updates
    re-key and re-route them, closures cancel their visits. Reads every case the events name
    (by current or former ref) with its visits at once, applies the events in memory as one
    by one, writes what changed in bulk, and asks for one (debounced) replan if any event
    needed one."""
    async with uow:
        await uow.lock()
        refs: set[str] = set()
        for event, _ in events:
            refs.add(event.case_ref)
            if isinstance(event, CaseUpdated):
                refs.update(event.previous_case_refs)
        cases, aliases = await uow.repo.cases_known_as(refs)
        stored = await uow.repo.visits_of_cases(refs | cases.keys())
        book = CaseBook(cases, aliases, (v for visits in stored.values() for v in visits))
        replan = False
        for event, cause in events:
            if isinstance(event, OutreachDecided):
                changes = _outreach_decided(book, event, config)
            elif isinstance(event, CaseUpdated):
                changes = _case_updated(book, event, config)
            else:
                changes = _case_closed(book, event, config)
            _emit(uow, changes.events, cause)
            replan = replan or changes.replan
        written = book.written()
        if written.aliases:
            await uow.repo.rekey_cases(written.rekeyed, written.aliases)
        await uow.repo.save_cases(written.cases)
        await uow.repo.save_visits(written.visits)
        if replan:
            await uow.repo.request_replan(now)
        await uow.commit()


async def outreach_decided(
    uow: SchedulingUnitOfWork,
    event: OutreachDecided,
    cause: Envelope,
    config: PlanningConfig,
    now: datetime,
) -> None:
    """:func:`case_events` with one event."""
    await case_events(uow, [(event, cause)], config, now)


async def case_updated(
    uow: SchedulingUnitOfWork,
    event: CaseUpdated,
    cause: Envelope,
    config: PlanningConfig,
    now: datetime,
) -> None:
    """:func:`case_events` with one event."""
    await case_events(uow, [(event, cause)], config, now)


async def case_closed(
    uow: SchedulingUnitOfWork,
    event: CaseClosed,
    cause: Envelope,
    config: PlanningConfig,
    now: datetime,
) -> None:
    """:func:`case_events` with one event."""
    await case_events(uow, [(event, cause)], config, now)


def _outreach_decided(book: CaseBook, event: OutreachDecided, config: PlanningConfig) -> Changes:
    """Open or update the case. A home visit is planned by the next replan; phone and letter
    become a task for the team, recorded through the staff API the same way. A case whose
    outreach ended or that was closed stays as it is.

    A decision under a ref the case was re-keyed from was made before the re-keying: when
    the case is held under its new ref, what it holds came later and stays (a household's
    events are ordered by its key, and a merge of households gives the case another key, so
    events under the old ref may come after those under the new one)."""
    current = book.current_ref(event.case_ref)
    before = book.case(current)
    stale = current != event.case_ref and before is not None
    if stale or (before is not None and before.state != CaseState.OPEN):
        return Changes()
    case = CaseRecord(
        case_ref=current,
        gemeentecode=event.gemeentecode,
        team=event.team,
        postcode_area=event.postcode_area,
        outreach=event.outreach,
        urgency=event.urgency,
        deadline=event.deadline,
        priority=event.priority,
        partner_codes=tuple(event.partner_codes),
    )
    if before is not None:
        case = replace(
            case,
            attempt=before.attempt,
            not_before=before.not_before,
            avoid_parts=before.avoid_parts,
            outreach_planned=before.outreach_planned,
        )
    changes = Changes()
    if before is not None and before.needs_visit and not case.needs_visit:
        changes = cancel_case_visits(
            before,
            _planned(book.visits_of(case.case_ref)),
            VisitCancelReason.OUTREACH_CHANGED,
            visit_minutes=config.visit_minutes,
            travel_buffer=config.travel_buffer,
        )
    if event.outreach is not OutreachKind.HOME_VISIT and not case.outreach_planned:
        # a task for the team from the day it was decided
        changes.events.append(
            OutreachPlanned(case_ref=case.case_ref, planned_on=event.decided_at.date())
        )
        case = replace(case, outreach_planned=True)
    changes.cases.append(case)
    book.save(changes)
    changes.replan = case.needs_visit or (before is not None and before.needs_visit)
    return changes


def _case_updated(book: CaseBook, event: CaseUpdated, config: PlanningConfig) -> Changes:
    """Re-key a case that was renamed or absorbed others, and take its new routing. An
    absorbed open case's planned visit is cancelled when the case it joins needs a visit
    (that case stays planned once), and the case it joins is as far along (outreach planned)
    as the furthest of the two.

    A previous ref not known yet is remembered all the same, so that the events still to
    come under it (on its old household's key) find the case by its new ref. An update under
    a ref the case was re-keyed from is older than the re-keying: its routing is not taken."""
    changes = Changes()
    current = book.current_ref(event.case_ref)
    for old in event.previous_case_refs:
        if old in (event.case_ref, current):
            continue
        existing = book.case(old)
        if existing is None:
            book.rekey(old, current)
            continue
        if existing.case_ref == current:
            continue
        target = book.case(current)
        if target is None:
            book.save_case(replace(existing, case_ref=current))
        elif existing.state == CaseState.OPEN:
            if existing.outreach_planned and not target.outreach_planned:
                book.save_case(replace(target, outreach_planned=True))
            if target.needs_visit:
                for visit in book.visits_of(existing.case_ref):
                    if visit.status == VisitStatus.PLANNED:
                        cancelled = cancel_case_visits(
                            existing,
                            visit,
                            VisitCancelReason.CASE_CLOSED,
                            visit_minutes=config.visit_minutes,
                            travel_buffer=config.travel_buffer,
                        )
                        book.save(cancelled)
                        changes.events += cancelled.events
        book.rekey(existing.case_ref, current)
    case = book.case(current)
    if case is not None:
        if current == event.case_ref:
            routed = replace(
                case,
                gemeentecode=event.gemeentecode,
                team=event.team,
                postcode_area=event.postcode_area,
            )
            if routed != case:
                book.save_case(routed)
        changes.replan = True
    return changes


def _case_closed(book: CaseBook, event: CaseClosed, config: PlanningConfig) -> Changes:
    """Close the case and cancel its planned visit; a closed or unknown case is left alone."""
    case = book.case(event.case_ref)
    if case is None or case.state == CaseState.CLOSED:
        return Changes()
    changes = cancel_case_visits(
        case,
        _planned(book.visits_of(case.case_ref)),
        VisitCancelReason.CASE_CLOSED,
        visit_minutes=config.visit_minutes,
        travel_buffer=config.travel_buffer,
    )
    changes.cases.append(replace(case, state=CaseState.CLOSED))
    book.save(changes)
    changes.replan = True
    return changes


def _planned(visits: list[VisitRecord]) -> VisitRecord | None:
    return next((v for v in visits if v.status == VisitStatus.PLANNED), None)


# --- staff API -----------------------------------------------------------------------------


async def record_contact_attempt(
    uow: SchedulingUnitOfWork,
    config: PlanningConfig,
    *,
    case_ref: str,
    recorded_by: str,
    contactsoort: Contactsoort,
    datum: date,
    dagdeel: PartOfDay | None,
    bereikt: bool,
    eindresultaat: Eindresultaat | None,
    visit_id: str | None,
    now: datetime,
) -> AttemptRecord:
    """ScheduleError for a request the case's state does not allow."""
    async with uow:
        await uow.lock()
        case = await uow.repo.case(case_ref)
        if case is None:
            raise UnknownCase(case_ref)
        planned = _planned(await uow.repo.visits_of(case.case_ref))
        changes = record_attempt(
            case,
            planned,
            contactsoort=contactsoort,
            datum=datum,
            dagdeel=dagdeel,
            bereikt=bereikt,
            eindresultaat=eindresultaat,
            visit_id=visit_id,
            recorded_by=recorded_by,
            max_attempts=config.max_attempts,
            visit_minutes=config.visit_minutes,
            travel_buffer=config.travel_buffer,
        )
        await _save(uow, changes, None)
        if changes.replan or any(c.state != CaseState.OPEN for c in changes.cases):
            await uow.repo.request_replan(now)
        await uow.commit()
        return changes.attempts[0]


# --- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplanOutcome:
    plan: Plan
    generation: int
    events: int


def planning_days(config: PlanningConfig, today: date, weekend: bool) -> tuple[date, ...]:
    holidays = frozenset(config.region.holidays)
    first = today + timedelta(days=config.lead_days)
    days = working_days(first, config.horizon_days, holidays)
    if weekend:
        span = (days[-1] - first).days + 1
        days = [
            first + timedelta(days=i)
            for i in range(span)
            if first + timedelta(days=i) not in holidays
        ]
    return tuple(days)


def _waiting(state: ReplanState, now: datetime, quiet_s: float, max_delay_s: float | None) -> bool:
    """Whether a due replan still waits for changes to settle (never without a quiet time)."""
    if quiet_s <= 0 or state.requested_at is None:
        return False
    if (now - state.requested_at).total_seconds() >= quiet_s:
        return False
    waited = (now - state.pending_since).total_seconds() if state.pending_since else 0.0
    return max_delay_s is None or waited < max_delay_s


async def replan(
    unit_of_work: Callable[[], AbstractAsyncContextManager[SchedulingUnitOfWork]],
    planner: Planner,
    config: PlanningConfig,
    now: datetime,
    *,
    quiet_s: float = 0.0,
    max_delay_s: float | None = None,
) -> ReplanOutcome | None:
    """Plan again when a change asked for it and none came for ``quiet_s`` (a burst of
    changes is one solve), or at the latest ``max_delay_s`` after the first change not
    planned yet (a steady trickle of changes does not hold planning back). Reads in one
    transaction, solves outside any, and writes the result in another only if nothing
    changed meanwhile (else the next run plans again).

    Reads only what the plan depends on: the staff, the absences not over before the first
    planning day, the planned visits and the cases to plan (open home-visit cases, and open
    cases still holding a visit); after the solve, the cancelled visits of the cases that get
    a new one (a re-plan of the same attempt keeps the visit's id)."""
    today = now.astimezone(AMSTERDAM).date()
    async with unit_of_work() as uow:
        state = await uow.repo.replan_state()
        new_day = (
            state.planned_at is not None and state.planned_at.astimezone(AMSTERDAM).date() < today
        )
        if not state.due and not new_day:
            return None
        if state.due and _waiting(state, now, quiet_s, max_delay_s):
            return None
        staff = await uow.repo.staff()
        days = planning_days(config, today, any(m.works_weekends for m in staff))
        first_day = days[0]
        absences = tuple(await uow.repo.absences(lasting_until=first_day))
        cases = await uow.repo.planning_cases()
        planned_all = await uow.repo.planned_visits()
    planned = {v.case_ref: v for v in planned_all}
    # a case whose visit day has come keeps it until staff record what happened
    waiting = {ref for ref, v in planned.items() if v.datum < first_day}
    plannable = [c for c in cases if c.case_ref not in waiting]
    problem = planning_problem(
        first_day=first_day,
        days=days,
        staff=tuple(staff),
        absences=absences,
        cases=plannable,
        planned=planned,
        corporations=config.corporations,
        travel={tuple(t.between): t.minutes for t in config.region.travel_minutes},  # type: ignore[misc]
        travel_within=config.region.travel_within_municipality_minutes,
        visit_minutes=config.visit_minutes,
        travel_buffer=config.travel_buffer,
    )
    plan = await asyncio.to_thread(planner.plan, problem)
    overdue = overdue_visits({c.case_ref: c for c in cases}, planned_all, today)
    plan = replace(plan, backlog=plan.backlog + overdue)
    async with unit_of_work() as uow:
        await uow.lock()
        current = await uow.repo.replan_state()
        if (current.requested, current.planned) != (state.requested, state.planned):
            # changed while solving, or another run planned meanwhile: the next run plans
            return None
        by_ref = {c.case_ref: c for c in plannable}
        kept = {ref: v for ref, v in planned.items() if ref not in waiting}
        new_visits = sorted(
            {a.case_ref for a in plan.assignments if a.case_ref not in kept} & by_ref.keys()
        )
        cancelled = {
            v.case_ref: v
            for v in await uow.repo.cancelled_visits(new_visits)
            if v.attempt == by_ref[v.case_ref].attempt
        }
        backlog_before = {e.case_ref: e.reason for e in await uow.repo.backlog()}
        changes = apply_plan(
            plan,
            by_ref,
            kept,
            cancelled,
            absences,
            backlog_before,
            visit_minutes=config.visit_minutes,
            travel_buffer=config.travel_buffer,
            now=now,
        )
        await _save(uow, changes, None)
        await uow.repo.replace_backlog(list(plan.backlog))
        await uow.repo.mark_planned(state.requested, now)
        await uow.commit()
    return ReplanOutcome(plan, state.requested, len(changes.events))
