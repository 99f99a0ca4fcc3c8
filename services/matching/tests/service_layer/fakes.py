"""Matching's unit of work in memory: the committed state is a linking index, a case store
and the case aliases; a batch loads its slice from them the way the SQL repository loads
from the tables, and ``commit`` writes back what the batch changed."""

from __future__ import annotations

from datetime import date
from typing import Self

from eropaf_contracts.region import Region
from eropaf_matching.adapters.repository import MatchingState
from eropaf_matching.domain.cases import CaseState
from eropaf_matching.domain.linking import LinkIndex, Token
from eropaf_matching.domain.matcher import CaseStore, Matcher
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_matching.service_layer.unit_of_work import (
    AbstractMatchingUnitOfWork,
    MatchingRepository,
)
from eropaf_platform.outbox import OutgoingMessage
from eropaf_platform.unit_of_work import FakeUnitOfWork


class FakeMatchingRepository(MatchingRepository):
    def __init__(self, policy: RegionPolicy, region: Region) -> None:
        super().__init__(policy, region)
        self.links = LinkIndex()  # match_signal
        self.cases = CaseStore()  # match_case with its signals and attempts
        self.aliases: dict[str, str] = {}  # case_alias: old id -> current id

    async def not_picked_up(self, *, opened_on_or_before: date) -> list[str]:
        return sorted(
            c.case_id
            for c in self.cases.values()
            if c.state is CaseState.OPEN
            and c.opgepakt_on is None
            and c.opened_on <= opened_on_or_before
        )

    async def _load(
        self, *, tokens: set[Token], signal_refs: set[str], case_refs: set[str]
    ) -> MatchingState:
        matcher = Matcher(self.policy, self.region)
        state = MatchingState(matcher)
        refs = sorted(self.links.reach(tokens, signal_refs)) if tokens or signal_refs else []
        for ref in refs:
            link, assignment = self.links.signals[ref], self.links.assignments[ref]
            state.loaded_links[ref] = link
            state.loaded_assignments[ref] = assignment
            matcher.links.put(link, assignment)
        state.case_ids = {ref: self.aliases.get(ref, ref) for ref in sorted(case_refs)}
        named = sorted(set(state.case_ids.values()))
        found = self.cases.holding(refs) + [self.cases[c] for c in named if c in self.cases]
        for case in found:
            state.loaded_cases[case.case_id] = case
            matcher.cases[case.case_id] = case
        return state

    async def _save(self, state: MatchingState) -> None:
        links = state.matcher.links
        for ref, link in links.signals.items():
            self.links.put(link, links.assignments[ref])
        for case_id in state.loaded_cases:
            if case_id not in state.matcher.cases:
                self.cases.pop(case_id, None)
        self.cases.update(state.matcher.cases)
        for old, new in state.aliases.items():  # as one UPDATE per alias, then the new ones
            self.aliases = {k: (new if v == old else v) for k, v in self.aliases.items()}
        self.aliases.update(state.aliases)


class FakeMatchingUnitOfWork(FakeUnitOfWork, AbstractMatchingUnitOfWork):
    """``published``: every committed event in order; ``locked``: times the lock was taken."""

    def __init__(self, policy: RegionPolicy, region: Region) -> None:
        super().__init__()
        self.matching: FakeMatchingRepository = FakeMatchingRepository(policy, region)
        self.locked = 0

    async def __aenter__(self) -> Self:
        self.locked += 1
        return self

    async def _commit(self, messages: list[OutgoingMessage]) -> None:
        await self.matching.save()
        await super()._commit(messages)

    async def rollback(self) -> None:
        self.matching.forget()
        await super().rollback()
