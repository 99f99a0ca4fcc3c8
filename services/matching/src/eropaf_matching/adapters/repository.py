"""Loads and saves matching's state for a batch: linking clusters and the cases around them.

A batch of up to ``consumer_max_records`` signal events is handled against an in-memory
:class:`~eropaf_matching.domain.matcher.Matcher` that holds exactly the clusters the batch
touches (searched in the process's copy of ``match_signal``,
:class:`~eropaf_matching.adapters.link_cache.LinkCache`) and every case that holds a signal
of those clusters (from the process's copy of the cases,
:class:`~eropaf_matching.adapters.case_cache.CaseCache`, or four queries without one). After
the domain ran, :meth:`MatchingState.save` writes back only what differs from what was
loaded, one bulk statement per table (all rows as one JSON parameter, written as text), and
stages what it wrote for the copies.

Statements keep the same text whatever the batch: lists travel as one array literal
(unnested) or JSON parameter, never as ``IN``/``VALUES`` lists of varying length, so
SQLAlchemy compiles and psycopg prepares each statement once (measured: compiling per batch
cost more than the database work).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from json.encoder import encode_basestring
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner
from eropaf_contracts.events import OutreachKind, Urgency
from eropaf_contracts.region import Region
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.adapters.tables import (
    case_alias,
    case_contact_attempt,
    case_signal,
    match_case,
    match_signal,
)
from eropaf_matching.domain.cases import Case, CaseState, ContactAttempt
from eropaf_matching.domain.linking import Assignment, LinkInput, Token
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.routing import Routing
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts, token_kind
from eropaf_matching.domain.triage import RegionPolicy, TriageDecision

__all__ = [
    "MatchingState",
    "case_from_rows",
    "facts_from_json",
    "facts_to_json",
    "load_cases",
    "load_not_picked_up",
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


# In the same round trip: no JIT for this transaction. The planner's row estimates for
# array parameters are coarse, and compiling a plan cost more than running it (measured:
# ~0.5 s of JIT for a 10 ms query).
_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(MATCHING_LOCK_ID), sa.func.set_config("jit", "off", True)
)


async def lock_matching(session: AsyncSession) -> None:
    await session.execute(_LOCK)


def _among(column: Any, name: str) -> Any:
    """``column IN (SELECT unnest(CAST(:name AS text[])))``; ``:name`` is a
    :func:`_text_array` literal. One parameter however many values, so the statement is the
    same every time (built once here, compiled and prepared once), unlike an ``IN`` list of
    varying length.

    The array travels as a text literal (psycopg dumps a list element by element in Python)
    and is unnested into a semi-join of index lookups: ``column = ANY(CAST(:literal AS
    text[]))`` led to generic plans that scanned the whole table and compared every row with
    every value (measured: 100 ms a batch on case_signal)."""
    array = sa.cast(sa.bindparam(name, type_=sa.Text), ARRAY(sa.Text))
    return column.in_(sa.select(sa.func.unnest(array)).scalar_subquery())


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


# Enum members by value: a dict lookup per field instead of an enum call (loading a batch
# reads thousands of these); an unknown value still fails as the enum call would.
_PARTNER_TYPES: dict[str, Signaalpartner] = {m.value: m for m in Signaalpartner}
_CASE_STATES: dict[str, CaseState] = {m.value: m for m in CaseState}
_OUTREACH_KINDS: dict[str, OutreachKind] = {m.value: m for m in OutreachKind}
_URGENCIES: dict[str, Urgency] = {m.value: m for m in Urgency}


def facts_from_json(d: Mapping[str, Any]) -> SignalFacts:
    ontstaansdatum, signaaldatum = d["ontstaansdatum"], d["signaaldatum"]
    return SignalFacts(
        d["signal_ref"],
        d["partner_code"],
        _PARTNER_TYPES.get(d["partner_type"]) or Signaalpartner(d["partner_type"]),
        d["gemeentecode"],
        d["postcode_area"],
        d["bedrag"],
        date.fromisoformat(ontstaansdatum) if ontstaansdatum else None,
        date.fromisoformat(signaaldatum) if signaaldatum else None,
        d["crisissignaal"],
        d["warme_overdracht"],
        {token_kind(k): v for k, v in d["match_tokens"].items()},
        datetime.fromisoformat(d["received_at"]),
        d["revision"],
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
        outreach=_OUTREACH_KINDS[d["outreach"]] if d["outreach"] else None,
        urgency=_URGENCIES[d["urgency"]] if d["urgency"] else None,
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
    return _case(
        [getattr(row, name) for name in _CASE_COLUMN_NAMES],
        signals,
        resolved,
        _attempts([(a.seq, a.soort, a.bereikt, a.datum, a.dagdeel) for a in attempt_rows]),
    )


def _attempts(rows: Iterable[Sequence[Any]]) -> tuple[ContactAttempt, ...]:
    """``(seq, soort, bereikt, datum, dagdeel)`` rows as the case's attempts, in order."""
    return tuple(
        ContactAttempt(
            soort=Contactsoort(soort),
            bereikt=bereikt,
            datum=datum,
            dagdeel=Dagdeel(dagdeel) if dagdeel else None,
        )
        for _, soort, bereikt, datum, dagdeel in sorted(rows, key=lambda a: a[0])
    )


