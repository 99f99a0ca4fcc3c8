"""The unit of work matching's use cases run in: the matching lock, the state of the batch
(loaded one way whatever triggered it), and its events, saved together.

``async with uow:`` takes the matching lock (two batches that touch one household must not
both compute its case from the same stale state); :meth:`MatchingRepository.load` gives the
batch's :class:`~eropaf_matching.adapters.repository.MatchingState`; ``uow.commit()`` saves
every state loaded and writes the queued events to the outbox in the same transaction.

:class:`MatchingUnitOfWork` works over the batch's session and the process's copies of the
linking state and the cases (``adapters.link_cache``, ``adapters.case_cache``); the tests'
fake (``tests/service_layer/fakes.py``) over dictionaries.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import date
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.region import Region
from eropaf_matching.adapters import repository
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.adapters.repository import MatchingState
from eropaf_matching.domain.linking import Token
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_platform import outbox
from eropaf_platform.outbox import OutgoingMessage
from eropaf_platform.unit_of_work import AbstractUnitOfWork, SqlUnitOfWork

__all__ = [
    "AbstractMatchingUnitOfWork",
    "MatchingRepository",
    "MatchingUnitOfWork",
    "SqlMatchingRepository",
]

_OUTBOX_CHUNK = 1000  # events per outbox statement: a full batch queues thousands


class MatchingRepository(abc.ABC):
    """Matching's state for one unit of work: what a batch loads, saved on commit."""

    def __init__(self, policy: RegionPolicy, region: Region) -> None:
        self.policy = policy
        self.region = region
        self.seen: list[MatchingState] = []  # loaded in this unit of work, saved on commit

    async def load(
        self,
        *,
        tokens: Iterable[Token] = (),
        signal_refs: Iterable[str] = (),
        case_refs: Iterable[str] = (),
    ) -> MatchingState:
        """The clusters reachable from ``tokens``/``signal_refs``, every case holding one of
        their signals, and the cases ``case_refs`` name (their current ids in
        ``state.case_ids``)."""
        state = await self._load(
            tokens=set(tokens), signal_refs=set(signal_refs), case_refs=set(case_refs)
        )
        self.seen.append(state)
        return state

    async def save(self) -> None:
        """Write what the loaded states changed."""
        seen, self.seen = self.seen, []
        for state in seen:
            await self._save(state)

    def forget(self) -> None:
        self.seen.clear()

    @abc.abstractmethod
    async def not_picked_up(self, *, opened_on_or_before: date) -> list[str]:
        """Ids of the open cases never picked up that opened on or before the date."""

    @abc.abstractmethod
    async def _load(
        self, *, tokens: set[Token], signal_refs: set[str], case_refs: set[str]
    ) -> MatchingState: ...

    @abc.abstractmethod
    async def _save(self, state: MatchingState) -> None: ...


class AbstractMatchingUnitOfWork(AbstractUnitOfWork):
    """What matching's use cases need of a unit of work (``async with`` takes the lock)."""

    matching: MatchingRepository


class SqlMatchingRepository(MatchingRepository):
    def __init__(
        self,
        session: AsyncSession,
        policy: RegionPolicy,
        region: Region,
        *,
        links: LinkCache | None = None,
        cases: CaseCache | None = None,
    ) -> None:
        super().__init__(policy, region)
        self.session = session
        self.links = links
        self.cases = cases

    async def not_picked_up(self, *, opened_on_or_before: date) -> list[str]:
        return await repository.not_picked_up_ids(
            self.session, opened_on_or_before=opened_on_or_before
        )

    async def _load(
        self, *, tokens: set[Token], signal_refs: set[str], case_refs: set[str]
    ) -> MatchingState:
        return await repository.load_state(
            self.session,
            self.policy,
            self.region,
            tokens=tokens,
            signal_refs=signal_refs,
            case_refs=case_refs,
            link_cache=self.links,
            case_cache=self.cases,
        )

    async def _save(self, state: MatchingState) -> None:
        await state.save(self.session)


class MatchingUnitOfWork(SqlUnitOfWork, AbstractMatchingUnitOfWork):
    """Over the batch's session (the batch processor's transaction, or the sweep's):
    ``commit`` saves the state and adds the events to the outbox; the owner of the
    transaction commits it.

    ``links``/``cases``: the process's copies of the linking state and the cases, kept from
    batch to batch (matching runs once); without them the state is read from the tables."""

    def __init__(
        self,
        session: AsyncSession,
        policy: RegionPolicy,
        region: Region,
        *,
        links: LinkCache | None = None,
        cases: CaseCache | None = None,
    ) -> None:
        super().__init__(session)
        self.matching = SqlMatchingRepository(session, policy, region, links=links, cases=cases)

    async def __aenter__(self) -> Self:
        await repository.lock_matching(self.session)
        return self

    async def rollback(self) -> None:
        self.matching.forget()
        await super().rollback()

    async def _commit(self, messages: list[OutgoingMessage]) -> None:
        await self.matching.save()
        # One statement per chunk, not per event.
        for start in range(0, len(messages), _OUTBOX_CHUNK):
            await outbox.add(self.session, messages[start : start + _OUTBOX_CHUNK])
