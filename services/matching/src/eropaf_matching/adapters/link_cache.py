"""Matching's linking state (``match_signal``) held in memory, kept true to the table.

Why: finding the clusters a batch touches was a breadth-first search over a token table,
several queries a batch and the largest share of matching's PostgreSQL time; matching runs
once, so one process can hold every signal's tokens and search them in memory (the domain's
:class:`~eropaf_matching.domain.linking.LinkIndex`). The table stays the record: the copy is
loaded from it and reloaded whenever it may differ.

How it stays true: every statement that writes ``match_signal`` gives the one row of
``match_link_generation`` a new random value (a trigger, migration ``matching_0002``). Under
the matching lock, :meth:`LinkCache.index` reads that value:

* the value the copy was made at: nobody wrote since; a batch of ours that was staged but
  rolled back is dropped;
* the value our last batch left after its writes (:meth:`LinkCache.stage`): that batch
  committed; its rows are applied to the copy now;
* any other value: someone else wrote (a second instance during a rollout, a manual fix),
  or we cannot tell (a commit that failed in flight); the copy is loaded afresh.

Values are random, not counted, so a rolled-back batch of ours can never be mistaken for
another writer's committed one.

Memory: about 2 KB and a dozen objects a signal. A full pass of Python's cyclic garbage
collector visits every tracked object: with the state held, that took 110 ms at 30,000
signals and 335 ms at 100,000 (measured), a pause in the middle of whatever batch it hit.
The state lives as long as the process and holds no reference cycles (refcounting still
frees what is replaced), so it is taken out of the collector's sight (``gc.freeze``) once
loaded and again every ``FREEZE_EVERY`` signals added. The young generations are collected
just before, so that hardly any cyclic garbage is frozen along with it.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_matching.adapters.tables import match_link_generation, match_signal
from eropaf_matching.domain.linking import Assignment, LinkIndex, LinkInput
from eropaf_matching.domain.signals import token_kind
from eropaf_platform.logging import get_logger

__all__ = ["LinkCache", "current_generation", "link_input"]

log = get_logger(__name__)

# For operators: memory grows with the signals held (about 2 KB each), and loads other than
# the first mean another writer was at match_signal.
SIGNALS_HELD = Gauge(
    "eropaf_matching_linking_signals", "Signals held in matching's in-memory linking state"
)
LOADS = Counter(
    "eropaf_matching_linking_loads_total",
    "Full loads of the linking state from match_signal (at start, then after another writer)",
)

FREEZE_EVERY = 2_000  # signals added between freezes (module docstring: "Memory")

_GENERATION = sa.select(match_link_generation.c.generation).where(match_link_generation.c.id == 1)
_ALL_SIGNALS = sa.select(
    match_signal.c.signal_ref,
    match_signal.c.datum,
    match_signal.c.tokens,
    match_signal.c.person_id,
    match_signal.c.household_id,
)


async def current_generation(session: AsyncSession) -> uuid.UUID:
    return (await session.execute(_GENERATION)).scalar_one()


def link_input(signal_ref: str, datum: Any, tokens: Mapping[str, str]) -> LinkInput:
    """A ``match_signal`` row's linking input (its key is (business date, ref))."""
    return LinkInput(signal_ref, (datum, signal_ref), {token_kind(k): v for k, v in tokens.items()})


class LinkCache:
    """The whole ``match_signal`` table as a :class:`LinkIndex`, for the one process that
    links (module docstring). Only ever used under the matching lock."""

    def __init__(self) -> None:
        self._index: LinkIndex | None = None
        self._generation: uuid.UUID | None = None
        self._staged: tuple[uuid.UUID, list[tuple[LinkInput, Assignment]]] | None = None
        self.loads = 0  # full loads from the table (the first, and one per outside write)
        self._unfrozen = 0  # signals put since the last freeze

    async def index(self, session: AsyncSession) -> LinkIndex:
        """The table's current state; call after taking the matching lock, in the batch's
        transaction (so that nobody changes it before the batch commits)."""
        generation = await current_generation(session)
        staged, self._staged = self._staged, None
        if self._index is not None and staged is not None and staged[0] == generation:
            for signal, assignment in staged[1]:
                self._index.put(signal, assignment)
            self._generation = generation
            self._unfrozen += len(staged[1])
            if self._unfrozen >= FREEZE_EVERY:
                self._freeze()
        if self._index is None or self._generation != generation:
            self._index = await self._load(session)
            self._generation = generation
            self.loads += 1
            LOADS.inc()
            self._freeze()
        SIGNALS_HELD.set(len(self._index.signals))
        return self._index

    def stage(self, generation: uuid.UUID, rows: Iterable[tuple[LinkInput, Assignment]]) -> None:
        """Rows a batch wrote, to apply once its commit shows (``generation``: the table's
        value after those writes, in the batch's transaction)."""
        self._staged = (generation, list(rows))

    def _freeze(self) -> None:
        gc.collect(1)
        gc.freeze()
        self._unfrozen = 0

    @staticmethod
    async def _load(session: AsyncSession) -> LinkIndex:
        started = time.perf_counter()
        index = LinkIndex()
        for ref, datum, tokens, person_id, household_id in await session.execute(_ALL_SIGNALS):
            index.put(link_input(ref, datum, tokens), Assignment(person_id, household_id))
        log.info(
            "linking state loaded",
            signals=len(index.signals),
            seconds=round(time.perf_counter() - started, 3),
        )
        return index
