"""Loads and saves matching's state for a batch: linking clusters and the cases around them.

Whatever triggered the batch (signals, scheduling's reports, the sweep), its state is built
one way, :func:`load_state`: an in-memory :class:`~eropaf_matching.domain.matcher.Matcher`
that holds exactly the clusters reachable from the given tokens and signal refs (searched in
the process's copy of ``match_signal``,
:class:`~eropaf_matching.adapters.link_cache.LinkCache`), every case that holds a signal of
those clusters and the cases asked for by ref (from the process's copy of the cases,
:class:`~eropaf_matching.adapters.case_cache.CaseCache`, or a few queries without one).
After the domain ran, :meth:`MatchingState.save` writes back only what differs from what was
loaded, one bulk statement per table (all rows as one JSON parameter, written by the one
encoder, :func:`~eropaf_matching.adapters.case_rows.encode`), and stages what it wrote for
the copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.region import Region
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.case_rows import (
    case_from_rows,
    case_row,
    case_signal_row,
    chunks,
    encode,
    facts_from_json,
    facts_to_json,
    load_cases,
    load_cases_by_ids,
    load_not_picked_up,
    not_picked_up_ids,
    resolve_case_ids,
    signal_row,
)
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.adapters.tables import (
    case_alias,
    case_contact_attempt,
    case_signal,
    match_case,
    match_signal,
)
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.linking import Assignment, LinkInput, Token
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_platform import bulk

__all__ = [
    "MATCHING_LOCK_ID",
    "MatchingState",
    "case_from_rows",
    "facts_from_json",
    "facts_to_json",
    "load_cases",
    "load_not_picked_up",
    "load_state",
    "lock_matching",
    "not_picked_up_ids",
    "resolve_case_ids",
]

# Serialises matching transactions across service instances: two batches that touch one
# household must not both compute its case from the same stale state. Cheap at our volumes.
MATCHING_LOCK_ID = 0x4D415443  # "MATC"

# In the same round trip: no JIT for this transaction. The planner's row estimates for
# array parameters are coarse, and compiling a plan cost more than running it (measured:
# ~0.5 s of JIT for a 10 ms query).
_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(MATCHING_LOCK_ID), sa.func.set_config("jit", "off", True)
)


async def lock_matching(session: AsyncSession) -> None:
    await session.execute(_LOCK)


_CASE_IDS_OF_SIGNALS = sa.select(case_signal.c.case_id).where(
    bulk.any_of(case_signal.c.signal_ref, name="refs")
)
_DELETE_ATTEMPTS = sa.delete(case_contact_attempt).where(
    bulk.any_of(case_contact_attempt.c.case_id, name="ids")
)
_DELETE_CASES = sa.delete(match_case).where(bulk.any_of(match_case.c.case_id, name="ids"))


@dataclass
@dataclass
class MatchingState:
    """The slice of matching's state a batch works on, and what it looked like when loaded."""

    matcher: Matcher
    loaded_links: dict[str, LinkInput] = field(default_factory=dict)
    loaded_assignments: dict[str, Assignment] = field(default_factory=dict)
    loaded_cases: dict[str, Case] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # old case id -> new, this batch
    case_ids: dict[str, str] = field(default_factory=dict)  # case ref asked for -> current id
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
        payload = encode([signal_row(s, a) for s, a in changed])
        await session.execute(_MATCH_SIGNAL.statement, {"rows": payload})
        if self.link_cache is not None:
            self.link_cache.stage(await self.link_cache.generation(session), changed)

    async def _save_cases(self, session: AsyncSession) -> None:
        cases = self.matcher.cases
        changed = [c for cid, c in cases.items() if self.loaded_cases.get(cid) != c]
        gone = [cid for cid in self.loaded_cases if cid not in cases]
        if changed:  # case ids are unique: one row per case
            payload = encode([case_row(c) for c in changed])
            await session.execute(_MATCH_CASE.statement, {"rows": payload})
        # Only the signal rows that differ from what was loaded (a case that gains a signal
        # keeps its other signals as they were).
        stored = {
            ref: (c.case_id, s, c.resolved_on.get(ref))
            for c in self.loaded_cases.values()
            for ref, s in c.signals.items()
        }
        signal_rows: dict[str, dict[str, Any]] = {}  # by ref: the last row of a ref wins
        for c in changed:
            for ref, s in c.signals.items():
                resolved_on = c.resolved_on.get(ref)
                if stored.get(ref) != (c.case_id, s, resolved_on):
                    signal_rows[ref] = case_signal_row(ref, c.case_id, s, resolved_on)
        if signal_rows:
            payload = encode(list(signal_rows.values()))
            await session.execute(_CASE_SIGNAL.statement, {"rows": payload})
        # Attempts are few per case: rewrite them for the changed cases that had any.
        rewrite = [
            c.case_id
            for c in changed
            if c.contactpogingen
            or (c.case_id in self.loaded_cases and self.loaded_cases[c.case_id].contactpogingen)
        ]
        for part in chunks(rewrite):
            await session.execute(_DELETE_ATTEMPTS, {"ids": bulk.array_literal(part)})
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
        for part in chunks(gone):
            await session.execute(_DELETE_CASES, {"ids": bulk.array_literal(part)})
        if self.case_cache is not None and (changed or gone):
            self.case_cache.stage(await self.case_cache.generation(session), (changed, gone))
        if self.aliases:
            # Older aliases that pointed at a renamed id follow it; then the new ones.
            follow = [{"old_case_id": o, "case_id": n} for o, n in _followed(self.aliases).items()]
            await session.execute(_FOLLOW_ALIASES, {"rows": encode(follow)})
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

    All rows travel as ONE JSON parameter (encoded by orjson in C, decoded by PostgreSQL):
    no per-row work in the driver -- an executemany binds and dumps every row, and array
    parameters are escaped element by element in Python; both measured as most of a batch's
    time -- and the same SQL every time (compiled and prepared once).
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


