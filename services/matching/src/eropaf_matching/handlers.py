"""Matching's subscribers: parse, call the domain, persist, emit (in one transaction).

``SignalEventsHandler`` (``INTAKE_SIGNALS_TOPIC``): a batch is parsed first (an unparseable
message is poison), then the clusters and cases it touches are loaded in a few queries, the
signals are applied in order (accepted, updated, resolved) through the domain -- link, place,
route and triage -- and the changed rows and the events go out in the batch's transaction.

``VisitEventsHandler`` (``VISITS_TOPIC``): planned outreach, contact attempts and outcomes
from scheduling (payloads in :mod:`eropaf_matching.scheduling_events`).

``NotPickedUpSweep`` (periodic, and ``eropaf matching sweep``): closes the cases triage
never picked up once the policy's wait is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseChange,
    CreditorStatus,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.region import Region
from eropaf_matching import case_events
from eropaf_matching.adapters import repository
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.domain.cases import (
    Case,
    CaseError,
    CaseState,
    ContactAttempt,
    PlacementKind,
    close_case,
    close_not_picked_up,
    not_picked_up_cutoff,
    not_picked_up_due,
    plan_outreach,
    record_contact_attempt,
)
from eropaf_matching.domain.linking import Token
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.routing import RoutingError
from eropaf_matching.domain.signals import SignalFacts
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_matching.scheduling_events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
)
from eropaf_platform import outbox
from eropaf_platform.consumer import Incoming, PoisonMessage, describe_error
from eropaf_platform.db import transaction
from eropaf_platform.logging import get_logger

__all__ = ["NotPickedUpSweep", "SignalEventsHandler", "VisitEventsHandler", "facts_of"]

log = get_logger(__name__)

SignalEvent = SignalAccepted | SignalUpdated | SignalResolved
_SIGNAL_EVENTS: dict[str, type[SignalEvent]] = {
    m.EVENT_TYPE: m for m in (SignalAccepted, SignalUpdated, SignalResolved)
}


def facts_of(event: SignalAccepted | SignalUpdated) -> SignalFacts:
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


def _parse(
    message: Incoming, models: dict[str, type[BaseModel]]
) -> tuple[Envelope, BaseModel] | None:
    envelope = message.envelope()  # PoisonMessage when it is no envelope at all
    model = models.get(envelope.type)
    if model is None:
        # Other event types may share the topic later: not ours to judge.
        log.info("event type ignored", type=envelope.type, topic=message.topic)
        return None
    try:
        return envelope, envelope.payload(model)
    except ValidationError as exc:
        raise PoisonMessage(describe_error(exc)) from exc


@dataclass
class _Batch:
    """One batch's working state: the loaded slice and the events it produces."""

    state: repository.MatchingState
    events: list[case_events.Outgoing]
    emitted: set[str] = field(default_factory=set)

    @property
    def matcher(self) -> Matcher:
        return self.state.matcher

    def emit(self, item: case_events.Outgoing | None) -> None:
        # Ids are derived from what happened: the same id twice in a batch is the same event
        # (the outbox would drop it; not queuing it saves the work).
        if item is not None and item.event_id not in self.emitted:
            self.emitted.add(item.event_id)
            self.events.append(item)


