"""SQL repositories of the notification service (PostgreSQL, over the caller's session)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.events import DeliveryChannel, StaffRole
from eropaf_notification.adapters import tables
from eropaf_notification.domain.delivery import Outcome
from eropaf_notification.domain.model import (
    Intent,
    MessageFacts,
    MessageKind,
    StaffMember,
    Visit,
    VisitStatus,
)
from eropaf_notification.service_layer.repositories import (
    Claimed,
    Finished,
    IntentRepository,
    StaffRepository,
    VisitRepository,
)
from eropaf_platform import bulk

__all__ = ["SqlIntentRepository", "SqlStaffRepository", "SqlVisitRepository"]

_S, _V, _I, _A = tables.staff, tables.visit, tables.intent, tables.attempt


def _member(row: Any) -> StaffMember:
    return StaffMember(
        code=row.code,
        naam=row.naam,
        email=row.email,
        organisatie=row.organisatie,
        rol=StaffRole(row.rol),
        gemeenten=tuple(row.gemeenten),
        taal=row.taal,
        bericht=row.bericht,
        active=row.active,
    )


class SqlStaffRepository(StaffRepository):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_many(self, codes: Collection[str]) -> dict[str, StaffMember]:
        if not codes:
            return {}
        rows = await self.session.execute(sa.select(_S).where(bulk.any_of(_S.c.code, codes)))
        return {r.code: _member(r) for r in rows}

    async def active(self) -> list[StaffMember]:
        rows = await self.session.execute(sa.select(_S).where(_S.c.active).order_by(_S.c.code))
        return [_member(r) for r in rows]

    async def save(self, member: StaffMember, changed_at: datetime) -> bool:
        values = {
            "code": member.code,
            "naam": member.naam,
            "email": member.email,
            "organisatie": member.organisatie,
            "rol": member.rol.value,
            "gemeenten": list(member.gemeenten),
            "taal": member.taal,
            "bericht": member.bericht,
            "active": member.active,
            "changed_at": changed_at,
        }
        stmt = pg_insert(_S).values(values)
        upsert = stmt.on_conflict_do_update(
            index_elements=[_S.c.code],
            set_={k: stmt.excluded[k] for k in values if k != "code"},
            where=_S.c.changed_at <= stmt.excluded.changed_at,
        ).returning(_S.c.code)
        return (await self.session.execute(upsert)).first() is not None


def _visit(row: Any) -> Visit:
    return Visit(
        visit_id=row.visit_id,
        case_ref=row.case_ref,
        gemeentecode=row.gemeentecode,
        team=row.team,
        datum=row.datum,
        dagdeel=row.dagdeel,
        start=row.starts_at,
        end=row.ends_at,
        staff=tuple(row.staff),
        sequence=row.sequence,
        attempt=row.attempt,
        deadline=row.deadline,
        status=VisitStatus(row.status),
    )


_VISIT_COLUMNS = (
    "visit_id",
    "case_ref",
    "gemeentecode",
    "team",
    "datum",
    "dagdeel",
    "starts_at",
    "ends_at",
    "staff",
    "sequence",
    "attempt",
    "deadline",
    "status",
)
_SAVE_VISITS = bulk.json_insert(
    _V, _VISIT_COLUMNS, conflict=["visit_id"], update=_VISIT_COLUMNS[1:]
)


class SqlVisitRepository(VisitRepository):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_many(self, visit_ids: Collection[str]) -> dict[str, Visit]:
        if not visit_ids:
            return {}
        rows = await self.session.execute(
            sa.select(_V).where(bulk.any_of(_V.c.visit_id, visit_ids))
        )
        return {r.visit_id: _visit(r) for r in rows}

    async def save_many(self, visits: Sequence[Visit]) -> None:
        if not visits:
            return
        rows = [
            {
                "visit_id": v.visit_id,
                "case_ref": v.case_ref,
                "gemeentecode": v.gemeentecode,
                "team": v.team,
                "datum": v.datum,
                "dagdeel": v.dagdeel,
                "starts_at": v.start,
                "ends_at": v.end,
                "staff": list(v.staff),
                "sequence": v.sequence,
                "attempt": v.attempt,
                "deadline": v.deadline,
                "status": v.status.value,
            }
            for v in visits
        ]
        await self.session.execute(_SAVE_VISITS, {"rows": bulk.rows_json(rows)})

    async def planned_between(self, first: date, last: date) -> list[Visit]:
        rows = await self.session.execute(
            sa.select(_V).where(
                _V.c.status == VisitStatus.PLANNED.value, _V.c.datum.between(first, last)
            )
        )
        return [_visit(r) for r in rows]

    async def planned_until(self, last: date, staff_code: str) -> list[Visit]:
        rows = await self.session.execute(
            sa.select(_V).where(
                _V.c.status == VisitStatus.PLANNED.value,
                _V.c.datum <= last,
                _V.c.staff.contains([staff_code]),
            )
        )
        return [_visit(r) for r in rows]


_ADD_INTENTS = bulk.json_insert(
    _I,
    (
        "notification_id",
        "fact",
        "version",
        "recipient",
        "channel",
        "kind",
        "case_ref",
        "facts",
        "status",
        "created_at",
        "next_attempt_at",
    ),
    conflict=["notification_id"],
    returning=("notification_id",),
)

# Due rows, oldest first; rows another loop holds (row lock or a running lease) are passed by.
_CLAIM = sa.text(
    """
    UPDATE notification_intent i SET lease_until = :lease_until
    FROM (
        SELECT notification_id FROM notification_intent
        WHERE status = 'pending' AND next_attempt_at <= :now
          AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE i.notification_id = due.notification_id
    RETURNING i.notification_id, i.fact, i.version, i.recipient, i.channel, i.kind, i.facts,
              i.attempts, i.created_at
    """
)


# One statement per round: a retry gets its next time, any other outcome is final.
_FINISH = sa.text(
    """
    UPDATE notification_intent i SET
        attempts = u.attempt,
        lease_until = NULL,
        last_error = u.detail,
        next_attempt_at = COALESCE(u.next_attempt_at, i.next_attempt_at),
        status = COALESCE(u.status, i.status),
        finished_at = CASE WHEN u.status IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END
    FROM json_to_recordset(CAST(:rows AS json)) AS u(
        notification_id text, attempt int, detail text, next_attempt_at timestamptz, status text
    )
    WHERE i.notification_id = u.notification_id
    """
)
_ADD_ATTEMPTS = bulk.json_insert(_A, ("notification_id", "attempt", "at", "outcome", "detail"))


def _intent(row: Any, routine: bool = False) -> Intent:
    return Intent(
        fact=row.fact,
        version=row.version,
        recipient=row.recipient,
        kind=MessageKind(row.kind),
        facts=MessageFacts.model_validate(row.facts),
        channel=DeliveryChannel(row.channel),
        routine=routine,
    )


class SqlIntentRepository(IntentRepository):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, intents: Sequence[tuple[Intent, str]], now: datetime) -> list[str]:
        if not intents:
            return []
        rows = [
            {
                "notification_id": i.notification_id,
                "fact": i.fact,
                "version": i.version,
                "recipient": i.recipient,
                "channel": i.channel.value,
                "kind": i.kind.value,
                "case_ref": i.case_ref,
                "facts": i.facts.model_dump(mode="json"),
                "status": status,
                "created_at": now,
                "next_attempt_at": now,
            }
            for i, status in intents
        ]
        result = await self.session.execute(_ADD_INTENTS, {"rows": bulk.rows_json(rows)})
        return list(result.scalars())

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]:
        rows = await self.session.execute(
            _CLAIM,
            {"now": now, "limit": limit, "lease_until": now + timedelta(seconds=lease_s)},
        )
        return [
            Claimed(intent=_intent(r), attempts=r.attempts, owed_since=r.created_at) for r in rows
        ]

    async def finish(self, attempts: Sequence[Finished], now: datetime) -> None:
        if not attempts:
            return
        rows = [
            {
                "notification_id": f.notification_id,
                "attempt": f.attempts,
                "at": now,
                "outcome": f.outcome.value,
                "detail": f.reason,
                "next_attempt_at": f.next_attempt_at,
                "status": None if f.outcome is Outcome.RETRY else f.outcome.value,
            }
            for f in attempts
        ]
        payload = {"rows": bulk.rows_json(rows), "now": now}
        await self.session.execute(_FINISH, payload)
        await self.session.execute(_ADD_ATTEMPTS, {"rows": payload["rows"]})

    async def latest_case_opened(self, facts: Collection[str]) -> dict[str, Intent]:
        if not facts:
            return {}
        rows = await self.session.execute(
            sa.select(_I)
            .where(_I.c.kind == MessageKind.CASE_OPENED.value, bulk.any_of(_I.c.fact, facts))
            .order_by(_I.c.fact, _I.c.version.desc())
            .ext(distinct_on(_I.c.fact))
        )
        return {r.fact: _intent(r) for r in rows}

    async def recorded(self, notification_ids: Collection[str]) -> set[str]:
        if not notification_ids:
            return set()
        rows = await self.session.execute(
            sa.select(_I.c.notification_id).where(
                bulk.any_of(_I.c.notification_id, notification_ids)
            )
        )
        return set(rows.scalars())

    async def held_for(self, recipient: str) -> list[Intent]:
        rows = await self.session.execute(
            sa.select(_I)
            .where(_I.c.status == "held", _I.c.recipient == recipient)
            .order_by(_I.c.created_at)
        )
        return [_intent(r, routine=True) for r in rows]

    async def mark_digested(self, notification_ids: Collection[str], digest_id: str) -> None:
        if not notification_ids:
            return
        await self.session.execute(
            sa.update(_I)
            .where(bulk.any_of(_I.c.notification_id, notification_ids), _I.c.status == "held")
            .values(status="digested", digest_id=digest_id)
        )