# The match_case columns a Case is made of, in this order (not updated_at: parsing it was
# work for nothing).
_CASE_COLUMN_NAMES = (
    "case_id",
    "household_id",
    "gemeentecode",
    "state",
    "opened_on",
    "opgepakt_on",
    "outreach_planned_on",
    "resultaat",
    "closed_on",
    "decision",
    "routing",
    "herhaalde_meldingen",
)


def _case(
    row: Sequence[Any],
    signals: dict[str, SignalFacts],
    resolved: dict[str, date],
    attempts: tuple[ContactAttempt, ...],
) -> Case:
    """A Case from its match_case row (``_CASE_COLUMN_NAMES``) and its child rows."""
    (
        case_id,
        household_id,
        _gemeentecode,  # the routing's, or derived from the signals: kept for queries
        state,
        opened_on,
        opgepakt_on,
        outreach_planned_on,
        resultaat,
        closed_on,
        decision,
        routing,
        herhaalde_meldingen,
    ) = row
    return Case(
        case_id=case_id,
        household_id=household_id,
        opened_on=opened_on,
        signals=signals,
        state=_CASE_STATES.get(state) or CaseState(state),
        resolved_on=resolved,
        contactpogingen=attempts,
        herhaalde_meldingen=frozenset(herhaalde_meldingen),
        decision=_decision_from_json(decision),
        routing=_routing_from_json(routing),
        opgepakt_on=opgepakt_on,
        outreach_planned_on=outreach_planned_on,
        resultaat=Eindresultaat(resultaat) if resultaat else None,
        closed_on=closed_on,
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


# Rows for the bulk statements are written as JSON text from templates: the rows of a batch
# are most of its data, and building dicts for json.dumps (with a callback per date) took
# more than twice as long (measured). Each writer gives what json.dumps gives for the dict
# version above (tests/adapters/test_rows_json.py holds them to that); jsonb stores both the
# same way.

# A JSON string literal (the json module's C function). Enum members go in as they are:
# every enum here is a StrEnum, whose string is its value.
_json_str = encode_basestring


def _json_opt_str(value: str | None) -> str:
    return "null" if value is None else _json_str(value)


def _json_date(value: date | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def _json_int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _json_bool(value: bool) -> str:
    return "true" if value else "false"


def _json_strs(values: Iterable[str]) -> str:
    return "[" + ",".join(map(_json_str, values)) + "]"


def _json_tokens(tokens: Mapping[MatchTokenKind, str]) -> str:
    return "{" + ",".join(f"{_json_str(k)}:{_json_str(v)}" for k, v in tokens.items()) + "}"


def _facts_json(s: SignalFacts) -> str:
    """:func:`facts_to_json` as JSON text."""
    return (
        f'{{"signal_ref":{_json_str(s.signal_ref)},"partner_code":{_json_str(s.partner_code)},'
        f'"partner_type":{_json_str(s.partner_type)},'
        f'"gemeentecode":{_json_str(s.gemeentecode)},'
        f'"postcode_area":{_json_str(s.postcode_area)},"bedrag":{_json_int(s.bedrag)},'
        f'"ontstaansdatum":{_json_date(s.ontstaansdatum)},'
        f'"signaaldatum":{_json_date(s.signaaldatum)},'
        f'"crisissignaal":{_json_bool(s.crisissignaal)},'
        f'"warme_overdracht":{_json_bool(s.warme_overdracht)},'
        f'"match_tokens":{_json_tokens(s.match_tokens)},'
        f'"received_at":{_json_str(s.received_at.isoformat())},"revision":{_json_int(s.revision)}}}'
    )


def _decision_json(d: TriageDecision | None) -> str:
    if d is None:
        return "null"
    return (
        f'{{"picked_up":{_json_bool(d.picked_up)},'
        f'"outreach":{_json_opt_str(d.outreach)},'
        f'"urgency":{_json_opt_str(d.urgency)},'
        f'"deadline":{_json_date(d.deadline)},"priority":{_json_int(d.priority)},'
        f'"rule_ids":{_json_strs(d.rule_ids)}}}'
    )


def _routing_json(r: Routing | None) -> str:
    if r is None:
        return "null"
    return (
        f'{{"gemeentecode":{_json_str(r.gemeentecode)},"team":{_json_str(r.team)},'
        f'"corporations":{_json_strs(r.corporations)}}}'
    )


def _case_row_json(c: Case) -> str:
    """:func:`_case_row` as JSON text."""
    return (
        f'{{"case_id":{_json_str(c.case_id)},"household_id":{_json_str(c.household_id)},'
        f'"gemeentecode":{_json_str(c.gemeentecode)},"state":{_json_str(c.state)},'
        f'"opened_on":{_json_date(c.opened_on)},"opgepakt_on":{_json_date(c.opgepakt_on)},'
        f'"outreach_planned_on":{_json_date(c.outreach_planned_on)},'
        f'"resultaat":{_json_opt_str(c.resultaat)},'
        f'"closed_on":{_json_date(c.closed_on)},"decision":{_decision_json(c.decision)},'
        f'"routing":{_routing_json(c.routing)},'
        f'"herhaalde_meldingen":{_json_strs(sorted(c.herhaalde_meldingen))}}}'
    )


def _signal_row_json(link: LinkInput, assignment: Assignment) -> str:
    """A ``match_signal`` row as JSON text."""
    return (
        f'{{"signal_ref":{_json_str(link.signal_ref)},"datum":{_json_date(link.key[0])},'
        f'"tokens":{_json_tokens(link.tokens)},"person_id":{_json_str(assignment.person_id)},'
        f'"household_id":{_json_str(assignment.household_id)}}}'
    )


# --- loading ----------------------------------------------------------------------------


def _text_array(values: Iterable[str]) -> str:
    """A ``text[]`` literal (``{"a","b"}``): psycopg dumps a list parameter element by
    element in Python (measured: half the cost of the cluster search). Only ever unnested
    (here and in ``_among``): compared with ``= ANY``, a cast literal led to generic plans
    that scanned the table."""
    items = list(values)
    joined = '","'.join(items)
    # Pseudonyms and kinds: nothing to escape, as a rule (each separator holds two quotes).
    if "\\" in joined or joined.count('"') != 2 * (len(items) - 1):
        return "{" + ",".join(_array_element(v) for v in items) + "}"
    return '{"' + joined + '"}'


def _array_element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Built once: a statement built per call costs its construction and cache key every time.
_CASES_BY_ID = sa.select(*(match_case.c[name] for name in _CASE_COLUMN_NAMES)).where(
    _among(match_case.c.case_id, "ids")
)
_SIGNALS_OF_CASES = sa.select(
    case_signal.c.case_id, case_signal.c.signal_ref, case_signal.c.facts, case_signal.c.resolved_on
).where(_among(case_signal.c.case_id, "ids"))
_ATTEMPTS_OF_CASES = sa.select(
    case_contact_attempt.c.case_id,
    case_contact_attempt.c.seq,
    case_contact_attempt.c.soort,
    case_contact_attempt.c.bereikt,
    case_contact_attempt.c.datum,
    case_contact_attempt.c.dagdeel,
).where(_among(case_contact_attempt.c.case_id, "ids"))
_CASE_IDS_OF_SIGNALS = sa.select(case_signal.c.case_id).where(
    _among(case_signal.c.signal_ref, "refs")
)
_ALIASES = sa.select(case_alias.c.old_case_id, case_alias.c.case_id).where(
    _among(case_alias.c.old_case_id, "ids")
)
_DELETE_ATTEMPTS = sa.delete(case_contact_attempt).where(
    _among(case_contact_attempt.c.case_id, "ids")
)
_DELETE_CASES = sa.delete(match_case).where(_among(match_case.c.case_id, "ids"))


async def _load_cases_by_ids(session: AsyncSession, case_ids: Sequence[str]) -> list[Case]:
    if not case_ids:
        return []
    # As case_from_rows, on plain tuples: a batch loads hundreds of cases.
    ids = {"ids": _text_array(case_ids)}
    rows = (await session.execute(_CASES_BY_ID, ids)).all()
    signals: dict[str, dict[str, SignalFacts]] = {cid: {} for cid in case_ids}
    resolved: dict[str, dict[str, date]] = {cid: {} for cid in case_ids}
    for case_id, ref, facts, resolved_on in await session.execute(_SIGNALS_OF_CASES, ids):
        signals[case_id][ref] = facts_from_json(facts)
        if resolved_on is not None:
            resolved[case_id][ref] = resolved_on
    attempts: dict[str, list[Any]] = {}
    for case_id, *attempt in await session.execute(_ATTEMPTS_OF_CASES, ids):
        attempts.setdefault(case_id, []).append(attempt)
    return [
        _case(row, signals[row[0]], resolved[row[0]], _attempts(attempts.get(row[0], ())))
        for row in rows
    ]


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


# A case opens in state "open" and leaves it only once picked up (or closed).
_NOT_PICKED_UP = sa.select(match_case.c.case_id).where(
    match_case.c.state == CaseState.OPEN.value,
    match_case.c.opgepakt_on.is_(None),
    match_case.c.opened_on <= sa.bindparam("cutoff", type_=sa.Date),
)


async def load_not_picked_up(session: AsyncSession, *, opened_on_or_before: date) -> list[Case]:
    """Open cases never picked up that opened on or before the date (the sweep's candidates).

    A scan of match_case, once a day: not worth an index that every batch would maintain.
    """
    ids = list((await session.execute(_NOT_PICKED_UP, {"cutoff": opened_on_or_before})).scalars())
    cases: list[Case] = []
    for chunk in _chunks(sorted(ids)):
        cases += await _load_cases_by_ids(session, chunk)
    return cases


async def resolve_case_ids(session: AsyncSession, case_ids: Iterable[str]) -> dict[str, str]:
    """Current id of each given case id (itself, or where a merge/rename took it)."""
    wanted = sorted(set(case_ids))
    rows = await session.execute(_ALIASES, {"ids": _text_array(wanted)})
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
    link_cache: LinkCache | None = None  # told what the batch wrote to match_signal
    case_cache: CaseCache | None = None  # told which cases the batch wrote and deleted

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
        loaded_links, loaded_assignments = self.loaded_links, self.loaded_assignments
        changed: list[tuple[LinkInput, Assignment]] = []
        for ref, signal in links.signals.items():
            assignment = links.assignments[ref]
            if loaded_links.get(ref) != signal or loaded_assignments.get(ref) != assignment:
                changed.append((signal, assignment))
        if not changed:
            return
        # Keys are unique: one row per signal.
        payload = "[" + ",".join(_signal_row_json(s, a) for s, a in changed) + "]"
        await session.execute(_MATCH_SIGNAL.statement, {"rows": payload})
        if self.link_cache is not None:
            self.link_cache.stage(await self.link_cache.generation(session), changed)

    async def _save_cases(self, session: AsyncSession) -> None:
        cases = self.matcher.cases
        changed = [c for cid, c in cases.items() if self.loaded_cases.get(cid) != c]
        gone = [cid for cid in self.loaded_cases if cid not in cases]
        if changed:  # case ids are unique: one row per case
            payload = "[" + ",".join(map(_case_row_json, changed)) + "]"
            await session.execute(_MATCH_CASE.statement, {"rows": payload})
        # Only the signal rows that differ from what was loaded (a case that gains a signal
        # keeps its other signals as they were).
        stored = {
            ref: (c.case_id, s, c.resolved_on.get(ref))
            for c in self.loaded_cases.values()
            for ref, s in c.signals.items()
        }
        signal_rows: dict[str, str] = {}  # by ref: the last row of a ref wins, as in _upsert
        for c in changed:
            for ref, s in c.signals.items():
                resolved_on = c.resolved_on.get(ref)
                if stored.get(ref) != (c.case_id, s, resolved_on):
                    signal_rows[ref] = (
                        f'{{"signal_ref":{_json_str(ref)},"case_id":{_json_str(c.case_id)},'
                        f'"facts":{_facts_json(s)},"resolved_on":{_json_date(resolved_on)}}}'
                    )
        if signal_rows:
            payload = "[" + ",".join(signal_rows.values()) + "]"
            await session.execute(_CASE_SIGNAL.statement, {"rows": payload})
        # Attempts are few per case: rewrite them for the changed cases that had any.
        rewrite = [
            c.case_id
            for c in changed
            if c.contactpogingen
            or (c.case_id in self.loaded_cases and self.loaded_cases[c.case_id].contactpogingen)
        ]
        for part in _chunks(rewrite):
            await session.execute(_DELETE_ATTEMPTS, {"ids": _text_array(part)})
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
            await session.execute(_DELETE_CASES, {"ids": _text_array(part)})
        if self.case_cache is not None and (changed or gone):
            self.case_cache.stage(await self.case_cache.generation(session), (changed, gone))
        if self.aliases:
            # Older aliases that pointed at a renamed id follow it; then the new ones.
            follow = [{"old_case_id": o, "case_id": n} for o, n in _followed(self.aliases).items()]
            await session.execute(_FOLLOW_ALIASES, {"rows": json.dumps(follow)})
            alias_rows = [{"old_case_id": o, "case_id": n} for o, n in self.aliases.items()]
            await _upsert(session, _CASE_ALIAS, alias_rows)


def _followed(aliases: Mapping[str, str]) -> dict[str, str]:
    """Where a stored alias pointing at each key ends up when the aliases are applied one
    after another, in order (a later alias may move what an earlier one pointed to): the same
    as one ``UPDATE`` per alias, in one statement."""
    position = {old: i for i, old in enumerate(aliases)}
    out: dict[str, str] = {}
    for i, (old, new) in enumerate(aliases.items()):
        at = i
        while (j := position.get(new)) is not None and j > at:
            at, new = j, aliases[new]
        out[old] = new
    return out


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

_FOLLOW_ALIASES = sa.text(
    """
    UPDATE case_alias SET case_id = r.case_id
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(old_case_id text, case_id text)
    WHERE case_alias.case_id = r.old_case_id
    """
)


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
    link_cache: LinkCache | None = None,
    case_cache: CaseCache | None = None,
) -> MatchingState:
    """The clusters reachable from ``tokens``/``signal_refs`` and every case holding one of
    their signals, as a populated :class:`Matcher`. Under the matching lock.

    ``link_cache``/``case_cache``: the process's copies of the linking state and the cases,
    kept from batch to batch (the handler's); without a link cache the linking state is
    loaded for this call alone, without a case cache the cases are read from the tables."""
    if link_cache is None:
        link_cache = LinkCache()
    held = await link_cache.index(session)
    matcher = Matcher(policy, region)
    state = MatchingState(matcher, link_cache=link_cache, case_cache=case_cache)
    links = matcher.links
    refs = sorted(held.reach(tokens, signal_refs))
    for ref in refs:
        link, assignment = held.signals[ref], held.assignments[ref]
        state.loaded_links[ref] = link
        state.loaded_assignments[ref] = assignment
        links.put(link, assignment)
    if case_cache is not None:
        for case in (await case_cache.index(session)).holding(refs):
            state.loaded_cases[case.case_id] = case
            matcher.cases[case.case_id] = case
        return state
    case_ids: set[str] = set()
    for chunk in _chunks(refs):
        case_ids.update(
            (await session.execute(_CASE_IDS_OF_SIGNALS, {"refs": _text_array(chunk)})).scalars()
        )
    for chunk in _chunks(sorted(case_ids)):
        for case in await _load_cases_by_ids(session, chunk):
            state.loaded_cases[case.case_id] = case
            matcher.cases[case.case_id] = case
    return state