class SignalEventsHandler:
    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        # Matching runs once: this process holds the linking state and the cases, checked
        # against the tables on every batch (adapters.link_cache, adapters.case_cache). The
        # case copy is shared with the process's other writers of cases.
        self.links = LinkCache()
        self.cases = cases if cases is not None else CaseCache()

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        models: dict[str, type[BaseModel]] = dict(_SIGNAL_EVENTS)
        parsed = [p for p in (_parse(m, models) for m in messages) if p]
        if not parsed:
            return
        await repository.lock_matching(session)
        tokens: set[Token] = set()
        for _, event in parsed:
            if isinstance(event, SignalAccepted | SignalUpdated):
                tokens |= set(event.match_tokens.items())
        state = await repository.load_state(
            session,
            self.policy,
            self.region,
            tokens=tokens,
            signal_refs={event.signal_ref for _, event in parsed},  # type: ignore[attr-defined]
            link_cache=self.links,
            case_cache=self.cases,
        )
        batch = _Batch(state, [])
        for envelope, event in _canonical_order(parsed):
            if isinstance(event, SignalResolved):
                self._resolve(batch, envelope, event)
            else:
                assert isinstance(event, SignalAccepted | SignalUpdated)
                self._accept(batch, envelope, facts_of(event))
        await state.save(session)
        await _queue(session, batch.events)

    def _accept(self, batch: _Batch, cause: Envelope, signal: SignalFacts) -> None:
        links = batch.matcher.links
        known = links.signals.get(signal.signal_ref)
        if (
            known is not None
            and _stored_revision(batch.matcher, signal.signal_ref) >= signal.revision
        ):
            log.info("stale signal revision ignored", revision=signal.revision)
            return
        scope = batch.matcher.links.scope(signal.signal_ref, signal.match_tokens.items())
        before = _creditor_statuses(batch.matcher, scope)
        try:
            outcome = batch.matcher.accept(signal, today=signal.received_at.date(), scope=scope)
        except RoutingError as exc:
            # Intake only accepts served addresses; a region file out of step is an operator
            # matter, visible in the DLQ with the reason.
            raise PoisonMessage(str(exc)) from exc
        placement, evaluation = outcome.placement, outcome.evaluation
        if placement is None or evaluation is None:
            return  # a late correction of a closed case: facts kept, nothing to tell
        case = evaluation.case
        for old in (*placement.absorbed_case_ids, placement.renamed_from):
            if old is not None and old != case.case_id:
                batch.state.rename(old, case.case_id)
        if placement.kind is PlacementKind.OPENED:
            batch.emit(case_events.case_opened(cause, case, signal.received_at))
        else:
            batch.emit(
                case_events.case_updated(
                    cause,
                    case,
                    _change(placement.kind, placement.case, case),
                    cause.time,
                    about=f"{signal.signal_ref}:r{signal.revision}",
                    # Downstream keys visits and mails on case_ref: tell it the old ones.
                    previous_case_refs=placement.previous_case_ids,
                )
            )
        if evaluation.decision_changed:
            batch.emit(case_events.outreach_decided(cause, case, cause.time))
        # Feedback for the signals whose status this signal changed; an unchanged status was
        # told when it came about (its event is in the outbox already).
        changed = [
            ref
            for ref in case.signals
            if case_events.creditor_status(case, ref) not in (None, before.get(ref))
        ]
        for item in case_events.creditor_feedback(cause, case, changed):
            batch.emit(item)

    def _resolve(self, batch: _Batch, cause: Envelope, event: SignalResolved) -> None:
        try:
            before = batch.matcher.case_of(event.signal_ref)
        except CaseError:
            log.warning("resolution of an unknown signal ignored")
            return
        if event.signal_ref in before.resolved_on:
            return
        case = batch.matcher.resolve(event.signal_ref, event.datum_opgelost)
        if before.is_open and not case.is_open:
            for item in case_events.case_closed(cause, case, cause.time):
                batch.emit(item)
            for item in case_events.creditor_feedback(cause, case, case.signals):
                batch.emit(item)
        elif case.is_open:
            batch.emit(
                case_events.case_updated(
                    cause, case, CaseChange.SIGNAL_RESOLVED, cause.time, about=event.signal_ref
                )
            )


async def _queue(session: AsyncSession, events: Sequence[case_events.Outgoing]) -> None:
    # One statement per chunk, not per event: a full batch queues thousands of events.
    for start in range(0, len(events), 1000):
        await outbox.add(session, events[start : start + 1000])