async def _upsert(session: AsyncSession, table: _Bulk, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update rows by primary key in one statement (the last row of a key wins:
    one statement may not touch a row twice)."""
    if not rows:
        return
    unique = {tuple(r[k] for k in table.key): r for r in rows}
    payload = encode(list(unique.values()))
    await session.execute(table.statement, {"rows": payload})


async def load_state(
    session: AsyncSession,
    policy: RegionPolicy,
    region: Region,
    *,
    tokens: Iterable[Token] = (),
    signal_refs: Iterable[str] = (),
    case_refs: Iterable[str] = (),
    link_cache: LinkCache | None = None,
    case_cache: CaseCache | None = None,
) -> MatchingState:
    """A batch's state, as a populated :class:`Matcher`: the clusters reachable from
    ``tokens``/``signal_refs``, every case holding one of their signals, and the cases
    ``case_refs`` name (by their current ids, :attr:`MatchingState.case_ids`). Under the
    matching lock.

    ``link_cache``/``case_cache``: the process's copies of the linking state and the cases,
    kept from batch to batch; without a link cache the linking state is loaded for this call
    alone (only when there are tokens or refs to reach from), without a case cache the cases
    are read from the tables."""
    tokens, signal_refs = set(tokens), set(signal_refs)
    matcher = Matcher(policy, region)
    state = MatchingState(matcher, link_cache=link_cache, case_cache=case_cache)
    refs: list[str] = []
    if tokens or signal_refs:
        if link_cache is None:
            link_cache = state.link_cache = LinkCache()
        held = await link_cache.index(session)
        links = matcher.links
        refs = sorted(held.reach(tokens, signal_refs))
        for ref in refs:
            link, assignment = held.signals[ref], held.assignments[ref]
            state.loaded_links[ref] = link
            state.loaded_assignments[ref] = assignment
            links.put(link, assignment)
    wanted = sorted(set(case_refs))
    if wanted:
        state.case_ids = await resolve_case_ids(session, wanted)
    named = sorted(set(state.case_ids.values()))
    if case_cache is not None:
        cases = await case_cache.index(session)
        found = cases.holding(refs) + [cases[cid] for cid in named if cid in cases]
    else:
        case_ids = set(named)
        for chunk in chunks(refs):
            case_ids.update(
                (
                    await session.execute(_CASE_IDS_OF_SIGNALS, {"refs": bulk.array_literal(chunk)})
                ).scalars()
            )
        found = []
        for chunk in chunks(sorted(case_ids)):
            found += await load_cases_by_ids(session, chunk)
    for case in found:
        state.loaded_cases[case.case_id] = case
        matcher.cases[case.case_id] = case
    return state
