"""Scheduling's repository on PostgreSQL (the tables in ``adapters.tables``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

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
from eropaf_scheduling.domain.case_book import backlog_after, composed
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


def _case(row: CaseRow | sa.Row[Any]) -> CaseRecord:
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


def _visit(row: VisitRow | sa.Row[Any]) -> VisitRecord:
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


def _backlog_entry(row: BacklogRow | sa.Row[Any]) -> BacklogEntry:
    reason = BacklogReason(row.reason)
    return BacklogEntry(row.case_ref, row.gemeentecode, row.team, row.deadline, row.attempt, reason)


def _backlog_row(entry: BacklogEntry) -> dict[str, object]:
    return {
        "case_ref": entry.case_ref,
        "gemeentecode": entry.gemeentecode,
        "team": entry.team,
        "deadline": entry.deadline,
        "attempt": entry.attempt,
        "reason": entry.reason.value,
    }


_VISIT: sa.Table = VisitRow.__table__  # type: ignore[attr-defined]
_CASE: sa.Table = CaseRow.__table__  # type: ignore[attr-defined]
_ALIAS: sa.Table = CaseAliasRow.__table__  # type: ignore[attr-defined]
_ATTEMPT: sa.Table = AttemptRow.__table__  # type: ignore[attr-defined]
_BACKLOG: sa.Table = BacklogRow.__table__  # type: ignore[attr-defined]

# Built once (the statement text never changes).
_PLANNING_CASES = (
    sa.select(_CASE)
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
_PLANNED_VISITS = sa.select(_VISIT).where(_VISIT.c.status == VisitStatus.PLANNED)
_OPEN_TASKS = (
    sa.select(CaseRow)
    .where(_CASE.c.state == CaseState.OPEN, _CASE.c.outreach != OutreachKind.HOME_VISIT.value)
    .order_by(_CASE.c.deadline, _CASE.c.case_ref)
)
# Table rows, not ORM objects: a batch re-read after a savepoint rollback (the consumer's
# isolation of a bad message) sees the database, not objects the session kept.
_CASES_BY_REF = sa.select(_CASE).where(bulk.any_of(_CASE.c.case_ref, name="refs"))
_ALIASES_OF = sa.select(_ALIAS.c.old_ref, _ALIAS.c.case_ref).where(
    bulk.any_of(_ALIAS.c.old_ref, name="refs")
)
_VISITS_OF_CASES = (
    sa.select(_VISIT)
    .where(bulk.any_of(_VISIT.c.case_ref, name="refs"))
    .order_by(_VISIT.c.case_ref, _VISIT.c.attempt)
)
_CASE_COLUMNS = (
    "case_ref",
    "gemeentecode",
    "team",
    "postcode_area",
    "outreach",
    "urgency",
    "deadline",
    "priority",
    "partner_codes",
    "state",
    "attempt",
    "not_before",
    "avoid_parts",
    "resultaat",
    "outreach_planned",
)
_SAVE_CASES = bulk.json_insert(
    _CASE, _CASE_COLUMNS, conflict=["case_ref"], update=_CASE_COLUMNS[1:]
)
_VISIT_COLUMNS = (
    "visit_id",
    "case_ref",
    "attempt",
    "datum",
    "part",
    "window",
    "staff",
    "status",
    "sequence",
)
_SAVE_VISITS = bulk.json_insert(
    _VISIT, _VISIT_COLUMNS, conflict=["visit_id"], update=_VISIT_COLUMNS[1:]
)
_ADD_ATTEMPTS = bulk.json_insert(
    _ATTEMPT,
    (
        "case_ref",
        "attempt",
        "contactsoort",
        "datum",
        "dagdeel",
        "bereikt",
        "eindresultaat",
        "visit_id",
        "recorded_by",
    ),
)
_SAVE_ALIASES = bulk.json_insert(
    _ALIAS, ("old_ref", "case_ref"), conflict=["old_ref"], update=["case_ref"]
)
_DROP_CASES = sa.delete(_CASE).where(bulk.any_of(_CASE.c.case_ref, name="refs"))
# ``:moves``: JSON [{"old": ref, "new": ref}, ...], each old ref once.
_MOVES = "json_to_recordset(CAST(:moves AS json)) AS m(old text, new text)"
_MOVE_RECORDS = tuple(
    sa.text(f"UPDATE {table} AS t SET case_ref = m.new FROM {_MOVES} WHERE t.case_ref = m.old")  # noqa: S608
    for table in (_VISIT.name, _ATTEMPT.name, _ALIAS.name)
)
_BACKLOG_OF = sa.select(_BACKLOG).where(bulk.any_of(_BACKLOG.c.case_ref, name="refs"))
_DROP_BACKLOG = sa.delete(_BACKLOG).where(bulk.any_of(_BACKLOG.c.case_ref, name="refs"))
_ADD_BACKLOG = bulk.json_insert(
    _BACKLOG, ("case_ref", "gemeentecode", "team", "deadline", "attempt", "reason")
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

    async def cases_known_as(
        self, refs: Collection[str]
    ) -> tuple[dict[str, CaseRecord], dict[str, str]]:
        if not refs:
            return {}, {}
        result = await self.session.execute(_ALIASES_OF, {"refs": bulk.array_literal(refs)})
        aliases: dict[str, str] = {old: current for old, current in result.all()}
        wanted = bulk.array_literal(set(refs) | set(aliases.values()))
        rows = (await self.session.execute(_CASES_BY_REF, {"refs": wanted})).all()
        return {r.case_ref: _case(r) for r in rows}, aliases

    async def planning_cases(self) -> list[CaseRecord]:
        # table rows: tens of thousands of ORM objects would only be copied into records
        return [_case(r) for r in (await self.session.execute(_PLANNING_CASES)).all()]

    async def cases_by_ref(self, case_refs: Collection[str]) -> dict[str, CaseRecord]:
        if not case_refs:
            return {}
        rows = (
            await self.session.execute(_CASES_BY_REF, {"refs": bulk.array_literal(case_refs)})
        ).all()
        return {r.case_ref: _case(r) for r in rows}

    async def visits_of_cases(self, case_refs: Collection[str]) -> dict[str, list[VisitRecord]]:
        found: dict[str, list[VisitRecord]] = {ref: [] for ref in case_refs}
        if not case_refs:
            return found
        result = await self.session.execute(
            _VISITS_OF_CASES, {"refs": bulk.array_literal(case_refs)}
        )
        for r in result.all():
            found[r.case_ref].append(_visit(r))
        return found

    async def open_tasks(self) -> list[CaseRecord]:
        return [_case(r) for r in await self._all(_OPEN_TASKS)]

    async def save_cases(self, cases: Sequence[CaseRecord]) -> None:
        if not cases:
            return
        rows = {
            case.case_ref: {
                "case_ref": case.case_ref,
                "gemeentecode": case.gemeentecode,
                "team": case.team,
                "postcode_area": case.postcode_area,
                "outreach": case.outreach.value,
                "urgency": case.urgency.value,
                "deadline": case.deadline,
                "priority": case.priority,
                "partner_codes": list(case.partner_codes),
                "state": case.state,
                "attempt": case.attempt,
                "not_before": case.not_before,
                "avoid_parts": sorted(p.value for p in case.avoid_parts),
                "resultaat": case.resultaat.value if case.resultaat else None,
                "outreach_planned": case.outreach_planned,
            }
            for case in cases
        }
        await self.session.execute(_SAVE_CASES, {"rows": bulk.rows_json(rows.values())})

    async def rekey_cases(
        self, rekeyed: Sequence[tuple[str, str]], aliases: Mapping[str, str]
    ) -> None:
        moved = composed(rekeyed)
        if moved:
            moves = {"moves": bulk.rows_json({"old": o, "new": n} for o, n in moved.items())}
            for statement in _MOVE_RECORDS:
                await self.session.execute(statement, moves)
        refs = bulk.array_literal({ref for pair in rekeyed for ref in pair})
        rows = (await self.session.execute(_BACKLOG_OF, {"refs": refs})).all()
        if rows:
            before = {r.case_ref: _backlog_entry(r) for r in rows}
            after = backlog_after(before, rekeyed)
            if after != before:
                await self.session.execute(_DROP_BACKLOG, {"refs": refs})
                await self.session.execute(
                    _ADD_BACKLOG, {"rows": bulk.rows_json(_backlog_row(e) for e in after.values())}
                )
        if aliases:
            pairs = ({"old_ref": o, "case_ref": n} for o, n in aliases.items())
            await self.session.execute(_SAVE_ALIASES, {"rows": bulk.rows_json(pairs)})
            await self.session.execute(_DROP_CASES, {"refs": bulk.array_literal(aliases)})

    async def visits_of(self, case_ref: str) -> list[VisitRecord]:
        rows = await self._all(
            sa.select(VisitRow).where(VisitRow.case_ref == case_ref).order_by(VisitRow.attempt)  # type: ignore[arg-type]
        )
        return [_visit(r) for r in rows]

    async def planned_visits(self) -> list[VisitRecord]:
        rows = await self.session.execute(_PLANNED_VISITS)
        return [_visit(r) for r in rows.all()]

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

    async def save_visits(self, visits: Sequence[VisitRecord]) -> None:
        if not visits:
            return
        rows = {
            visit.visit_id: {
                "visit_id": visit.visit_id,
                "case_ref": visit.case_ref,
                "attempt": visit.attempt,
                "datum": visit.datum,
                "part": visit.part.value,
                "window": visit.window,
                "staff": list(visit.staff),
                "status": visit.status,
                "sequence": visit.sequence,
            }
            for visit in visits
        }
        await self.session.execute(_SAVE_VISITS, {"rows": bulk.rows_json(rows.values())})

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

    async def add_attempts(self, attempts: Sequence[AttemptRecord]) -> None:
        if not attempts:
            return
        rows = (
            {
                "case_ref": a.case_ref,
                "attempt": a.attempt,
                "contactsoort": a.contactsoort.value,
                "datum": a.datum,
                "dagdeel": a.dagdeel.value if a.dagdeel else None,
                "bereikt": a.bereikt,
                "eindresultaat": a.eindresultaat.value if a.eindresultaat else None,
                "visit_id": a.visit_id,
                "recorded_by": a.recorded_by,
            }
            for a in attempts
        )
        await self.session.execute(_ADD_ATTEMPTS, {"rows": bulk.rows_json(rows)})

    async def backlog(self) -> list[BacklogEntry]:
        rows = await self._all(
            sa.select(BacklogRow).order_by(BacklogRow.deadline, BacklogRow.case_ref)  # type: ignore[arg-type]
        )
        return [_backlog_entry(r) for r in rows]

    async def replace_backlog(self, entries: list[BacklogEntry]) -> None:
        await self.session.execute(sa.delete(BacklogRow))
        if entries:
            await self.session.execute(
                _ADD_BACKLOG, {"rows": bulk.rows_json(_backlog_row(e) for e in entries)}
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
