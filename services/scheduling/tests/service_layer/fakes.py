"""In-memory unit of work for the service-layer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime

from eropaf_contracts.events import OutreachKind
from eropaf_platform.unit_of_work import FakeUnitOfWork
from eropaf_scheduling.domain.model import Absence, BacklogEntry, StaffMember
from eropaf_scheduling.domain.schedule import (
    AttemptRecord,
    CaseRecord,
    CaseState,
    VisitRecord,
    VisitStatus,
)
from eropaf_scheduling.service_layer.unit_of_work import (
    ReplanState,
    SchedulingRepository,
    SchedulingUnitOfWork,
)


class FakeRepository(SchedulingRepository):
    def __init__(self) -> None:
        self.staff_rows: dict[str, tuple[StaffMember, str | None]] = {}
        self.absence_rows: set[Absence] = set()
        self.cases: dict[str, CaseRecord] = {}
        self.aliases: dict[str, str] = {}
        self.visits: dict[str, VisitRecord] = {}
        self.attempts: list[AttemptRecord] = []
        self.backlog_rows: list[BacklogEntry] = []
        self.replan = ReplanState(0, 0, None)
        self.cases_read = 0  # planning_cases() calls
        self.visits_read: list[str] = []  # case refs whose visits were read

    async def staff(self) -> list[StaffMember]:
        return [m for m, _ in sorted(self.staff_rows.values(), key=lambda r: r[0].code)]

    async def staff_member(self, code: str) -> StaffMember | None:
        row = self.staff_rows.get(code)
        return row[0] if row else None

    async def staff_by_token_hash(self, token_hash: str) -> StaffMember | None:
        return next((m for m, h in self.staff_rows.values() if h == token_hash), None)

    async def save_staff(self, member: StaffMember, token_hash: str | None) -> None:
        old = self.staff_rows.get(member.code)
        self.staff_rows[member.code] = (member, token_hash or (old[1] if old else None))

    async def absences(self, *, lasting_until: date | None = None) -> list[Absence]:
        return sorted(
            a for a in self.absence_rows if lasting_until is None or a.last >= lasting_until
        )

    async def add_absence(self, absence: Absence) -> None:
        self.absence_rows.add(absence)

    async def case(self, case_ref: str) -> CaseRecord | None:
        return self.cases.get(self.aliases.get(case_ref, case_ref))

    async def current_ref(self, case_ref: str) -> str:
        return self.aliases.get(case_ref, case_ref)

    async def cases_by_ref(self, case_refs: Collection[str]) -> dict[str, CaseRecord]:
        return {ref: self.cases[ref] for ref in case_refs if ref in self.cases}

    async def visits_of_cases(self, case_refs: Collection[str]) -> dict[str, list[VisitRecord]]:
        return {
            ref: sorted(
                (v for v in self.visits.values() if v.case_ref == ref), key=lambda v: v.attempt
            )
            for ref in case_refs
        }

    async def open_tasks(self) -> list[CaseRecord]:
        return sorted(
            (
                c
                for c in self.cases.values()
                if c.state == CaseState.OPEN and c.outreach is not OutreachKind.HOME_VISIT
            ),
            key=lambda c: (c.deadline, c.case_ref),
        )

    async def planning_cases(self) -> list[CaseRecord]:
        self.cases_read += 1
        holding = {v.case_ref for v in self.visits.values() if v.status == VisitStatus.PLANNED}
        return sorted(
            (
                c
                for c in self.cases.values()
                if c.state == CaseState.OPEN
                and (c.outreach is OutreachKind.HOME_VISIT or c.case_ref in holding)
            ),
            key=lambda c: c.case_ref,
        )

    async def save_case(self, case: CaseRecord) -> None:
        self.cases[case.case_ref] = case

    async def rekey_case(self, old_ref: str, new_ref: str) -> None:
        for vid, visit in list(self.visits.items()):
            if visit.case_ref == old_ref:
                self.visits[vid] = replace(visit, case_ref=new_ref)
        self.attempts = [
            replace(a, case_ref=new_ref) if a.case_ref == old_ref else a for a in self.attempts
        ]
        for alias, target in list(self.aliases.items()):
            if target == old_ref:
                self.aliases[alias] = new_ref
        self.aliases[old_ref] = new_ref
        self.cases.pop(old_ref, None)

    async def visits_of(self, case_ref: str) -> list[VisitRecord]:
        self.visits_read.append(case_ref)
        return sorted(
            (v for v in self.visits.values() if v.case_ref == case_ref), key=lambda v: v.attempt
        )

    async def planned_visits(self) -> list[VisitRecord]:
        return [v for v in self.visits.values() if v.status == "planned"]

    async def cancelled_visits(self, case_refs: Sequence[str]) -> list[VisitRecord]:
        self.visits_read += case_refs
        return sorted(
            (
                v
                for v in self.visits.values()
                if v.case_ref in case_refs and v.status == VisitStatus.CANCELLED
            ),
            key=lambda v: (v.case_ref, v.attempt, v.sequence),
        )

    async def visits_between(self, first: date, last: date) -> list[VisitRecord]:
        return sorted(
            (v for v in self.visits.values() if first <= v.datum <= last),
            key=lambda v: (v.datum, v.part.order, v.window, v.visit_id),
        )

    async def save_visit(self, visit: VisitRecord) -> None:
        self.visits[visit.visit_id] = visit

    async def attempts_of(self, case_ref: str) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.case_ref == case_ref]

    async def add_attempt(self, attempt: AttemptRecord) -> None:
        self.attempts.append(attempt)

    async def backlog(self) -> list[BacklogEntry]:
        return list(self.backlog_rows)

    async def replace_backlog(self, entries: list[BacklogEntry]) -> None:
        self.backlog_rows = list(entries)

    async def replan_state(self) -> ReplanState:
        return self.replan

    async def request_replan(self, now: datetime) -> None:
        r = self.replan
        first = r.requested == r.planned or r.pending_since is None
        self.replan = ReplanState(
            r.requested + 1, r.planned, now, now if first else r.pending_since
        )

    async def mark_planned(self, generation: int, at: datetime) -> None:
        self.replan = replace(self.replan, planned=generation, planned_at=at)


class FakeSchedulingUnitOfWork(FakeUnitOfWork, SchedulingUnitOfWork):
    """State changes are applied at once (no rollback of the repository): the tests check
    what is committed through ``published`` and the repository."""

    def __init__(self, repo: FakeRepository | None = None) -> None:
        super().__init__()
        self.repo: FakeRepository = repo or FakeRepository()
        self.locks = 0

    async def lock(self) -> None:
        self.locks += 1

    def factory(self):
        @asynccontextmanager
        async def opened() -> AsyncIterator[FakeSchedulingUnitOfWork]:
            async with self:
                yield self
                await self.commit()

        return opened
