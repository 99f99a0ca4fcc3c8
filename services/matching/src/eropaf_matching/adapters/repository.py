"""Loads and saves matching's state for a batch: linking clusters and the cases around them.

A batch of up to ``consumer_max_records`` signal events is handled against an in-memory
:class:`~eropaf_matching.domain.matcher.Matcher` that holds exactly the clusters the batch
touches (a breadth-first search over ``match_token``, usually two queries) and every case
that holds a signal of those clusters (four more queries). After the domain ran,
:meth:`MatchingState.save` writes back only what differs from what was loaded, one bulk
statement per table (all rows as one JSON parameter).

Statements keep the same text whatever the batch: lists travel as one array (``= ANY``) or
JSON parameter, never as ``IN``/``VALUES`` lists of varying length, so SQLAlchemy compiles
and psycopg prepares each statement once (measured: compiling per batch cost more than the
database work).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner
from eropaf_contracts.events import OutreachKind, Urgency
from eropaf_contracts.region import Region
from eropaf_matching.adapters.tables import (
    case_alias,
    case_contact_attempt,
    case_signal,
    match_case,
    match_signal,
    match_token,
)
from eropaf_matching.domain.cases import Case, CaseState, ContactAttempt
from eropaf_matching.domain.linking import Assignment, LinkInput, Token
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.routing import Routing
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.domain.triage import RegionPolicy, TriageDecision

__all__ = [
    "MatchingState",
    "case_from_rows",
    "facts_from_json",
    "facts_to_json",
    "load_cases",
    "load_state",
    "resolve_case_ids",
]

T = TypeVar("T")
_CHUNK = 5000  # values per array parameter: bounds one statement's size

# Serialises matching transactions across service instances: two batches that touch one
# household must not both compute its case from the same stale state. Cheap at our volumes.
MATCHING_LOCK_ID = 0x4D415443  # "MATC"


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def lock_matching(session: AsyncSession) -> None:
    # In the same round trip: no JIT for this transaction. The planner's row estimates for
    # array parameters are coarse, and compiling a plan cost more than running it (measured:
    # ~0.5 s of JIT for a 10 ms query).
    await session.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(MATCHING_LOCK_ID),
            sa.func.set_config("jit", "off", True),
        )
    )


def _any(column: Any, values: Iterable[str]) -> Any:
    """``column = ANY(:array)``: one parameter however many values, so the statement is the
    same every time (compiled and prepared once), unlike an ``IN`` list of varying length."""
    return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.Text)))


# --- (de)serialisation ----------------------------------------------------------------


def facts_to_json(s: SignalFacts) -> dict[str, Any]:
    return {
        "signal_ref": s.signal_ref,
        "partner_code": s.partner_code,
        "partner_type": s.partner_type.value,
        "gemeentecode": s.gemeentecode,
        "postcode_area": s.postcode_area,
        "bedrag": s.bedrag,
        "ontstaansdatum": s.ontstaansdatum.isoformat() if s.ontstaansdatum else None,
        "signaaldatum": s.signaaldatum.isoformat() if s.signaaldatum else None,
        "crisissignaal": s.crisissignaal,
        "warme_overdracht": s.warme_overdracht,
        "match_tokens": {k.value: v for k, v in s.match_tokens.items()},
        "received_at": s.received_at.isoformat(),
        "revision": s.revision,
    }


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def facts_from_json(d: Mapping[str, Any]) -> SignalFacts:
    return SignalFacts(
        signal_ref=d["signal_ref"],
        partner_code=d["partner_code"],
        partner_type=Signaalpartner(d["partner_type"]),
        gemeentecode=d["gemeentecode"],
        postcode_area=d["postcode_area"],
        bedrag=d["bedrag"],
        ontstaansdatum=_date(d["ontstaansdatum"]),
        signaaldatum=_date(d["signaaldatum"]),
        crisissignaal=d["crisissignaal"],
        warme_overdracht=d["warme_overdracht"],
        match_tokens={MatchTokenKind(k): v for k, v in d["match_tokens"].items()},
        received_at=datetime.fromisoformat(d["received_at"]),
        revision=d["revision"],
    )


def _decision_to_json(d: TriageDecision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "picked_up": d.picked_up,
        "outreach": d.outreach.value if d.outreach else None,
        "urgency": d.urgency.value if d.urgency else None,
        "deadline": d.deadline.isoformat() if d.deadline else None,
        "priority": d.priority,
        "rule_ids": list(d.rule_ids),
    }


def _decision_from_json(d: Mapping[str, Any] | None) -> TriageDecision | None:
    if d is None:
        return None
    return TriageDecision(
        picked_up=d["picked_up"],
        outreach=OutreachKind(d["outreach"]) if d["outreach"] else None,
        urgency=Urgency(d["urgency"]) if d["urgency"] else None,
        deadline=_date(d["deadline"]),
        priority=d["priority"],
        rule_ids=tuple(d["rule_ids"]),
    )


def _routing_to_json(r: Routing | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"gemeentecode": r.gemeentecode, "team": r.team, "corporations": list(r.corporations)}


def _routing_from_json(r: Mapping[str, Any] | None) -> Routing | None:
    if r is None:
        return None
    return Routing(r["gemeentecode"], r["team"], tuple(r["corporations"]))


def case_from_rows(row: Any, signal_rows: Iterable[Any], attempt_rows: Iterable[Any]) -> Case:
    signals: dict[str, SignalFacts] = {}
    resolved: dict[str, date] = {}
    for s in signal_rows:
        signals[s.signal_ref] = facts_from_json(s.facts)
        if s.resolved_on is not None:
            resolved[s.signal_ref] = s.resolved_on
    attempts = tuple(
        ContactAttempt(
            soort=Contactsoort(a.soort),
            bereikt=a.bereikt,
            datum=a.datum,
            dagdeel=Dagdeel(a.dagdeel) if a.dagdeel else None,
        )
        for a in sorted(attempt_rows, key=lambda a: a.seq)
    )
    return Case(
        case_id=row.case_id,
        household_id=row.household_id,
        opened_on=row.opened_on,
        signals=signals,
        state=CaseState(row.state),
        resolved_on=resolved,
        contactpogingen=attempts,
        herhaalde_meldingen=frozenset(row.herhaalde_meldingen),
        decision=_decision_from_json(row.decision),
        routing=_routing_from_json(row.routing),
        opgepakt_on=row.opgepakt_on,
        outreach_planned_on=row.outreach_planned_on,
        resultaat=Eindresultaat(row.resultaat) if row.resultaat else None,
        closed_on=row.closed_on,
    )


def _case_row(c: Case) -> dict[str, Any]:
    return {
        "case_id": c.case_id,
        "household_id": c.household_id,
        "gemeentecode": c.gemeentecode,
        "state": c.state.value,
        "opened_on": c.opened_on,
        "opgepakt_on": c.opgepakt_on,
        "outreach_planned_on": c.outreach_planned_on,
        "resultaat": c.resultaat.value if c.resultaat else None,
        "closed_on": c.closed_on,
        "decision": _decision_to_json(c.decision),
        "routing": _routing_to_json(c.routing),
        "herhaalde_meldingen": sorted(c.herhaalde_meldingen),
    }


# --- loading ----------------------------------------------------------------------------


# One step of the cluster search: the signals carrying any of the tokens, and the given
# signals (if stored); with every token of each. Plain index lookups (no recursive CTE: its
# row estimates led to merge joins over the whole token table on every batch).
_CLUSTER_STEP = sa.text(
    """
    WITH hit AS (
        SELECT t.signal_ref
        FROM unnest(CAST(:kinds AS text[]), CAST(:vals AS text[])) AS s(kind, value)
        JOIN match_token t ON t.kind = s.kind AND t.value = s.value
        UNION
        SELECT m.signal_ref FROM match_signal m WHERE m.signal_ref = ANY(CAST(:refs AS text[]))
    )
    SELECT hit.signal_ref, t.kind, t.value
    FROM hit LEFT JOIN match_token t ON t.signal_ref = hit.signal_ref
    """
)


async def _cluster_refs(
    session: AsyncSession, tokens: Iterable[Token], refs: Iterable[str]
) -> set[str]:
    """Every stored signal reachable from ``tokens`` (and from the stored tokens of ``refs``)
    over shared tokens of any kind; a stored signal of ``refs`` without tokens as well.

    Breadth first, one query per step; a batch's clusters are complete after two steps
    unless a signal bridges further (then the new tokens are followed)."""
    seen: set[tuple[str, str]] = {(k.value, v) for k, v in tokens}
    frontier = sorted(seen)
    ref_list = sorted(set(refs))
    found: set[str] = set()
    while frontier or ref_list:
        rows = await session.execute(
            _CLUSTER_STEP,
            {
                "kinds": [k for k, _ in frontier],
                "vals": [v for _, v in frontier],
                "refs": ref_list,
            },
        )
        new: set[tuple[str, str]] = set()
        for ref, kind, value in rows:
            found.add(ref)
            if kind is not None and (kind, value) not in seen:
                seen.add((kind, value))
                new.add((kind, value))
        frontier, ref_list = sorted(new), []
    return found


async def _load_cases_by_ids(session: AsyncSession, case_ids: Sequence[str]) -> list[Case]:
    if not case_ids:
        return []
    rows = (
        await session.execute(sa.select(match_case).where(_any(match_case.c.case_id, case_ids)))
    ).all()
    signals: dict[str, list[Any]] = {cid: [] for cid in case_ids}
    for s in (
        await session.execute(sa.select(case_signal).where(_any(case_signal.c.case_id, case_ids)))
    ).all():
        signals[s.case_id].append(s)
    attempts: dict[str, list[Any]] = {cid: [] for cid in case_ids}
    for a in (
        await session.execute(
            sa.select(case_contact_attempt).where(_any(case_contact_attempt.c.case_id, case_ids))
        )
    ).all():
        attempts[a.case_id].append(a)
    return [case_from_rows(r, signals[r.case_id], attempts[r.case_id]) for r in rows]


async def load_cases(
    session: AsyncSession, *, gemeentecode: str | None = None, case_ids: Sequence[str] = ()
) -> list[Case]:
    """Cases of a municipality (export, monitoring) or by id."""
    query = sa.select(match_case.c.case_id)
    if gemeentecode is not None:
        query = query.where(match_case.c.gemeentecode == gemeentecode)
    if case_ids:
        query = query.where(match_case.c.case_id.in_(list(case_ids)))
    ids = list((await session.execute(query)).scalars())
    cases: list[Case] = []
    for chunk in _chunks(ids):
        cases += await _load_cases_by_ids(session, chunk)
    return cases


async def resolve_case_ids(session: AsyncSession, case_ids: Iterable[str]) -> dict[str, str]:
    """Current id of each given case id (itself, or where a merge/rename took it)."""
    wanted = sorted(set(case_ids))
    rows = await session.execute(
        sa.select(case_alias.c.old_case_id, case_alias.c.case_id).where(
            _any(case_alias.c.old_case_id, wanted)
        )
    )
    aliases = {r.old_case_id: r.case_id for r in rows}
    return {cid: aliases.get(cid, cid) for cid in wanted}


@dataclass
class MatchingState:
    """The slice of matching's state a batch works on, and what it looked like when loaded."""

    matcher: Matcher
    loaded_links: dict[str, LinkInput] = field(default_factory=dict)
    loaded_assignments: dict[str, Assignment] = field(default_factory=dict)
    loaded_cases: dict[str, Case] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # old case id -> new, this batch

    def rename(self, old: str, new: str) -> None:
        self.aliases[old] = new
        for k, v in self.aliases.items():
            if v == old:
                self.aliases[k] = new

    async def save(self, session: AsyncSession) -> None:
        await self._save_links(session)
        await self._save_cases(session)

    async def _save_links(self, session: AsyncSession) -> None:
        links = self.matcher.links
        changed = [
            ref
            for ref, signal in links.signals.items()
            if self.loaded_links.get(ref) != signal
            or self.loaded_assignments.get(ref) != links.assignments.get(ref)
        ]
        rows = [
            {
                "signal_ref": ref,
                "datum": links.signals[ref].key[0],
                "tokens": {k.value: v for k, v in links.signals[ref].tokens.items()},
                "person_id": links.assignments[ref].person_id,
                "household_id": links.assignments[ref].household_id,
            }
            for ref in changed
        ]
        await _upsert(session, _MATCH_SIGNAL, rows)
        retokened = [
            ref
            for ref in changed
            if ref not in self.loaded_links
            or self.loaded_links[ref].tokens != links.signals[ref].tokens
        ]
        stale = [ref for ref in retokened if ref in self.loaded_links]
        for part in _chunks(stale):
            await session.execute(
                sa.delete(match_token).where(_any(match_token.c.signal_ref, part))
            )
        token_rows = [
            {"kind": k.value, "value": v, "signal_ref": ref}
            for ref in retokened
            for k, v in links.signals[ref].tokens.items()
        ]
        await _upsert(session, _MATCH_TOKEN, token_rows)

    async def _save_cases(self, session: AsyncSession) -> None:
        cases = self.matcher.cases
        changed = [c for cid, c in cases.items() if self.loaded_cases.get(cid) != c]
        gone = [cid for cid in self.loaded_cases if cid not in cases]
        await _upsert(session, _MATCH_CASE, [_case_row(c) for c in changed])
        # Only the signal rows that differ from what was loaded (a case that gains a signal
        # keeps its other signals as they were).
        stored = {
            ref: (c.case_id, s, c.resolved_on.get(ref))
            for c in self.loaded_cases.values()
            for ref, s in c.signals.items()
        }
        signal_rows = [
            {
                "signal_ref": ref,
                "case_id": c.case_id,
                "facts": facts_to_json(s),
                "resolved_on": c.resolved_on.get(ref),
            }
            for c in changed
            for ref, s in c.signals.items()
            if stored.get(ref) != (c.case_id, s, c.resolved_on.get(ref))
        ]
        await _upsert(session, _CASE_SIGNAL, signal_rows)
        # Attempts are few per case: rewrite them for the changed cases that had any.
        rewrite = [
            c.case_id
            for c in changed
            if c.contactpogingen
            or (c.case_id in self.loaded_cases and self.loaded_cases[c.case_id].contactpogingen)
        ]
        for part in _chunks(rewrite):
            await session.execute(
                sa.delete(case_contact_attempt).where(_any(case_contact_attempt.c.case_id, part))
            )
        attempt_rows = [
            {
                "case_id": c.case_id,
                "seq": i,
                "soort": a.soort.value,
                "bereikt": a.bereikt,
                "datum": a.datum,
                "dagdeel": a.dagdeel.value if a.dagdeel else None,
            }
            for c in changed
            for i, a in enumerate(c.contactpogingen)
        ]
        await _upsert(session, _CASE_CONTACT_ATTEMPT, attempt_rows)
        # Signals were re-pointed above, so the cascade removes nothing still in use.
        for part in _chunks(gone):
            await session.execute(sa.delete(match_case).where(_any(match_case.c.case_id, part)))
        if self.aliases:
            # Older aliases that pointed at a renamed id follow it; then the new ones.
            await session.execute(
                sa.update(case_alias)
                .where(case_alias.c.case_id == sa.bindparam("old"))
                .values(case_id=sa.bindparam("new")),
                [{"old": o, "new": n} for o, n in self.aliases.items()],
            )
            alias_rows = [{"old_case_id": o, "case_id": n} for o, n in self.aliases.items()]
            await _upsert(session, _CASE_ALIAS, alias_rows)


