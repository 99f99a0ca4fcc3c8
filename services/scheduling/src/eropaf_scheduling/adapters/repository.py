"""Scheduling's repository on PostgreSQL (the tables in ``adapters.tables``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.ddas import Contactsoort, Eindresultaat
from eropaf_contracts.events import BacklogReason, OutreachKind, StaffRole, Urgency
from eropaf_platform import bulk
from eropaf_scheduling.adapters.tables import (
    AbsenceRow,
    AttemptRow,
    BacklogRow,
    CaseAliasRow,
    CaseRow,
    ReplanRow,
    StaffRow,
    VisitRow,
)
from eropaf_scheduling.domain.model import Absence, BacklogEntry, StaffMember
from eropaf_scheduling.domain.roster import parse_availability
from eropaf_scheduling.domain.schedule import (
    AttemptRecord,
    CaseRecord,
    CaseState,
    VisitRecord,
    VisitStatus,
)
from eropaf_scheduling.domain.time import PartOfDay
from eropaf_scheduling.service_layer.repository import ReplanState, SchedulingRepository

__all__ = ["SqlSchedulingRepository"]


def _staff(row: StaffRow) -> StaffMember:
    return StaffMember(
        code=row.code,
        naam=row.naam,
        email=row.email,
        organisatie=row.organisatie,
        rol=StaffRole(row.rol),
        gemeenten=frozenset(row.gemeenten),
        beschikbaar=parse_availability(row.beschikbaar),
        max_per_dag=row.max_per_dag,
        max_per_week=row.max_per_week,
        taal=row.taal,
        bericht=row.bericht,
        active=row.active,
    )


def _case(row: CaseRow) -> CaseRecord:
    return CaseRecord(
        case_ref=row.case_ref,
        gemeentecode=row.gemeentecode,
        team=row.team,
        postcode_area=row.postcode_area,
        outreach=OutreachKind(row.outreach),
        urgency=Urgency(row.urgency),
        deadline=row.deadline,
        priority=row.priority,
        partner_codes=tuple(row.partner_codes),
        state=row.state,
        attempt=row.attempt,
        not_before=row.not_before,
        avoid_parts=frozenset(PartOfDay(p) for p in row.avoid_parts),
        resultaat=Eindresultaat(row.resultaat) if row.resultaat else None,
        outreach_planned=row.outreach_planned,
    )


def _visit(row: VisitRow) -> VisitRecord:
    return VisitRecord(
        visit_id=row.visit_id,
        case_ref=row.case_ref,
        attempt=row.attempt,
        datum=row.datum,
        part=PartOfDay(row.part),
        window=row.window,
        staff=(row.staff[0], row.staff[1]),
        status=row.status,
        sequence=row.sequence,
    )


_VISIT: sa.Table = VisitRow.__table__  # type: ignore[attr-defined]
_CASE: sa.Table = CaseRow.__table__  # type: ignore[attr-defined]

# Built once (the statement text never changes).
_PLANNING_CASES = (
    sa.select(CaseRow)
    .where(
        _CASE.c.state == CaseState.OPEN,
        sa.or_(
            _CASE.c.outreach == OutreachKind.HOME_VISIT.value,
            sa.exists().where(
                _VISIT.c.case_ref == _CASE.c.case_ref, _VISIT.c.status == VisitStatus.PLANNED
            ),
        ),
    )
    .order_by(_CASE.c.case_ref)
)
_OPEN_TASKS = (
    sa.select(CaseRow)
    .where(_CASE.c.state == CaseState.OPEN, _CASE.c.outreach != OutreachKind.HOME_VISIT.value)
    .order_by(_CASE.c.deadline, _CASE.c.case_ref)
)
_CASES_BY_REF = sa.select(CaseRow).where(bulk.any_of(_CASE.c.case_ref, name="refs"))
_VISITS_OF_CASES = (
    sa.select(VisitRow)
    .where(bulk.any_of(_VISIT.c.case_ref, name="refs"))
    .order_by(_VISIT.c.case_ref, _VISIT.c.attempt)
)
_CANCELLED_VISITS = (
    sa.select(VisitRow)
    .where(bulk.any_of(_VISIT.c.case_ref, name="refs"), _VISIT.c.status == VisitStatus.CANCELLED)
    .order_by(_VISIT.c.case_ref, _VISIT.c.attempt, _VISIT.c.sequence)
)


class SqlSchedulingRepository(SchedulingRepository):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: sa.Select, parameters: dict[str, object] | None = None) -> list:
        return list((await self.session.execute(stmt, parameters)).scalars().all())

    async def staff(self) -> list[StaffMember]:
        rows = await self._all(sa.select(StaffRow).order_by(StaffRow.code))
        return [_staff(r) for r in rows]

    async def staff_member(self, code: str) -> StaffMember | None:
        row = await self.session.get(StaffRow, code)
        return _staff(row) if row else None

    async def staff_by_token_hash(self, token_hash: str) -> StaffMember | None:
        rows = await self._all(sa.select(StaffRow).where(StaffRow.token_hash == token_hash))  # type: ignore[arg-type]
        return _staff(rows[0]) if rows else None

    async def save_staff(self, member: StaffMember, token_hash: str | None) -> None:
        values = {
            "code": member.code,
            "naam": member.naam,
            "email": member.email,
            "organisatie": member.organisatie,
            "rol": member.rol.value,
            "gemeenten": sorted(member.gemeenten),
            "beschikbaar": member.availability_text(),
            "max_per_dag": member.max_per_dag,
            "max_per_week": member.max_per_week,
            "taal": member.taal,
            "bericht": member.bericht,
            "active": member.active,
        }
        update = dict(values)
        if token_hash is not None:
            values["token_hash"] = token_hash
            update["token_hash"] = token_hash
        stmt = insert(StaffRow.__table__).values(**values)  # type: ignore[attr-defined]
        await self.session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=update))

    async def absences(self, *, lasting_until: date | None = None) -> list[Absence]:
        query = sa.select(AbsenceRow)
        if lasting_until is not None:
            query = query.where(AbsenceRow.last >= lasting_until)  # type: ignore[arg-type]
        rows = await self._all(query)
        return sorted(Absence(r.code, r.first, r.last) for r in rows) if rows else []

    async def add_absence(self, absence: Absence) -> None:
        stmt = insert(AbsenceRow.__table__).values(  # type: ignore[attr-defined]
            code=absence.code, first=absence.first, last=absence.last
        )
        await self.session.execute(stmt.on_conflict_do_nothing())

    async def case(self, case_ref: str) -> CaseRecord | None:
        row = await self.session.get(CaseRow, case_ref)
        if row is None:
            alias = await self.session.get(CaseAliasRow, case_ref)
            if alias is not None:
                row = await self.session.get(CaseRow, alias.case_ref)
        return _case(row) if row else None

    async def current_ref(self, case_ref: str) -> str:
        alias = await self.session.get(CaseAliasRow, case_ref)
        return alias.case_ref if alias is not None else case_ref

    async def planning_cases(self) -> list[CaseRecord]:
        return [_case(r) for r in await self._all(_PLANNING_CASES)]

    async def cases_by_ref(self, case_refs: Collection[str]) -> dict[str, CaseRecord]:
        if not case_refs:
            return {}
        rows = await self._all(_CASES_BY_REF, {"refs": bulk.array_literal(case_refs)})
        return {r.case_ref: _case(r) for r in rows}

    async def visits_of_cases(self, case_refs: Collection[str]) -> dict[str, list[VisitRecord]]:
        found: dict[str, list[VisitRecord]] = {ref: [] for ref in case_refs}
        if not case_refs:
            return found
        for r in await self._all(_VISITS_OF_CASES, {"refs": bulk.array_literal(case_refs)}):
            found[r.case_ref].append(_visit(r))
        return found

    async def open_tasks(self) -> list[CaseRecord]:
        return [_case(r) for r in await self._all(_OPEN_TASKS)]

    async def save_case(self, case: CaseRecord) -> None:
        await self.session.merge(
            CaseRow(
                case_ref=case.case_ref,
                gemeentecode=case.gemeentecode,
                team=case.team,
                postcode_area=case.postcode_area,
                outreach=case.outreach.value,
                urgency=case.urgency.value,
                deadline=case.deadline,
                priority=case.priority,
                partner_codes=list(case.partner_codes),
                state=case.state,
                attempt=case.attempt,
                not_before=case.not_before,
                avoid_parts=sorted(p.value for p in case.avoid_parts),
                resultaat=case.resultaat.value if case.resultaat else None,
                outreach_planned=case.outreach_planned,
            )
        )

    async def rekey_case(self, old_ref: str, new_ref: str) -> None:
        s = self.session
        await s.flush()
        for table in (VisitRow, AttemptRow, BacklogRow):
            await s.execute(
                sa.update(table).where(table.case_ref == old_ref).values(case_ref=new_ref)  # type: ignore[arg-type]
            )
        await s.execute(
            sa.update(CaseAliasRow).where(CaseAliasRow.case_ref == old_ref).values(case_ref=new_ref)  # type: ignore[arg-type]
        )
        await s.execute(
            insert(CaseAliasRow.__table__)  # type: ignore[attr-defined]
            .values(old_ref=old_ref, case_ref=new_ref)
            .on_conflict_do_update(index_elements=["old_ref"], set_={"case_ref": new_ref})
        )
        await s.execute(sa.delete(CaseRow).where(CaseRow.case_ref == old_ref))  # type: ignore[arg-type]
        s.expunge_all()

    async def visits_of(self, case_ref: str) -> list[VisitRecord]:
        rows = await self._all(
            sa.select(VisitRow).where(VisitRow.case_ref == case_ref).order_by(VisitRow.attempt)  # type: ignore[arg-type]
        )
        return [_visit(r) for r in rows]

    async def planned_visits(self) -> list[VisitRecord]:
        rows = await self._all(sa.select(VisitRow).where(VisitRow.status == "planned"))  # type: ignore[arg-type]
        return [_visit(r) for r in rows]

    async def cancelled_visits(self, case_refs: Sequence[str]) -> list[VisitRecord]:
        if not case_refs:
            return []
        rows = await self._all(_CANCELLED_VISITS, {"refs": bulk.array_literal(case_refs)})
        return [_visit(r) for r in rows]

    async def visits_between(self, first: date, last: date) -> list[VisitRecord]:
        rows = await self._all(
            sa.select(VisitRow)
            .where(VisitRow.datum >= first, VisitRow.datum <= last)  # type: ignore[arg-type]
            .order_by(VisitRow.datum, VisitRow.part, VisitRow.window, VisitRow.visit_id)  # type: ignore[arg-type]
        )
        return [_visit(r) for r in rows]

    async def save_visit(self, visit: VisitRecord) -> None:
        await self.session.merge(
            VisitRow(
                visit_id=visit.visit_id,
                case_ref=visit.case_ref,
                attempt=visit.attempt,
                datum=visit.datum,
                part=visit.part.value,
                window=visit.window,
                staff=list(visit.staff),
                status=visit.status,
                sequence=visit.sequence,
            )
        )

    async def attempts_of(self, case_ref: str) -> list[AttemptRecord]:
        rows = await self._all(
            sa.select(AttemptRow).where(AttemptRow.case_ref == case_ref).order_by(AttemptRow.id)  # type: ignore[arg-type]
        )
        return [
            AttemptRecord(
                case_ref=r.case_ref,
                attempt=r.attempt,
                contactsoort=Contactsoort(r.contactsoort),
                datum=r.datum,
                dagdeel=PartOfDay(r.dagdeel) if r.dagdeel else None,
                bereikt=r.bereikt,
                eindresultaat=Eindresultaat(r.eindresultaat) if r.eindresultaat else None,
                visit_id=r.visit_id,
                recorded_by=r.recorded_by,
            )
            for r in rows
        ]

    async def add_attempt(self, attempt: AttemptRecord) -> None:
        self.session.add(
            AttemptRow(
                case_ref=attempt.case_ref,
                attempt=attempt.attempt,
                contactsoort=attempt.contactsoort.value,
                datum=attempt.datum,
                dagdeel=attempt.dagdeel.value if attempt.dagdeel else None,
                bereikt=attempt.bereikt,
                eindresultaat=attempt.eindresultaat.value if attempt.eindresultaat else None,
                visit_id=attempt.visit_id,
                recorded_by=attempt.recorded_by,
            )
        )

    async def backlog(self) -> list[BacklogEntry]:
        rows = await self._all(
            sa.select(BacklogRow).order_by(BacklogRow.deadline, BacklogRow.case_ref)  # type: ignore[arg-type]
        )
        return [
            BacklogEntry(
                r.case_ref, r.gemeentecode, r.team, r.deadline, r.attempt, BacklogReason(r.reason)
            )
            for r in rows
        ]

    async def replace_backlog(self, entries: list[BacklogEntry]) -> None:
        await self.session.execute(sa.delete(BacklogRow))
        for e in entries:
            self.session.add(
                BacklogRow(
                    case_ref=e.case_ref,
                    gemeentecode=e.gemeentecode,
                    team=e.team,
                    deadline=e.deadline,
                    attempt=e.attempt,
                    reason=e.reason.value,
                )
            )

    async def replan_state(self) -> ReplanState:
        row = (await self.session.execute(sa.select(ReplanRow.__table__))).one()  # type: ignore[attr-defined]
        return ReplanState(
            row.requested, row.planned, row.requested_at, row.pending_since, row.planned_at
        )

    async def request_replan(self, now: datetime) -> None:
        table = ReplanRow.__table__  # type: ignore[attr-defined]
        first = sa.or_(table.c.requested == table.c.planned, table.c.pending_since.is_(None))
        await self.session.execute(
            sa.update(table).values(
                requested=table.c.requested + 1,
                requested_at=now,
                pending_since=sa.case((first, now), else_=table.c.pending_since),
            )
        )

    async def mark_planned(self, generation: int, at: datetime) -> None:
        table = ReplanRow.__table__  # type: ignore[attr-defined]
        await self.session.execute(sa.update(table).values(planned=generation, planned_at=at))