def _canonical_order(
    parsed: Sequence[tuple[Envelope, BaseModel]],
) -> list[tuple[Envelope, BaseModel]]:
    """Within each run of new/updated signals (between resolutions), apply the signals by
    business date rather than by arrival.

    Signals of one household are keyed by their own refs, so they arrive over different
    partitions in no particular order; applying the earliest first means a case is opened
    with the id it keeps (ids derive from the earliest signal) instead of being renamed
    within the same batch. Each signal's own events keep their order, and resolutions stay
    where they were.
    """
    out: list[tuple[Envelope, BaseModel]] = []
    run: dict[str, list[tuple[Envelope, BaseModel]]] = {}

    def flush() -> None:
        def first_key(items: list[tuple[Envelope, BaseModel]]) -> tuple[date, str]:
            event = items[0][1]
            assert isinstance(event, SignalAccepted | SignalUpdated)
            # SignalFacts.key of the event, without building the facts.
            return (event.signaaldatum or event.received_at.date(), event.signal_ref)

        for items in sorted(run.values(), key=first_key):
            out.extend(items)
        run.clear()

    for envelope, event in parsed:
        if isinstance(event, SignalResolved):
            flush()
            out.append((envelope, event))
        else:
            run.setdefault(event.signal_ref, []).append((envelope, event))  # type: ignore[attr-defined]
    flush()
    return out


def _change(kind: PlacementKind, placed: Case, evaluated: Case) -> CaseChange:
    # A merge first: whoever holds the absorbed cases must fold them into this one (the
    # event carries the current routing, so a new team is visible either way).
    if kind is PlacementKind.MERGED:
        return CaseChange.MERGED
    if _rerouted(placed, evaluated):
        return CaseChange.REROUTED  # e.g. the household moved
    if kind is PlacementKind.UPDATED:
        return CaseChange.SIGNAL_UPDATED
    return CaseChange.SIGNAL_ADDED  # a rename alone shows in previous_case_refs


def _rerouted(before: Case, after: Case) -> bool:
    old, new = before.routing, after.routing
    if old is None or new is None:
        return False
    return (old.gemeentecode, old.team) != (new.gemeentecode, new.team)


def _creditor_statuses(matcher: Matcher, scope: set[str]) -> dict[str, CreditorStatus | None]:
    """The creditor status of every signal in a case that accepting a signal may change: the
    cases holding a signal of its scope (:meth:`LinkIndex.scope`: the cluster of its new and,
    for a revision, its old tokens -- a household never reaches beyond its cluster)."""
    return {
        ref: case_events.creditor_status(case, ref)
        for case in matcher.cases.holding(scope)
        for ref in case.signals
    }


def _stored_revision(matcher: Matcher, signal_ref: str) -> int:
    case = matcher.cases.of_signal(signal_ref)
    return case.signals[signal_ref].revision if case is not None else 0


# --- scheduling -> matching -------------------------------------------------------------

VisitEvent = OutreachPlanned | ContactAttemptRecorded | CaseOutcomeRecorded
_VISIT_EVENTS: dict[str, type[BaseModel]] = {
    m.EVENT_TYPE: m for m in (OutreachPlanned, ContactAttemptRecorded, CaseOutcomeRecorded)
}