@dataclass(frozen=True)
class _Bulk:
    """An ``INSERT ... SELECT FROM jsonb_to_recordset(:rows) ON CONFLICT`` for a table.

    All rows travel as ONE JSON parameter (encoded by the json module in C, decoded by
    PostgreSQL): no per-row work in the driver -- an executemany binds and dumps every row,
    and array parameters are escaped element by element in Python; both measured as most of
    a batch's time -- and the same SQL every time (compiled and prepared once).
    """

    table: sa.Table
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    key: tuple[str, ...]
    touch: tuple[str, ...] = ()  # set to now() on update

    @property
    def statement(self) -> sa.TextClause:
        name = self.table.name
        if name not in _BULK_SQL:
            names = ", ".join(c for c, _ in self.columns)
            updates = [f"{c} = EXCLUDED.{c}" for c, _ in self.columns if c not in self.key]
            updates += [f"{c} = now()" for c in self.touch]
            conflict = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
            record = ", ".join(f"{c} {t}" for c, t in self.columns)
            _BULK_SQL[name] = sa.text(
                f"INSERT INTO {name} ({names}) "  # noqa: S608 -- names are ours, not input
                f"SELECT {names} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) "
                f"ON CONFLICT ({', '.join(self.key)}) {conflict}"
            )
        return _BULK_SQL[name]


