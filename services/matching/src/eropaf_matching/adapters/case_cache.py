"""Matching's cases (``match_case`` with its ``case_signal`` and ``case_contact_attempt``
rows) held in memory, kept true to the tables.

Why: every signal batch needs the cases of the households it touches, and reading them back
(three queries and the parsing of every signal's facts) grew with each household's history:
in a burst of 60,000 signals a batch of 491 read 1,379 signal rows and 772 cases (measured).
Matching runs once, so its process can hold them; the tables stay the record.

How it stays true: the generation of ``match_case_generation`` (a trigger on the three
tables, migration ``matching_0003``) and :class:`~eropaf_matching.adapters.held_copy.HeldCopy`.
A batch stages the cases it wrote and those it deleted; they are applied once its commit
shows. Where the tables would then hold something the copy does not (a signal row left
pointing at a case that no longer lists it, or moved away from a case the batch did not
write), the copy is loaded afresh instead.

Cases are immutable values (``domain.cases``): the matcher replaces them, never changes
them, so a batch works on the held objects themselves.

Memory: all cases, open and closed, with their signals' facts: about 1 KB a signal traced;
100,000 signals in 45,833 cases took 82 MB of resident memory and 12 s to load
(``python -m eropaf_bench.matching_memory``, on a loaded machine).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_matching.adapters.case_rows import load_cases
from eropaf_matching.adapters.held_copy import HeldCopy
from eropaf_matching.adapters.tables import match_case_generation
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.matcher import CaseStore
from eropaf_platform.logging import get_logger

__all__ = ["CaseCache", "CaseChanges"]

log = get_logger(__name__)

CASES_HELD = Gauge("eropaf_matching_cases_held", "Cases held in matching's memory")
LOADS = Counter(
    "eropaf_matching_case_loads_total",
    "Full loads of the cases from the case tables (at start, then after another writer)",
)

_GENERATION = sa.select(match_case_generation.c.generation).where(match_case_generation.c.id == 1)

# What a batch wrote: the cases it inserted or updated, and the ids of those it deleted.
CaseChanges = tuple[list[Case], list[str]]


class CaseCache(HeldCopy[CaseStore, CaseChanges]):
    """Every case, indexed by case id and by signal ref (module docstring). Only ever used
    under the matching lock; one per process, shared by everything there that writes cases."""

    def __init__(self) -> None:
        super().__init__(_GENERATION, LOADS)

    def _apply(self, state: CaseStore, change: CaseChanges) -> int | None:
        changed, gone = change
        written = {c.case_id for c in changed} | set(gone)
        repointed = {ref for c in changed for ref in c.signals}
        for case in changed:
            old = state.get(case.case_id)
            # A signal the case listed and no written case took: its row still names the case.
            if old is not None and not repointed.issuperset(old.signals):
                return None
        for ref in repointed:
            holder = state.of_signal(ref)
            # Taken from a case the batch did not write: that case no longer lists it.
            if holder is not None and holder.case_id not in written:
                return None
        for case_id in gone:  # rows of signals not taken elsewhere went with the case
            state.pop(case_id, None)
        for case in changed:
            state[case.case_id] = case
        return sum(len(c.signals) for c in changed)

    def _held(self, state: CaseStore) -> None:
        CASES_HELD.set(len(state))

    async def _load(self, session: AsyncSession) -> CaseStore:
        started = time.perf_counter()
        store = CaseStore({c.case_id: c for c in await load_cases(session)})
        log.info("cases loaded", cases=len(store), seconds=round(time.perf_counter() - started, 3))
        return store
