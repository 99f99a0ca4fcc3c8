"""In-memory reference of the matching flow: link -> place in a case -> route and triage.

The service does the same per message against PostgreSQL (load the cluster and the
household's cases, call these pure functions, persist the result and the outbox events in
one transaction). Tests use this class to check whole scenarios and replay determinism.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

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

__all__ = ["Matcher", "SignalOutcome"]


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


class Matcher:
    def __init__(self, policy: RegionPolicy, region: Region) -> None:
        self.policy = policy
        self.region = region
        self.links = LinkIndex()
        self.cases: dict[str, Case] = {}  # case_id -> case, open and closed

    def accept(self, signal: SignalFacts, today: date | None = None) -> SignalOutcome:
        """A signal (new or revised) from intake."""
        today = today or signal.received_at.date()
        link = self.links.apply(LinkInput.of(signal))
        household = self.links.households()[link.household_id]
        related = [c for c in self.cases.values() if c.signals.keys() & household]
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
        for case in self.cases.values():
            if signal_ref in case.signals:
                return case
        raise UnknownSignal(f"no case holds signal {signal_ref!r}")

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
