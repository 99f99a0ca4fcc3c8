"""In-memory reference of the matching flow: link -> place in a case -> route and triage.

The service does the same per message against PostgreSQL (load the cluster and the
household's cases, call these pure functions, persist the result and the outbox events in
one transaction). Tests use this class to check whole scenarios and replay determinism.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from eropaf_contracts.ddas import Eindresultaat
from eropaf_contracts.region import Region
from eropaf_matching.domain.cases import (
    Case,
    ContactAttempt,
    Evaluation,
    Placement,
    UnknownSignal,
    close_case,
    evaluate,
    place_signal,
    plan_outreach,
    record_contact_attempt,
    resolve_signal,
)
from eropaf_matching.domain.linking import LinkIndex, LinkInput, LinkOutcome
from eropaf_matching.domain.signals import SignalFacts
from eropaf_matching.domain.triage import RegionPolicy

__all__ = ["CaseStore", "Matcher", "SignalOutcome"]


@dataclass(frozen=True)
class SignalOutcome:
    link: LinkOutcome
    placement: Placement | None  # None: a revision of a signal whose case is closed
    evaluation: Evaluation | None

    @property
    def case(self) -> Case:
        if self.evaluation is not None:
            return self.evaluation.case
        raise ValueError("no case change for this signal")


class CaseStore(dict[str, Case]):
    """case_id -> case (open and closed), indexed by signal ref as well.

    Finding the cases of a household is then proportional to the household, not to every
    case held: a service's batch holds thousands (quadratic per batch otherwise).
    """

    def __init__(self, cases: Mapping[str, Case] | None = None) -> None:
        super().__init__()
        self._by_signal: dict[str, str] = {}
        if cases:
            self.update(cases)

    def __setitem__(self, case_id: str, case: Case) -> None:
        old = self.get(case_id)
        if old is not None:
            self._unindex(case_id, old)
        super().__setitem__(case_id, case)
        for ref in case.signals:
            self._by_signal[ref] = case_id

    def __delitem__(self, case_id: str) -> None:
        self._unindex(case_id, self[case_id])
        super().__delitem__(case_id)

    def pop(self, case_id: str, *default: Any) -> Any:
        if case_id in self:
            self._unindex(case_id, self[case_id])
        return super().pop(case_id, *default)

    def popitem(self) -> tuple[str, Case]:
        case_id, case = super().popitem()
        self._unindex(case_id, case)
        return case_id, case

    def setdefault(self, case_id: str, default: Case) -> Case:
        if case_id not in self:
            self[case_id] = default
        return self[case_id]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for case_id, case in dict(*args, **kwargs).items():
            self[case_id] = case

    def clear(self) -> None:
        super().clear()
        self._by_signal.clear()

    def holding(self, signal_refs: Iterable[str]) -> list[Case]:
        """The cases holding any of the signals, in case id order."""
        ids = {self._by_signal[r] for r in signal_refs if r in self._by_signal}
        return [self[i] for i in sorted(ids)]

    def of_signal(self, signal_ref: str) -> Case | None:
        case_id = self._by_signal.get(signal_ref)
        return None if case_id is None else self[case_id]

    def _unindex(self, case_id: str, case: Case) -> None:
        for ref in case.signals:
            if self._by_signal.get(ref) == case_id:
                del self._by_signal[ref]


class Matcher:
    def __init__(self, policy: RegionPolicy, region: Region) -> None:
        self.policy = policy
        self.region = region
        self.links = LinkIndex(address_window=policy.address_window)
        self.cases = CaseStore()  # case_id -> case, open and closed

    def accept(
        self, signal: SignalFacts, today: date | None = None, *, scope: set[str] | None = None
    ) -> SignalOutcome:
        """A signal (new or revised) from intake. ``scope``: ``links.scope`` of the signal,
        if the caller asked for it just before."""
        today = today or signal.received_at.date()
        link = self.links.apply(LinkInput.of(signal), scope=scope)
        related = self.cases.holding(link.household)  # as links.household_of(ref), known here
        closed_with_signal = [
            c for c in related if not c.is_open and signal.signal_ref in c.signals
        ]
        if closed_with_signal:  # a late correction of a closed case: keep the facts only
            case = closed_with_signal[0]
            signals = {**case.signals, signal.signal_ref: signal}
            self.cases[case.case_id] = replace(case, signals=signals)
            return SignalOutcome(link, None, None)
        open_cases = [c for c in related if c.is_open]
        history = [c for c in related if not c.is_open]
        placement = place_signal(open_cases, link.household_id, signal, today)
        for old_id in (*placement.absorbed_case_ids, placement.renamed_from):
            if old_id is not None:
                self.cases.pop(old_id, None)
        evaluation = evaluate(placement.case, history, self.policy, self.region, today)
        self.cases[evaluation.case.case_id] = evaluation.case
        return SignalOutcome(link, placement, evaluation)

    def case_of(self, signal_ref: str) -> Case:
        case = self.cases.of_signal(signal_ref)
        if case is None:
            raise UnknownSignal(f"no case holds signal {signal_ref!r}")
        return case

    def resolve(self, signal_ref: str, on: date) -> Case:
        return self._store(resolve_signal(self.case_of(signal_ref), signal_ref, on))

    def plan(self, case_id: str, on: date) -> Case:
        return self._store(plan_outreach(self.cases[case_id], on))

    def record_attempt(self, case_id: str, attempt: ContactAttempt) -> Case:
        return self._store(record_contact_attempt(self.cases[case_id], attempt))

    def close(self, case_id: str, resultaat: Eindresultaat, on: date) -> Case:
        return self._store(close_case(self.cases[case_id], resultaat, on))

    def _store(self, case: Case) -> Case:
        self.cases[case.case_id] = case
        return case

    def case_partition(self) -> dict[str, frozenset[str]]:
        """case_id -> its signal refs (for comparing replays)."""
        return {cid: frozenset(c.signals) for cid, c in self.cases.items()}
