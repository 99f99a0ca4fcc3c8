"""In-memory repositories and unit of work for service-layer tests."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from eropaf_notification.domain.delivery import Outcome
from eropaf_notification.domain.model import (
    Intent,
    MessageKind,
    StaffMember,
    Visit,
    VisitStatus,
)
from eropaf_notification.service_layer.unit_of_work import (
    Claimed,
    Finished,
    IntentRepository,
    NotificationUnitOfWork,
    StaffRepository,
    VisitRepository,
)
from eropaf_platform.unit_of_work import FakeUnitOfWork


class FakeStaff(StaffRepository):
    def __init__(self) -> None:
        self.rows: dict[str, tuple[StaffMember, datetime]] = {}

    async def get_many(self, codes: Collection[str]) -> dict[str, StaffMember]:
        return {c: self.rows[c][0] for c in codes if c in self.rows}

    async def active(self) -> list[StaffMember]:
        return [m for m, _ in sorted(self.rows.values(), key=lambda r: r[0].code) if m.active]

    async def save(self, member: StaffMember, changed_at: datetime) -> bool:
        known = self.rows.get(member.code)
        if known is not None and known[1] > changed_at:
            return False
        self.rows[member.code] = (member, changed_at)
        return True


class FakeVisits(VisitRepository):
    def __init__(self) -> None:
        self.rows: dict[str, Visit] = {}

    async def get_many(self, visit_ids: Collection[str]) -> dict[str, Visit]:
        return {v: self.rows[v] for v in visit_ids if v in self.rows}

    async def save_many(self, visits: Sequence[Visit]) -> None:
        for visit in visits:
            self.rows[visit.visit_id] = visit

    async def planned_between(self, first: date, last: date) -> list[Visit]:
        return [
            v
            for v in self.rows.values()
            if v.status is VisitStatus.PLANNED and first <= v.datum <= last
        ]

    async def planned_until(self, last: date, staff_code: str) -> list[Visit]:
        return [
            v
            for v in self.rows.values()
            if v.status is VisitStatus.PLANNED and v.datum <= last and staff_code in v.staff
        ]


@dataclass
class Row:
    intent: Intent
    status: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    lease_until: datetime | None = None
    reason: str | None = None
    digest_id: str | None = None
    log: list[tuple[int, str, str | None]] = field(default_factory=list)


class FakeIntents(IntentRepository):
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    async def add(self, intents: Sequence[tuple[Intent, str]], now: datetime) -> list[str]:
        new = []
        for intent, status in intents:
            if intent.notification_id not in self.rows:
                self.rows[intent.notification_id] = Row(intent, status, now, now)
                new.append(intent.notification_id)
        return new

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]:
        due = [
            r
            for r in self.rows.values()
            if r.status == "pending"
            and r.next_attempt_at <= now
            and (r.lease_until is None or r.lease_until < now)
        ][:limit]
        for r in due:
            r.lease_until = now + timedelta(seconds=lease_s)
        return [Claimed(r.intent, r.attempts, r.created_at) for r in due]

    async def finish(self, attempts: Sequence[Finished], now: datetime) -> None:
        for f in attempts:
            row = self.rows[f.notification_id]
            row.attempts, row.lease_until, row.reason = f.attempts, None, f.reason
            row.log.append((f.attempts, f.outcome.value, f.reason))
            if f.outcome is Outcome.RETRY:
                assert f.next_attempt_at is not None
                row.next_attempt_at = f.next_attempt_at
            else:
                row.status = f.outcome.value

    async def latest_case_opened(self, facts: Collection[str]) -> dict[str, Intent]:
        latest: dict[str, Intent] = {}
        for r in self.rows.values():
            i = r.intent
            if i.kind is MessageKind.CASE_OPENED and i.fact in facts:
                if i.fact not in latest or latest[i.fact].version < i.version:
                    latest[i.fact] = i
        return latest

    async def recorded(self, notification_ids: Collection[str]) -> set[str]:
        return {n for n in notification_ids if n in self.rows}

    async def held_for(self, recipient: str) -> list[Intent]:
        return [
            r.intent
            for r in self.rows.values()
            if r.status == "held" and r.intent.recipient == recipient
        ]

    async def mark_digested(self, notification_ids: Collection[str], digest_id: str) -> None:
        for nid in notification_ids:
            if self.rows[nid].status == "held":
                self.rows[nid].status = "digested"
                self.rows[nid].digest_id = digest_id

    def by_status(self, status: str) -> list[Intent]:
        return [r.intent for r in self.rows.values() if r.status == status]


class FakeNotificationUnitOfWork(FakeUnitOfWork, NotificationUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.staff: FakeStaff = FakeStaff()
        self.visits: FakeVisits = FakeVisits()
        self.intents: FakeIntents = FakeIntents()