class VisitEventsHandler:
    """Keeps the case record complete with what scheduling reports."""

    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        self.cases = cases  # the process's copy of the cases, if it keeps one

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        parsed = [p for p in (_parse(m, _VISIT_EVENTS) for m in messages) if p]
        if not parsed:
            return
        await repository.lock_matching(session)
        refs = {event.case_ref for _, event in parsed}  # type: ignore[attr-defined]
        current = await repository.resolve_case_ids(session, refs)
        wanted = sorted(set(current.values()))
        if self.cases is not None:
            held = await self.cases.index(session)
            loaded = {cid: held[cid] for cid in wanted if cid in held}
        else:
            loaded = {c.case_id: c for c in await repository.load_cases(session, case_ids=wanted)}
        state = repository.MatchingState(
            Matcher(self.policy, self.region), loaded_cases=loaded, case_cache=self.cases
        )
        cases = state.matcher.cases
        cases.update(loaded)
        events: list[case_events.Outgoing] = []
        for envelope, event in parsed:
            case_id = current[event.case_ref]  # type: ignore[attr-defined]
            case = cases.get(case_id)
            if case is None:
                raise PoisonMessage("unknown case")
            try:
                updated = _apply_visit_event(case, event)  # type: ignore[arg-type]
            except CaseError as exc:
                if not case.is_open:
                    log.warning("report on a closed case ignored", reason=str(exc)[:200])
                    continue
                raise PoisonMessage(str(exc)) from exc
            cases[case_id] = updated
            if case.is_open and not updated.is_open:
                events += case_events.case_closed(envelope, updated, envelope.time)
        await state.save(session)
        await _queue(session, events)


def _apply_visit_event(case: Case, event: VisitEvent) -> Case:
    if isinstance(event, OutreachPlanned):
        if case.state is CaseState.CONTACTED:
            return case  # a follow-up visit: the DDAS record only needs the attempts
        return plan_outreach(case, event.planned_on)
    if isinstance(event, ContactAttemptRecorded):
        attempt = ContactAttempt(event.soort, event.bereikt, event.datum, event.dagdeel)
        if attempt in case.contactpogingen:
            return case  # the same report twice (e.g. re-sent by scheduling)
        return record_contact_attempt(case, attempt)
    return close_case(case, event.resultaat, event.datum)


# --- the daily sweep --------------------------------------------------------------------


@dataclass(frozen=True)
class _SweepRun:
    """The cause of a sweep's events (no message caused them): one id per day swept."""

    id: str
    correlation_id: str | None = None


class NotPickedUpSweep:
    """Closes the open cases never picked up whose wait (``niet_opgepakt_sluiten_na_dagen``)
    is over, with CaseClosed and creditor feedback, all in one transaction.

    Exactly once: under the matching lock only cases still open are loaded, and closing
    them commits with their events; a crash rolls both back, a second run finds them
    closed (and the event ids are derived, so the outbox drops a repeat as well).
    """

    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        self.cases = cases  # the process's copy of the cases, if it keeps one

    async def run(self, sessions: async_sessionmaker[AsyncSession], today: date) -> list[str]:
        """Sweep as of ``today``; the ids of the cases it closed."""
        async with transaction(sessions) as session:
            return await self(session, today)

    async def __call__(self, session: AsyncSession, today: date) -> list[str]:
        await repository.lock_matching(session)  # no signal batch changes these meanwhile
        if self.cases is not None:
            await self.cases.index(session)  # takes in what is pending before we stage
        candidates = await repository.load_not_picked_up(
            session, opened_on_or_before=not_picked_up_cutoff(self.policy, today)
        )
        due = not_picked_up_due(candidates, self.policy, today)
        if not due:
            return []
        state = repository.MatchingState(
            Matcher(self.policy, self.region),
            loaded_cases={c.case_id: c for c in due},
            case_cache=self.cases,
        )
        cause = _SweepRun(f"sweep-not-picked-up:{today.isoformat()}")
        at = datetime.now(UTC)
        events: list[case_events.Outgoing] = []
        for case in due:
            closed = close_not_picked_up(case, today)
            state.matcher.cases[closed.case_id] = closed
            events += case_events.case_closed(cause, closed, at)
            # As on a signal: feedback only where the status changed (a repeat was told
            # "not picked up" when it came).
            changed = [
                ref
                for ref in closed.signals
                if case_events.creditor_status(closed, ref)
                != case_events.creditor_status(case, ref)
            ]
            events += case_events.creditor_feedback(cause, closed, changed)
        await state.save(session)
        await _queue(session, events)
        log.info("cases not picked up closed", cases=len(due), on=today.isoformat())
        return [c.case_id for c in due]