_BULK_SQL: dict[str, sa.TextClause] = {}


def _json_default(value: object) -> str:
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_MATCH_SIGNAL = _Bulk(
    match_signal,
    (
        ("signal_ref", "text"),
        ("datum", "date"),
        ("tokens", "jsonb"),
        ("person_id", "text"),
        ("household_id", "text"),
    ),
    ("signal_ref",),
)
_MATCH_TOKEN = _Bulk(
    match_token,
    (("kind", "text"), ("value", "text"), ("signal_ref", "text")),
    ("kind", "value", "signal_ref"),
)
_MATCH_CASE = _Bulk(
    match_case,
    (
        ("case_id", "text"),
        ("household_id", "text"),
        ("gemeentecode", "text"),
        ("state", "text"),
        ("opened_on", "date"),
        ("opgepakt_on", "date"),
        ("outreach_planned_on", "date"),
        ("resultaat", "text"),
        ("closed_on", "date"),
        ("decision", "jsonb"),
        ("routing", "jsonb"),
        ("herhaalde_meldingen", "text[]"),
    ),
    ("case_id",),
    touch=("updated_at",),
)
_CASE_SIGNAL = _Bulk(
    case_signal,
    (("signal_ref", "text"), ("case_id", "text"), ("facts", "jsonb"), ("resolved_on", "date")),
    ("signal_ref",),
)
_CASE_CONTACT_ATTEMPT = _Bulk(
    case_contact_attempt,
    (
        ("case_id", "text"),
        ("seq", "integer"),
        ("soort", "text"),
        ("bereikt", "boolean"),
        ("datum", "date"),
        ("dagdeel", "text"),
    ),
    ("case_id", "seq"),
)
_CASE_ALIAS = _Bulk(case_alias, (("old_case_id", "text"), ("case_id", "text")), ("old_case_id",))


