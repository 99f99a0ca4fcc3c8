"""In-memory stand-ins for the services the portal talks to, with the contract's permission
rules (CONTRACT §4.2) so that pages and use cases can be tested without the stack."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from eropaf_portal.domain.model import (
    Absence,
    AbsenceRecorded,
    Attempt,
    AttemptInput,
    BacklogEntry,
    CapacityWeek,
    Case,
    DdasExport,
    Funnel,
    Language,
    Me,
    Role,
    StaffEntry,
    Task,
    Visit,
)
from eropaf_portal.service_layer.ports import (
    Forbidden,
    NotFound,
    Refused,
    Unauthenticated,
)

PARTS = {"Ochtend": (9, 10), "Middag": (13, 14), "Avond": (18, 19)}
TODAY = date(2026, 11, 16)  # a Monday

CASE_A = "a" * 32
CASE_B = "b" * 32


def me(
    code: str,
    rol: Role,
    organisatie: str,
    gemeenten: tuple[str, ...] = ("0356",),
    taal: Language = Language.NL,
) -> Me:
    return Me(
        code=code,
        naam=code.title(),
        email=f"{code}@example.org",
        organisatie=organisatie,
        rol=rol,
        gemeenten=gemeenten,
        taal=taal,
    )


def visit(
    visit_id: str,
    case_ref: str,
    datum: date,
    dagdeel: str,
    staff: tuple[str, ...],
    attempt: int = 1,
) -> Visit:
    start_h, end_h = PARTS[dagdeel]
    return Visit(
        visit_id=visit_id,
        case_ref=case_ref,
        gemeentecode="0356",
        datum=datum,
        dagdeel=dagdeel,
        start=datetime.combine(datum, time(start_h), UTC),
        end=datetime.combine(datum, time(end_h), UTC),
        staff=staff,
        status="planned",
        sequence=0,
        attempt=attempt,
    )


@dataclass
class FakeCase:
    case_ref: str
    gemeentecode: str
    team: str
    deadline: date
    outreach: str = "home_visit"
    state: str = "open"
    attempt: int = 1
    eindresultaat: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


class FakeScheduling:
    """Staff, cases and visits in memory. Not reached on a home visit plans the next visit at
    once, on the next working day at another part of day (the real service replans)."""

    def __init__(self) -> None:
        self.members: dict[str, Me] = {}
        self.inactive: set[str] = set()
        self.cases: dict[str, FakeCase] = {}
        self.visit_store: dict[str, Visit] = {}
        self.absences: dict[str, list[Absence]] = {}
        self.backlog_entries: list[tuple[BacklogEntry, str]] = []  # (entry, team)
        self.capacity_weeks: list[CapacityWeek] = []
        self.task_list: list[Task] = []
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    # -- set-up --

    def add_staff(self, member: Me) -> Me:
        self.members[member.code] = member
        return member

    def add_case(self, case: FakeCase, *visits: Visit) -> None:
        self.cases[case.case_ref] = case
        for v in visits:
            self.visit_store[v.visit_id] = v

    # -- the rules --

    def _member(self, code: str) -> Me:
        member = self.members.get(code)
        if member is None or code in self.inactive:
            raise Unauthenticated()
        return member

    def _may_see(self, member: Me, case: FakeCase) -> bool:
        if member.rol is Role.COORDINATOR:
            return case.gemeentecode in member.gemeenten
        own = any(
            member.code in v.staff for v in self.visit_store.values() if v.case_ref == case.case_ref
        )
        return own or (
            member.rol is Role.SCHULDHULPVERLENER
            and member.organisatie == case.team
            and case.gemeentecode in member.gemeenten
        )

    def _case(self, code: str, case_ref: str) -> FakeCase:
        member = self._member(code)
        case = self.cases.get(case_ref)
        if case is None:
            raise NotFound("no such case")
        if not self._may_see(member, case):
            raise Forbidden("not a case of yours")
        return case

    # -- the API --

    async def me(self, code: str) -> Me:
        self.calls.append(("me", code))
        return self._member(code)

    async def visits(self, code: str, first: date, last: date) -> list[Visit]:
        self.calls.append(("visits", code))
        member = self._member(code)
        return [
            v
            for v in self.visit_store.values()
            if first <= v.datum <= last and self._may_see(member, self.cases[v.case_ref])
        ]

    async def case(self, code: str, case_ref: str) -> Case:
        self.calls.append(("case", code))
        c = self._case(code, case_ref)
        return Case(
            case_ref=c.case_ref,
            gemeentecode=c.gemeentecode,
            outreach=c.outreach,
            deadline=c.deadline,
            state=c.state,
            attempt=c.attempt,
            visits=tuple(v for v in self.visit_store.values() if v.case_ref == case_ref),
            attempts=tuple(c.attempts),
            eindresultaat=c.eindresultaat,
        )

    async def record_attempt(self, code: str, case_ref: str, attempt: AttemptInput) -> Attempt:
        self.calls.append(("record_attempt", code))
        c = self._case(code, case_ref)
        if c.state != "open":
            raise Refused(409, "the outreach of this case has ended")
        if attempt.bereikt != (attempt.eindresultaat is not None):
            raise Refused(422, "eindresultaat exactly when reached")
        planned = [
            v for v in self.visit_store.values() if v.case_ref == case_ref and v.status == "planned"
        ]
        if attempt.visit_id is not None and attempt.visit_id not in {v.visit_id for v in planned}:
            raise Refused(409, "visit_id is not the case's planned visit")
        recorded = Attempt(
            attempt=c.attempt,
            contactsoort=attempt.contactsoort,
            datum=attempt.datum,
            dagdeel=attempt.dagdeel,
            bereikt=attempt.bereikt,
            eindresultaat=attempt.eindresultaat,
            recorded_by=code,
        )
        c.attempts.append(recorded)
        for v in planned:
            self.visit_store[v.visit_id] = replace(v, status="done")
        if attempt.bereikt:
            c.state, c.eindresultaat = "ended", attempt.eindresultaat
        elif attempt.contactsoort == "Huisbezoek" and planned:
            last = planned[0]
            c.attempt += 1
            other = next(p for p in PARTS if p != last.dagdeel)
            new = visit(
                f"{next(self._ids):016x}",
                case_ref,
                last.datum + timedelta(days=1),
                other,
                last.staff,
                attempt=c.attempt,
            )
            self.visit_store[new.visit_id] = new
        return recorded

    async def backlog(self, code: str) -> list[BacklogEntry]:
        member = self._member(code)
        if member.rol is Role.MEDEWERKER:
            raise Forbidden("the backlog is for counsellors and coordinators")
        return [
            e
            for e, team in self.backlog_entries
            if e.gemeentecode in member.gemeenten
            and (member.rol is Role.COORDINATOR or team == member.organisatie)
        ]

    async def tasks(self, code: str) -> list[Task]:
        self._member(code)
        return list(self.task_list)

    async def staff(self, code: str) -> list[StaffEntry]:
        if self._member(code).rol is not Role.COORDINATOR:
            raise Forbidden("coordinators only")
        return [
            StaffEntry(
                s.code,
                s.naam,
                s.organisatie,
                s.rol,
                s.gemeenten,
                tuple(self.absences.get(s.code, [])),
            )
            for s in self.members.values()
        ]

    async def add_absence(
        self, code: str, staff_code: str, first: date, last: date
    ) -> AbsenceRecorded:
        if self._member(code).rol is not Role.COORDINATOR:
            raise Forbidden("coordinators only")
        if staff_code not in self.members:
            raise NotFound("no such staff member")
        self.absences.setdefault(staff_code, []).append(Absence(first, last))
        moved = 0
        for v in list(self.visit_store.values()):
            if staff_code in v.staff and first <= v.datum <= last and v.status == "planned":
                self.visit_store[v.visit_id] = replace(v, status="cancelled")
                case = self.cases[v.case_ref]
                self.backlog_entries.append(
                    (
                        BacklogEntry(
                            v.case_ref, v.gemeentecode, case.deadline, "no_counsellor_available"
                        ),
                        case.team,
                    )
                )
                moved += 1
        return AbsenceRecorded(staff_code, first, last, moved)

    async def capacity(self, code: str, first: date, last: date) -> list[CapacityWeek]:
        if self._member(code).rol is not Role.COORDINATOR:
            raise Forbidden("coordinators only")
        return list(self.capacity_weeks)


class FakeMatching:
    def __init__(self) -> None:
        self.signals: dict[str, list[str]] = {}
        self.funnels: dict[str, Funnel] = {}
        self.exports: list[tuple[str, date, date]] = []

    async def signal_refs(self, case_ref: str) -> list[str]:
        return list(self.signals.get(case_ref, []))

    async def funnel(self, gemeentecode: str, first: date, last: date) -> Funnel:
        f = self.funnels.get(gemeentecode)
        if f is None:
            return Funnel(gemeentecode, first, last, 0, 0, 0, 0, 0)
        return replace(f, first=first, last=last)

    async def ddas_export(self, gemeentecode: str, first: date, last: date) -> DdasExport:
        self.exports.append((gemeentecode, first, last))
        return DdasExport(orjson.dumps({"gemeente": gemeentecode}), "application/json")


class FakeIntake:
    """Personal data by signal ref; every read is audited (who, why, which refs)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.audit: list[tuple[str, str, tuple[str, ...]]] = []

    async def personal_data(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]:
        self.audit.append((accessor, purpose, tuple(signal_refs)))
        return {ref: self.records[ref] for ref in signal_refs if ref in self.records}


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, *, to: str, subject: str, body: str) -> None:
        self.sent.append({"to": to, "subject": subject, "body": body})


