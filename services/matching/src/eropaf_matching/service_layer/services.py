"""Matching's use cases: load the batch's state through the unit of work, let the domain say
what happened, turn that into events, commit.

* :func:`handle_signal_events` -- intake's signals (accepted, updated, resolved);
* :func:`handle_visit_events` -- scheduling's reports (planned, contact attempts, outcomes);
* :func:`sweep_not_picked_up` -- close the cases triage never picked up once their wait is
  over.

Each runs in one unit of work (``async with uow``: under the matching lock) and commits once;
the transaction around it belongs to the caller (the batch processor, or the sweep's own).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from eropaf_contracts.events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_matching import case_events
from eropaf_matching.domain import outcomes
from eropaf_matching.domain.cases import (
    CaseError,
    CaseResult,
    ContactAttempt,
    OutreachPlannedOn,
    Report,
    not_picked_up_cutoff,
)
from eropaf_matching.domain.linking import Token
from eropaf_matching.domain.matcher import UnknownCase
from eropaf_matching.domain.outcomes import Outcome
from eropaf_matching.domain.routing import RoutingError
from eropaf_matching.domain.signals import SignalFacts, SignalKey, canonical_order
from eropaf_matching.service_layer.unit_of_work import AbstractMatchingUnitOfWork
from eropaf_platform.consumer import PoisonMessage
from eropaf_platform.logging import get_logger

__all__ = [
    "Cause",
    "SignalEvent",
    "VisitEvent",
    "facts_of",
    "handle_signal_events",
    "handle_visit_events",
    "sweep_not_picked_up",
]

log = get_logger(__name__)

SignalEvent = SignalAccepted | SignalUpdated | SignalResolved
VisitEvent = OutreachPlanned | ContactAttemptRecorded | CaseOutcomeRecorded


class Cause(case_events.Cause, Protocol):
    """The message an event answers (an ``Envelope``): its ids, and when it happened."""

    @property
    def time(self) -> datetime: ...


def facts_of(event: SignalAccepted | SignalUpdated) -> SignalFacts:
    """What matching keeps of a signal event."""
    return SignalFacts(
        signal_ref=event.signal_ref,
        partner_code=event.partner_code,
        partner_type=event.partner_type,
        gemeentecode=event.gemeentecode,
        postcode_area=event.postcode_area,
        bedrag=event.bedrag,
        ontstaansdatum=event.ontstaansdatum,
        signaaldatum=event.signaaldatum,
        crisissignaal=event.crisissignaal,
        warme_overdracht=event.warme_overdracht,
        match_tokens=dict(event.match_tokens),
        received_at=event.received_at,
        revision=event.revision,
    )


def report_of(event: VisitEvent) -> Report:
    """What a report of scheduling's says in the domain's terms."""
    if isinstance(event, OutreachPlanned):
        return OutreachPlannedOn(event.planned_on)
    if isinstance(event, ContactAttemptRecorded):
        return ContactAttempt(event.soort, event.bereikt, event.datum, event.dagdeel)
    return CaseResult(event.resultaat, event.datum)


@dataclass
class _Told:
    """A unit of work's events, each id once: ids are derived from what happened, so the same
    id twice is the same event (the outbox would drop it; not queuing it saves the work)."""

    uow: AbstractMatchingUnitOfWork
    ids: set[str] = field(default_factory=set)

    def __call__(self, *messages: case_events.Outgoing | None) -> None:
        fresh = [m for m in messages if m is not None and m.event_id not in self.ids]
        self.ids.update(m.event_id for m in fresh)
        self.uow.queue(fresh)

    def closure(self, cause: case_events.Cause, outcome: outcomes.CaseClosed, at: datetime) -> None:
        self(*case_events.case_closed(cause, outcome.case, at))

    def status(self, cause: case_events.Cause, outcome: outcomes.CreditorStatusChanged) -> None:
        self(
            case_events.creditor_feedback(
                cause, outcome.case.household_id, outcome.signal_ref, outcome.status
            )
        )


# --- intake -> matching --------------------------------------------------------------------


def _signal_key(item: tuple[Cause, SignalEvent]) -> SignalKey | None:
    event = item[1]
    if isinstance(event, SignalResolved):
        return None
    # SignalFacts.key of the event, without building the facts.
    return (event.signaaldatum or event.received_at.date(), event.signal_ref)


async def handle_signal_events(
    uow: AbstractMatchingUnitOfWork, events: Sequence[tuple[Cause, SignalEvent]]
) -> None:
    """Apply a batch of intake's signal events: new and revised signals by business date
    within each run between resolutions (:func:`canonical_order`), each through linking,
    placing, routing and triage; then the events of what happened.

    Raises :class:`PoisonMessage` for a signal whose address the region does not serve
    (intake only accepts served addresses: a region file out of step is an operator matter,
    visible in the DLQ with the reason)."""
    if not events:
        return
    tokens: set[Token] = set()
    for _, event in events:
        if not isinstance(event, SignalResolved):
            tokens.update(event.match_tokens.items())
    async with uow:
        state = await uow.matching.load(
            tokens=tokens, signal_refs={event.signal_ref for _, event in events}
        )
        matcher = state.matcher
        told = _Told(uow)
        for cause, event in canonical_order(events, _signal_key):
            happened: list[Outcome]
            if isinstance(event, SignalResolved):
                happened = matcher.take_resolution(event.signal_ref, event.datum_opgelost)
                opened_at = cause.time
            else:
                signal = facts_of(event)
                try:
                    happened = matcher.take_signal(signal)
                except RoutingError as exc:
                    raise PoisonMessage(str(exc)) from exc
                opened_at = signal.received_at
            for outcome in happened:
                if isinstance(outcome, outcomes.CaseChanged):
                    for old in outcome.previous_case_refs:
                        state.rename(old, outcome.case.case_id)
            _tell(told, cause, happened, opened_at=opened_at, at=cause.time)
        await uow.commit()


def _tell(
    told: _Told,
    cause: case_events.Cause,
    happened: Iterable[Outcome],
    *,
    at: datetime,
    opened_at: datetime | None = None,
) -> None:
    """The events of what happened (a log line for what tells nobody anything)."""
    for outcome in happened:
        if isinstance(outcome, outcomes.CaseOpened):
            told(case_events.case_opened(cause, outcome.case, opened_at or at))
        elif isinstance(outcome, outcomes.CaseChanged):
            told(
                case_events.case_updated(
                    cause,
                    outcome.case,
                    outcome.change,
                    at,
                    about=outcome.about,
                    # Downstream keys visits and mails on case_ref: tell it the old ones.
                    previous_case_refs=outcome.previous_case_refs,
                )
            )
        elif isinstance(outcome, outcomes.DecisionChanged):
            told(case_events.outreach_decided(cause, outcome.case, at))
        elif isinstance(outcome, outcomes.CaseClosed):
            told.closure(cause, outcome, at)
        elif isinstance(outcome, outcomes.CreditorStatusChanged):
            told.status(cause, outcome)
        elif isinstance(outcome, outcomes.StaleRevisionDropped):
            log.info("stale signal revision ignored", revision=outcome.revision)
        elif isinstance(outcome, outcomes.UnknownSignalResolution):
            log.warning("resolution of an unknown signal ignored")
        else:
            log.warning("report on a closed case ignored", reason=outcome.reason[:200])


# --- scheduling -> matching ----------------------------------------------------------------


async def handle_visit_events(
    uow: AbstractMatchingUnitOfWork, events: Sequence[tuple[Cause, VisitEvent]]
) -> None:
    """Keep the case record complete with what scheduling reports (on a case's current id,
    whatever id it had when scheduling learnt of it).

    Raises :class:`PoisonMessage` for a case matching never had, and for a report that
    contradicts an open case (e.g. an end result that needs a contact never made)."""
    if not events:
        return
    async with uow:
        state = await uow.matching.load(case_refs={event.case_ref for _, event in events})
        told = _Told(uow)
        for cause, event in events:
            case_id = state.case_ids[event.case_ref]
            try:
                happened = state.matcher.take_report(case_id, report_of(event))
            except UnknownCase as exc:
                raise PoisonMessage("unknown case") from exc
            except CaseError as exc:
                raise PoisonMessage(str(exc)) from exc
            _tell(told, cause, happened, at=cause.time)
        await uow.commit()


# --- the sweep -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    """The cause of a sweep's events (no message caused them): one id per day swept."""

    id: str
    correlation_id: str | None = None


async def sweep_not_picked_up(
    uow: AbstractMatchingUnitOfWork, today: date, *, at: datetime | None = None
) -> list[str]:
    """Close the open cases never picked up whose wait (``niet_opgepakt_sluiten_na_dagen``)
    is over on ``today``, with CaseClosed and creditor feedback; the ids of those closed.

    Exactly once: under the matching lock only cases still open are loaded, and closing
    them commits with their events; a crash rolls both back, a second run finds them
    closed (and the event ids are derived, so the outbox drops a repeat as well)."""
    async with uow:
        policy = uow.matching.policy
        candidates = await uow.matching.not_picked_up(
            opened_on_or_before=not_picked_up_cutoff(policy, today)
        )
        if not candidates:
            return []
        state = await uow.matching.load(case_refs=candidates)
        happened = state.matcher.take_not_picked_up(today)
        closed = [o.case.case_id for o in happened if isinstance(o, outcomes.CaseClosed)]
        if not closed:
            return []
        cause = SweepRun(f"sweep-not-picked-up:{today.isoformat()}")
        _tell(_Told(uow), cause, happened, at=at or datetime.now(UTC))
        await uow.commit()
    log.info("cases not picked up closed", cases=len(closed), on=today.isoformat())
    return closed