async def _upsert(session: AsyncSession, bulk: _Bulk, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update rows by primary key in one statement (the last row of a key wins:
    one statement may not touch a row twice)."""
    if not rows:
        return
    unique = {tuple(r[k] for k in bulk.key): r for r in rows}
    payload = json.dumps(list(unique.values()), default=_json_default, separators=(",", ":"))
    await session.execute(bulk.statement, {"rows": payload})


async def load_state(
    session: AsyncSession,
    policy: RegionPolicy,
    region: Region,
    *,
    tokens: Iterable[Token],
    signal_refs: Iterable[str],
) -> MatchingState:
    """The clusters reachable from ``tokens``/``signal_refs`` and every case holding one of
    their signals, as a populated :class:`Matcher`."""
    refs = sorted(await _cluster_refs(session, tokens, signal_refs))
    matcher = Matcher(policy, region)
    state = MatchingState(matcher)
    case_ids: set[str] = set()
    for chunk in _chunks(refs):
        for row in (
            await session.execute(
                sa.select(match_signal).where(_any(match_signal.c.signal_ref, chunk))
            )
        ).all():
            link = LinkInput(
                row.signal_ref,
                (row.datum, row.signal_ref),
                {MatchTokenKind(k): v for k, v in row.tokens.items()},
            )
            assignment = Assignment(row.person_id, row.household_id)
            state.loaded_links[row.signal_ref] = link
            state.loaded_assignments[row.signal_ref] = assignment
            matcher.links.signals[row.signal_ref] = link
            matcher.links.assignments[row.signal_ref] = assignment
            for token in link.token_set():
                matcher.links.by_token[token].add(row.signal_ref)
        case_ids |= set(
            (
                await session.execute(
                    sa.select(case_signal.c.case_id).where(_any(case_signal.c.signal_ref, chunk))
                )
            ).scalars()
        )
    for chunk in _chunks(sorted(case_ids)):
        for case in await _load_cases_by_ids(session, chunk):
            state.loaded_cases[case.case_id] = case
            matcher.cases[case.case_id] = case
    return state