@dataclass
class World:
    scheduling: FakeScheduling
    matching: FakeMatching
    intake: FakeIntake
    mailer: FakeMailer


def demo_world() -> World:
    """Two municipalities' worth of staff: a duo (mitros employee + wil counsellor), another
    corporation's employee, a coordinator; case A visited by the duo tomorrow morning."""
    scheduling = FakeScheduling()
    scheduling.add_staff(me("anna", Role.MEDEWERKER, "mitros"))
    scheduling.add_staff(me("bram", Role.SCHULDHULPVERLENER, "wil", taal=Language.EN))
    scheduling.add_staff(me("olga", Role.MEDEWERKER, "portaal"))
    scheduling.add_staff(me("cora", Role.COORDINATOR, "wil", gemeenten=("0356", "0321")))
    scheduling.add_case(
        FakeCase(CASE_A, "0356", "wil", TODAY + timedelta(days=10)),
        visit("1" * 16, CASE_A, TODAY, "Ochtend", ("anna", "bram")),
    )
    scheduling.add_case(
        FakeCase(CASE_B, "0356", "wil", TODAY + timedelta(days=12)),
        visit("2" * 16, CASE_B, TODAY + timedelta(days=2), "Middag", ("olga", "bram")),
    )
    matching = FakeMatching()
    matching.signals[CASE_A] = ["sig-a-1"]
    matching.funnels["0356"] = Funnel("0356", TODAY, TODAY, 100, 60, 40, 25, 10)
    intake = FakeIntake()
    intake.records["sig-a-1"] = {
        "ID": "x",
        "client": {"Achternaam": "Jansen", "Postcode": "3431AB", "Huisnummer": 12},
        "contactgegevens": {"telefoonnummer": "0612345678", "email": "jansen@example.org"},
    }
    return World(scheduling, matching, intake, FakeMailer())
