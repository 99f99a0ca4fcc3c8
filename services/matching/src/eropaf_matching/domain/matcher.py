"""The matching flow over the slice of state a batch works on: link -> place in a case ->
route and triage, and the reports and sweeps that move cases on.

The service layer loads the clusters and cases a batch touches into a :class:`Matcher`,
calls its ``take_*`` operations -- each returns the outcomes to tell
(:mod:`~eropaf_matching.domain.outcomes`) -- and saves what changed. Tests use the same
class to check whole scenarios and replay determinism.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from eropaf_contracts.ddas import Eindresultaat
from eropaf_contracts.events import CaseChange, CreditorStatus
from eropaf_contracts.region import Region
from eropaf_matching.domain import outcomes
from eropaf_matching.domain.cases import (
    Case,
    CaseError,
    ContactAttempt,
    Evaluation,
    Placement,
    PlacementKind,
    Report,
    UnknownSignal,
    apply_report,
    case_change,
    close_case,
    close_not_picked_up,
    creditor_status,
    evaluate,
    not_picked_up_due,
    place_signal,
    plan_outreach,
    record_contact_attempt,
    resolve_signal,
)
from eropaf_matching.domain.linking import LinkIndex, LinkInput, LinkOutcome
from eropaf_matching.domain.outcomes import Outcome
from eropaf_matching.domain.signals import SignalFacts
from eropaf_matching.domain.triage import RegionPolicy

__all__ = ["CaseStore", "Matcher", "SignalOutcome", "UnknownCase"]


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


class UnknownCase(CaseError):
    """No case has (or had) this id."""


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

    # --- operations that say what happened ------------------------------------------------

    def take_signal(self, signal: SignalFacts) -> list[Outcome]:
        """A new or revised signal from intake, on the day intake received it. A revision no
        newer than the one held changes nothing; a late correction of a closed case keeps the
        facts and tells nothing. Raises ``RoutingError`` for an address the region does not
        serve."""
        ref = signal.signal_ref
        if ref in self.links.signals and self._held_revision(ref) >= signal.revision:
            return [outcomes.StaleRevisionDropped(ref, signal.revision)]
        scope = self.links.scope(ref, signal.match_tokens.items())
        held = self.cases.holding(scope)
        before = self._creditor_statuses(held)
        outcome = self.accept(signal, today=signal.received_at.date(), scope=scope)
        placement, evaluation = outcome.placement, outcome.evaluation
        if placement is None or evaluation is None:
            return []
        case = evaluation.case
        # The creditors of the case(s) it was made of: scheduling picks the duo by them.
        was = {case.case_id, *placement.previous_case_ids}
        creditors = {p for c in held if c.case_id in was and c.is_open for p in c.creditors}
        told: list[Outcome] = []
        if placement.kind is PlacementKind.OPENED:
            told.append(outcomes.CaseOpened(case))
        else:
            told.append(
                outcomes.CaseChanged(
                    case,
                    case_change(placement.kind, placement.case, case),
                    about=f"{ref}:r{signal.revision}",
                    previous_case_refs=placement.previous_case_ids,
                )
            )
        if evaluation.decision_changed or (
            placement.kind is not PlacementKind.OPENED and set(case.creditors) != creditors
        ):
            told.append(outcomes.DecisionChanged(case))
        # Only where the status changed: an unchanged one was told when it came about.
        for other in sorted(case.signals):
            status = creditor_status(case, other)
            if status is not None and status != before.get(other):
                told.append(outcomes.CreditorStatusChanged(case, other, status))
        return told

    def take_resolution(self, signal_ref: str, on: date) -> list[Outcome]:
        """The creditor reports the arrears of a signal cleared; the case closes when it
        was the last open signal before contact (:func:`resolve_signal`)."""
        before = self.cases.of_signal(signal_ref)
        if before is None:
            return [outcomes.UnknownSignalResolution(signal_ref)]
        if signal_ref in before.resolved_on:
            return []
        case = self.resolve(signal_ref, on)
        if before.is_open and not case.is_open:
            return [outcomes.CaseClosed(case), *self._statuses(case, case.signals)]
        if case.is_open:
            told: list[Outcome] = [
                outcomes.CaseChanged(case, CaseChange.SIGNAL_RESOLVED, about=signal_ref)
            ]
            if case.creditors != before.creditors:  # that creditor has no open signal left
                told.append(outcomes.DecisionChanged(case))
            return told
        return []

    def take_report(self, case_id: str, report: Report) -> list[Outcome]:
        """A report of scheduling's (planned, a contact attempt, the end result). Raises
        :class:`UnknownCase`, or a :class:`CaseError` the report contradicts an open case
        with; a report on a case closed already is ignored."""
        case = self.cases.get(case_id)
        if case is None:
            raise UnknownCase(f"no case {case_id!r}")
        try:
            updated = apply_report(case, report)
        except CaseError as exc:
            if case.is_open:
                raise
            return [outcomes.ReportOnClosedCaseIgnored(case_id, str(exc))]
        self.cases[case_id] = updated
        if case.is_open and not updated.is_open:
            return [outcomes.CaseClosed(updated)]
        return []

    def take_not_picked_up(self, today: date) -> list[Outcome]:
        """Close the held cases never picked up whose wait is over on ``today``
        (:func:`not_picked_up_due`), in case id order; creditors hear where their status
        changed (a repeat was told "not picked up" when it came)."""
        told: list[Outcome] = []
        for case in not_picked_up_due(list(self.cases.values()), self.policy, today):
            closed = self._store(close_not_picked_up(case, today))
            told.append(outcomes.CaseClosed(closed))
            changed = [
                r for r in closed.signals if creditor_status(closed, r) != creditor_status(case, r)
            ]
            told += self._statuses(closed, changed)
        return told

    def _held_revision(self, signal_ref: str) -> int:
        case = self.cases.of_signal(signal_ref)
        return case.signals[signal_ref].revision if case is not None else 0

    @staticmethod
    def _creditor_statuses(cases: Iterable[Case]) -> dict[str, CreditorStatus | None]:
        """The creditor status of every signal in the cases that accepting a signal may
        change: those holding a signal of its scope (:meth:`LinkIndex.scope`: a household
        never reaches beyond its cluster)."""
        return {ref: creditor_status(case, ref) for case in cases for ref in case.signals}

    @staticmethod
    def _statuses(case: Case, refs: Iterable[str]) -> list[Outcome]:
        told: list[Outcome] = []
        for ref in sorted(refs):
            status = creditor_status(case, ref)
            if status is not None:
                told.append(outcomes.CreditorStatusChanged(case, ref, status))
        return told

    # --- single steps -----------------------------------------------------------------------

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
