"""Matching's linking state (``match_signal``) held in memory, kept true to the table.

Why: finding the clusters a batch touches was a breadth-first search over a token table,
several queries a batch and the largest share of matching's PostgreSQL time; matching runs
once, so one process can hold every signal's tokens and search them in memory (the domain's
:class:`~eropaf_matching.domain.linking.LinkIndex`). The table stays the record: the copy is
loaded from it and reloaded whenever it may differ.

How it stays true: every statement that writes ``match_signal`` gives the one row of
``match_link_generation`` a new random value (a trigger, migration ``matching_0002``); the
copy follows its own commits and loads again after anyone else's
(:class:`~eropaf_matching.adapters.held_copy.HeldCopy`).

Memory: about 1 KB a signal traced, 2.4 KB of resident memory loaded afresh at 100,000
signals (``python -m eropaf_bench.matching_memory``), kept out of the cyclic collector's sight
(``gc.freeze``, see ``held_copy``): a full pass over the state took 110 ms at 30,000 signals
and 335 ms at 100,000 (measured).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_matching.adapters.held_copy import HeldCopy
from eropaf_matching.adapters.tables import match_link_generation, match_signal
from eropaf_matching.domain.linking import Assignment, LinkIndex, LinkInput
from eropaf_matching.domain.signals import shared
from eropaf_platform.logging import get_logger

__all__ = ["LinkCache", "link_input"]

log = get_logger(__name__)

# For operators: memory grows with the signals held (about 1-2.4 KB each), and loads other than
# the first mean another writer was at match_signal.
SIGNALS_HELD = Gauge(
    "eropaf_matching_linking_signals", "Signals held in matching's in-memory linking state"
)
LOADS = Counter(
    "eropaf_matching_linking_loads_total",
    "Full loads of the linking state from match_signal (at start, then after another writer)",
)

_GENERATION = sa.select(match_link_generation.c.generation).where(match_link_generation.c.id == 1)
_ALL_SIGNALS = sa.select(
    match_signal.c.signal_ref,
    match_signal.c.datum,
    match_signal.c.tokens,
    match_signal.c.person_id,
    match_signal.c.household_id,
)


def link_input(signal_ref: str, datum: Any, tokens: Mapping[str, str]) -> LinkInput:
    """A ``match_signal`` row's linking input (its key is (business date, ref))."""
    return LinkInput(signal_ref, (datum, signal_ref), tokens)


class LinkCache(HeldCopy[LinkIndex, list[tuple[LinkInput, Assignment]]]):
    """The whole ``match_signal`` table as a :class:`LinkIndex`, for the one process that
    links (module docstring). Only ever used under the matching lock."""

    def __init__(self) -> None:
        super().__init__(_GENERATION, LOADS)

    def _apply(self, state: LinkIndex, change: list[tuple[LinkInput, Assignment]]) -> int:
        for signal, assignment in change:
            state.put(signal, assignment)
        return len(change)

    def _held(self, state: LinkIndex) -> None:
        SIGNALS_HELD.set(len(state.signals))

    async def _load(self, session: AsyncSession) -> LinkIndex:
        started = time.perf_counter()
        index = LinkIndex()
        for ref, datum, tokens, person_id, household_id in await session.execute(_ALL_SIGNALS):
            index.put(
                link_input(ref, datum, tokens), Assignment(shared(person_id), shared(household_id))
            )
        log.info(
            "linking state loaded",
            signals=len(index.signals),
            seconds=round(time.perf_counter() - started, 3),
        )
        return index
