"""Scheduling's repository as the service layer sees it (the SQL one is in
``adapters.repository``, the in-memory one in the tests' fakes)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from eropaf_scheduling.domain.model import Absence, BacklogEntry, StaffMember
from eropaf_scheduling.domain.schedule import AttemptRecord, CaseRecord, VisitRecord

__all__ = ["ReplanState", "SchedulingRepository"]


@dataclass(frozen=True)
class ReplanState:
    requested: int
    planned: int
    requested_at: datetime | None  # the last change
    pending_since: datetime | None = None  # the first change not planned yet
    planned_at: datetime | None = None  # when the current plan was made

    @property
    def due(self) -> bool:
        return self.requested != self.planned


class SchedulingRepository(abc.ABC):
    @abc.abstractmethod
    async def staff(self) -> list[StaffMember]: ...
    @abc.abstractmethod
    async def staff_member(self, code: str) -> StaffMember | None: ...
    @abc.abstractmethod
    async def staff_by_token_hash(self, token_hash: str) -> StaffMember | None: ...
    @abc.abstractmethod
    async def save_staff(self, member: StaffMember, token_hash: str | None) -> None:
        """Insert or update; ``token_hash`` None keeps the stored one."""

    @abc.abstractmethod
    async def absences(self, *, lasting_until: date | None = None) -> list[Absence]:
        """All absences, or those that last until ``lasting_until`` or later."""

    @abc.abstractmethod
    async def add_absence(self, absence: Absence) -> None: ...
    @abc.abstractmethod
    async def case(self, case_ref: str) -> CaseRecord | None:
        """The case by its ref or by a ref it had before."""

    @abc.abstractmethod
    async def current_ref(self, case_ref: str) -> str:
        """The ref a case known by ``case_ref`` has now: ``case_ref`` itself unless a case
        was re-keyed from it."""

    @abc.abstractmethod
    async def planning_cases(self) -> list[CaseRecord]:
        """What a replan plans, by ref: the open cases that need a home visit, and any other
        open case that still holds a planned visit (the replan cancels it)."""

    @abc.abstractmethod
    async def cases_by_ref(self, case_refs: Collection[str]) -> dict[str, CaseRecord]:
        """The cases with these current refs (a ref a case had before is not looked up)."""

    @abc.abstractmethod
    async def visits_of_cases(self, case_refs: Collection[str]) -> dict[str, list[VisitRecord]]:
        """All visits of these cases, by case ref, each list by attempt."""

    @abc.abstractmethod
    async def open_tasks(self) -> list[CaseRecord]:
        """Open cases whose outreach is a phone call or a letter, by deadline and ref."""

    @abc.abstractmethod
    async def save_case(self, case: CaseRecord) -> None: ...
    @abc.abstractmethod
    async def rekey_case(self, old_ref: str, new_ref: str) -> None:
        """Move a case's records to its new ref and remember the old one."""

    @abc.abstractmethod
    async def visits_of(self, case_ref: str) -> list[VisitRecord]: ...
    @abc.abstractmethod
    async def planned_visits(self) -> list[VisitRecord]: ...
    @abc.abstractmethod
    async def cancelled_visits(self, case_refs: Sequence[str]) -> list[VisitRecord]:
        """The cancelled visits of these cases, by case and attempt."""

    @abc.abstractmethod
    async def visits_between(self, first: date, last: date) -> list[VisitRecord]: ...
    @abc.abstractmethod
    async def save_visit(self, visit: VisitRecord) -> None: ...
    @abc.abstractmethod
    async def attempts_of(self, case_ref: str) -> list[AttemptRecord]: ...
    @abc.abstractmethod
    async def add_attempt(self, attempt: AttemptRecord) -> None: ...
    @abc.abstractmethod
    async def backlog(self) -> list[BacklogEntry]: ...
    @abc.abstractmethod
    async def replace_backlog(self, entries: list[BacklogEntry]) -> None: ...
    @abc.abstractmethod
    async def replan_state(self) -> ReplanState: ...
    @abc.abstractmethod
    async def request_replan(self, now: datetime) -> None:
        """Count a change; the first one since the last plan also sets ``pending_since``."""

    @abc.abstractmethod
    async def mark_planned(self, generation: int, at: datetime) -> None: ...
