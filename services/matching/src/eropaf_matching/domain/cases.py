"""Case lifecycle (one ``vroegsignaalzaak`` per household at a time), in DDAS terms.

States: ``open`` -> ``outreach_planned`` -> ``contacted`` -> ``closed`` (a case may close
from any state; ``closed`` is final: a later signal opens a new case). All functions are
pure: they take a :class:`Case` and return a new one, or raise :class:`IllegalTransition`.

Ids: a case id is derived from its earliest signal by (business date, signal_ref), so
replaying the same signals in any order yields the same case ids; when an earlier-dated
signal joins or two cases merge, :class:`Placement` reports the old id (``renamed_from`` /
``absorbed_case_ids``) so that a service can re-key what it stores.

Persistence: a case is one row (``case_id``, ``household_id``, state, dates, decision,
resultaat) plus child rows for its signals (facts, status, resolved date) and contact
attempts; the dataclasses map one to one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalstatus
from eropaf_contracts.events import CaseChange, CreditorStatus
from eropaf_contracts.region import Region
from eropaf_matching.domain.routing import Routing, route
from eropaf_matching.domain.signals import SignalFacts, computed_once
from eropaf_matching.domain.triage import (
    RegionPolicy,
    TriageDecision,
    TriageInput,
    triage,
)

__all__ = [
    "HELP_ACCEPTED",
    "Case",
    "CaseError",
    "CaseResult",
    "CaseState",
    "ContactAttempt",
    "Evaluation",
    "IllegalTransition",
    "OutreachPlannedOn",
    "Placement",
    "PlacementKind",
    "Report",
    "UnknownSignal",
    "apply_report",
    "case_change",
    "case_id_for",
    "close_case",
    "close_not_picked_up",
    "creditor_status",
    "evaluate",
    "herhaalde_meldingen",
    "not_picked_up_cutoff",
    "not_picked_up_due",
    "place_signal",
    "plan_outreach",
    "record_contact_attempt",
    "resolve_signal",
]

# End results that count as "help accepted" in the evaluation.
HELP_ACCEPTED: frozenset[Eindresultaat] = frozenset(
    {
        Eindresultaat.BUDGETADVIES_OF_QUICK_FIX,
        Eindresultaat.VERVOLGHULP_FINANCIEEL,
        Eindresultaat.VERVOLGHULP_NIET_FINANCIEEL,
    }
)
# End results that presuppose a conversation with the household.
_NEEDS_CONTACT: frozenset[Eindresultaat] = HELP_ACCEPTED | {
    Eindresultaat.GEEN_REACTIE_NA_EERDER_CONTACT,
    Eindresultaat.GEEN_HULP_NODIG,
}
# End results that say no contact was made.
_NO_CONTACT: frozenset[Eindresultaat] = frozenset(
    {Eindresultaat.DEFINITIEF_GEEN_CONTACT, Eindresultaat.VERWIJZING_ZONDER_CONTACT}
)
# A closed case's result that also is the status of its signals (same DDAS wording).
_RESULT_AS_STATUS: dict[Eindresultaat, Signaalstatus] = {
    Eindresultaat.NIET_OPGEPAKT_HERHAALDE_MELDING: Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING,
    Eindresultaat.NIET_OPGEPAKT_ONTERECHT_SIGNAAL: Signaalstatus.NIET_OPGEPAKT_ONTERECHT_SIGNAAL,
    Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN: Signaalstatus.NIET_OPGEPAKT_ANDERE_REDEN,
    Eindresultaat.INWONER_OVERLEDEN: Signaalstatus.INWONER_OVERLEDEN,
    Eindresultaat.GEEN_INWONER: Signaalstatus.GEEN_INWONER,
}


class CaseError(ValueError):
    """Base of case lifecycle errors."""


class IllegalTransition(CaseError):
    """The requested change is not allowed in the case's current state."""


class UnknownSignal(CaseError):
    """The signal is not part of the case."""


class CaseState(StrEnum):
    OPEN = "open"
    OUTREACH_PLANNED = "outreach_planned"
    CONTACTED = "contacted"
    CLOSED = "closed"


_PROGRESS = {CaseState.OPEN: 0, CaseState.OUTREACH_PLANNED: 1, CaseState.CONTACTED: 2}


@dataclass(frozen=True)
class ContactAttempt:
    """One DDAS ``contactpoging``, as reported by scheduling."""

    soort: Contactsoort
    bereikt: bool
    datum: date
    dagdeel: Dagdeel | None = None


@dataclass(frozen=True)
class Case:
    case_id: str
    household_id: str
    opened_on: date
    signals: Mapping[str, SignalFacts]  # all signals, open and resolved
    state: CaseState = CaseState.OPEN
    resolved_on: Mapping[str, date] = field(default_factory=dict)
    contactpogingen: tuple[ContactAttempt, ...] = ()
    herhaalde_meldingen: frozenset[str] = frozenset()  # refs not picked up: repeat
    decision: TriageDecision | None = None
    routing: Routing | None = None
    opgepakt_on: date | None = None  # DDAS datum_opgepakt: first decided to reach out
    outreach_planned_on: date | None = None
    resultaat: Eindresultaat | None = None
    closed_on: date | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not CaseState.CLOSED

    # A case never changes (a change makes a new one): asked several times per signal by
    # triage, routing and the events.
    @computed_once
    def open_signals(self) -> tuple[SignalFacts, ...]:
        return tuple(
            s
            for s in sorted(self.signals.values(), key=lambda s: s.key)
            if s.signal_ref not in self.resolved_on
        )

    @computed_once
    def creditors(self) -> tuple[str, ...]:
        """Partner codes of the creditors with an open signal in the case, sorted."""
        return tuple(sorted({s.partner_code for s in self.open_signals}))

    @computed_once
    def earliest_key(self) -> tuple[date, str]:
        return min(s.key for s in self.signals.values())

    @property
    def contact_made(self) -> bool:
        return any(a.bereikt for a in self.contactpogingen)

    @property
    def gemeentecode(self) -> str:
        if self.routing is not None:
            return self.routing.gemeentecode
        return max(self.signals.values(), key=lambda s: s.key).gemeentecode

    def signal_status(self, signal_ref: str) -> Signaalstatus | None:
        """DDAS status of one signal; None when it was picked up (the field is then left out)."""
        if signal_ref not in self.signals:
            raise UnknownSignal(f"signal {signal_ref!r} is not in case {self.case_id}")
        if signal_ref in self.herhaalde_meldingen:
            return Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING
        if self.resultaat in _RESULT_AS_STATUS:
            return _RESULT_AS_STATUS[self.resultaat]
        if self.opgepakt_on is None:
            return Signaalstatus.NOG_NIET_OPGEPAKT
        return None


_CASE_FIELDS: frozenset[str] = frozenset(f.name for f in fields(Case))


# Values computed from the signals (and which are resolved) alone.
_FROM_SIGNALS = ("open_signals", "creditors", "earliest_key")


def _evolve(case: Case, **changes: Any) -> Case:
    """``dataclasses.replace(case, **changes)`` without its inspection of the fields on every
    call (cases are rebuilt twice per signal). Case has no ``__post_init__``: a copy of its
    fields with the changes is what its ``__init__`` would make. Values computed from the
    signals go along when the signals stay the same."""
    if not changes.keys() <= _CASE_FIELDS:
        raise TypeError(f"not fields of Case: {sorted(changes.keys() - _CASE_FIELDS)}")
    new = object.__new__(Case)
    state = new.__dict__
    old = case.__dict__
    for name in _CASE_FIELDS:
        state[name] = old[name]
    if "signals" not in changes and "resolved_on" not in changes:
        for name in _FROM_SIGNALS:
            if name in old:
                state[name] = old[name]
    state.update(changes)
    return new


def case_id_for(signals: Iterable[SignalFacts]) -> str:
    earliest = min(s.key for s in signals)
    return _case_id(earliest[1])


@functools.lru_cache(maxsize=1 << 14)  # a case's id is derived again on every signal it gets
def _case_id(signal_ref: str) -> str:
    return hashlib.sha256(f"case\x1f{signal_ref}".encode()).hexdigest()[:32]


def _closed_guard(case: Case, action: str) -> None:
    if case.state is CaseState.CLOSED:
        raise IllegalTransition(f"case {case.case_id} is closed; cannot {action}")


class PlacementKind(StrEnum):
    OPENED = "opened"  # the household had no open case
    JOINED = "joined"  # added to the household's open case
    MERGED = "merged"  # the signal bridged households with open cases; they became one
    UPDATED = "updated"  # a new revision of a signal already in the case


@dataclass(frozen=True)
class Placement:
    case: Case
    kind: PlacementKind
    absorbed_case_ids: tuple[str, ...] = ()  # cases merged into ``case``: delete/re-key
    renamed_from: str | None = None  # the case's previous id if it changed

    @property
    def previous_case_ids(self) -> tuple[str, ...]:
        """The ids ``case`` was known by before this placement (renamed from, absorbed),
        sorted: what a service keying on case ids must re-key to ``case.case_id``."""
        old = {*self.absorbed_case_ids, *((self.renamed_from,) if self.renamed_from else ())}
        return tuple(sorted(old - {self.case.case_id}))


def place_signal(
    open_cases: Sequence[Case], household_id: str, signal: SignalFacts, today: date
) -> Placement:
    """Put a signal into its household's case.

    ``open_cases``: the open cases that hold any signal of the household (after linking).
    None: a case opens. One: the signal joins. Several (the signal linked households that
    each had a case): they merge into the one with the earliest signal.
    """
    for case in open_cases:
        _closed_guard(case, "place a signal in it")
    if not open_cases:
        case = Case(
            case_id=case_id_for([signal]),
            household_id=household_id,
            opened_on=today,
            signals={signal.signal_ref: signal},
        )
        return Placement(case, PlacementKind.OPENED)
    ordered = sorted(open_cases, key=lambda c: c.earliest_key)
    survivor = ordered[0]
    for other in ordered[1:]:
        survivor = _merge(survivor, other)
    revision = any(signal.signal_ref in c.signals for c in open_cases)
    signals = {**survivor.signals, signal.signal_ref: signal}
    new_id = case_id_for(signals.values())
    case = _evolve(survivor, case_id=new_id, household_id=household_id, signals=signals)
    if len(open_cases) > 1:
        kind = PlacementKind.MERGED
    else:
        kind = PlacementKind.UPDATED if revision else PlacementKind.JOINED
    return Placement(
        case,
        kind,
        absorbed_case_ids=tuple(sorted(c.case_id for c in ordered[1:])),
        renamed_from=ordered[0].case_id if ordered[0].case_id != new_id else None,
    )


def _merge(a: Case, b: Case) -> Case:
    # The merged case is as far along as the furthest of the two: nobody is asked to
    # plan again what was already planned or done.
    state = max(a.state, b.state, key=lambda s: _PROGRESS[s])
    return replace(
        a,
        opened_on=min(a.opened_on, b.opened_on),
        signals={**a.signals, **b.signals},
        state=state,
        resolved_on={**a.resolved_on, **b.resolved_on},
        contactpogingen=tuple(sorted((*a.contactpogingen, *b.contactpogingen), key=_attempt_key)),
        opgepakt_on=_min_date(a.opgepakt_on, b.opgepakt_on),
        outreach_planned_on=_min_date(a.outreach_planned_on, b.outreach_planned_on),
    )


def _attempt_key(a: ContactAttempt) -> tuple[date, int, str, bool]:
    dagdelen = list(Dagdeel)
    return (a.datum, dagdelen.index(a.dagdeel) if a.dagdeel else -1, a.soort.value, a.bereikt)


def _min_date(a: date | None, b: date | None) -> date | None:
    return min((d for d in (a, b) if d is not None), default=None)


def herhaalde_meldingen(
    signals: Iterable[SignalFacts], resolved_on: Mapping[str, date], window_days: int
) -> frozenset[str]:
    """Signals that repeat an earlier one: same partner, arrears not grown, within the window.

    Compared with the last signal of that partner that was *not* itself a repeat, so a
    monthly reminder of the same debt does not extend the window forever. A debt that was
    resolved and then signalled again is new. Pure function of the set: order independent.
    """
    last_new: dict[str, SignalFacts] = {}
    repeats: set[str] = set()
    for signal in sorted(signals, key=lambda s: s.key):
        earlier = last_new.get(signal.partner_code)
        if earlier is not None and _repeats(signal, earlier, resolved_on, window_days):
            repeats.add(signal.signal_ref)
        else:
            last_new[signal.partner_code] = signal
    return frozenset(repeats)


def _repeats(
    signal: SignalFacts, earlier: SignalFacts, resolved_on: Mapping[str, date], window: int
) -> bool:
    resolved = resolved_on.get(earlier.signal_ref)
    if resolved is not None and resolved <= signal.datum:
        return False
    if (signal.datum - earlier.datum).days > window:
        return False
    if signal.bedrag is None or earlier.bedrag is None:
        return signal.bedrag is None and earlier.bedrag is None
    return signal.bedrag <= earlier.bedrag


@dataclass(frozen=True)
class Evaluation:
    case: Case
    decision_changed: bool  # re-emit the outreach decision
    new_outreach: bool  # scheduling should plan (first time picked up)


def evaluate(
    case: Case,
    history: Sequence[Case],
    policy: RegionPolicy,
    region: Region,
    today: date,
) -> Evaluation:
    """Route, detect repeats and triage a case after a change (signal added or updated).

    ``history``: the household's other (closed) cases, for repeats across cases.
    A decision never loses urgency by re-evaluation: the deadline only moves earlier.
    """
    _closed_guard(case, "evaluate it")
    every_signal = [s for c in history for s in c.signals.values()] + list(case.signals.values())
    resolved = {k: v for c in (*history, case) for k, v in c.resolved_on.items()}
    open_signals = case.open_signals
    routing = route(region, open_signals or tuple(case.signals.values()))
    gemeente_policy = policy.for_gemeente(routing.gemeentecode)
    repeats = herhaalde_meldingen(every_signal, resolved, gemeente_policy.herhaalde_melding_dagen)
    facts = TriageInput(
        open_signals=open_signals,
        herhaalde_meldingen=repeats,
        herhaling=_herhaling(case, history, repeats),
    )
    decision = triage(gemeente_policy, facts, start=case.opened_on, holidays=policy.feestdagen)
    old = case.decision
    if old is not None and old.picked_up:
        if not decision.picked_up:
            decision = old  # once picked up, a case stays picked up
        elif old.deadline is not None and decision.deadline is not None:
            decision = replace(decision, deadline=min(old.deadline, decision.deadline))
    picked_now = decision.picked_up and case.opgepakt_on is None
    updated = _evolve(
        case,
        herhaalde_meldingen=repeats & case.signals.keys(),
        decision=decision,
        routing=routing,
        opgepakt_on=today if picked_now else case.opgepakt_on,
    )
    return Evaluation(updated, decision_changed=decision != old, new_outreach=picked_now)


def _herhaling(case: Case, history: Sequence[Case], repeats: frozenset[str]) -> bool:
    # The household was helped before, or a creditor signals again with grown arrears /
    # after the window: the soft approach did not work, so we go to the door.
    if any(c.opgepakt_on is not None for c in history):
        return True
    earlier = [s for c in history for s in c.signals.values()] + list(case.signals.values())
    return any(
        other.partner_code == s.partner_code and other.key < s.key
        for s in case.open_signals
        if s.signal_ref not in repeats
        for other in earlier
    )


def plan_outreach(case: Case, on: date) -> Case:
    """Scheduling planned the first contact (e.g. a home visit)."""
    _closed_guard(case, "plan outreach")
    if case.state is CaseState.CONTACTED:
        raise IllegalTransition(f"case {case.case_id} already has contact; nothing to plan")
    if case.decision is None or not case.decision.picked_up:
        raise IllegalTransition(f"case {case.case_id} was not picked up; no outreach to plan")
    return replace(
        case,
        state=CaseState.OUTREACH_PLANNED,
        outreach_planned_on=case.outreach_planned_on or on,
    )


def record_contact_attempt(case: Case, attempt: ContactAttempt) -> Case:
    """Register a contact attempt; reaching the household moves the case to ``contacted``."""
    _closed_guard(case, "record a contact attempt")
    if attempt.datum < case.opened_on:
        raise IllegalTransition(
            f"contact attempt on {attempt.datum} predates case {case.case_id} "
            f"(opened {case.opened_on})"
        )
    attempts = tuple(sorted((*case.contactpogingen, attempt), key=_attempt_key))
    state = CaseState.CONTACTED if attempt.bereikt else case.state
    return replace(case, contactpogingen=attempts, state=state)


def close_case(case: Case, resultaat: Eindresultaat, on: date) -> Case:
    """Close with a DDAS end result; results that need (or deny) contact are checked."""
    _closed_guard(case, f"close it again with {resultaat.value!r}")
    if resultaat in _NEEDS_CONTACT and not case.contact_made:
        raise IllegalTransition(
            f"{resultaat.value!r} needs a contact attempt that reached the household"
        )
    if resultaat in _NO_CONTACT and case.contact_made:
        raise IllegalTransition(f"{resultaat.value!r} contradicts the contact that was made")
    if on < case.opened_on:
        raise IllegalTransition(f"cannot close on {on}, before the case opened ({case.opened_on})")
    return replace(case, state=CaseState.CLOSED, resultaat=resultaat, closed_on=on)


def resolve_signal(case: Case, signal_ref: str, on: date) -> Case:
    """The creditor reports the arrears paid or under arrangement.

    When every signal is resolved before contact was made, the case closes: the household
    sorted it out itself (or, for a case never picked up, with its not-picked-up reason).
    """
    if signal_ref not in case.signals:
        raise UnknownSignal(f"signal {signal_ref!r} is not in case {case.case_id}")
    resolved = {**case.resolved_on, signal_ref: on}
    updated = replace(case, resolved_on=resolved)
    if not updated.is_open or updated.open_signals or updated.contact_made:
        return updated
    if updated.opgepakt_on is None:
        return close_not_picked_up(updated, on)
    return replace(
        updated,
        state=CaseState.CLOSED,
        resultaat=Eindresultaat.ZELF_BETAALD_OF_REGELING,
        closed_on=max(on, case.opened_on),
    )


def close_not_picked_up(case: Case, on: date) -> Case:
    """Close a case that triage did not pick up (below minimum, only repeats).

    Such cases stay open first so that a further signal can still tip the balance; a daily
    sweep closes them (:func:`not_picked_up_due`) with the reason as result.
    """
    _closed_guard(case, "close it as not picked up")
    if case.opgepakt_on is not None:
        raise IllegalTransition(f"case {case.case_id} was picked up on {case.opgepakt_on}")
    all_repeats = bool(case.signals) and case.signals.keys() <= case.herhaalde_meldingen
    resultaat = (
        Eindresultaat.NIET_OPGEPAKT_HERHAALDE_MELDING
        if all_repeats
        else Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN
    )
    return replace(
        case, state=CaseState.CLOSED, resultaat=resultaat, closed_on=max(on, case.opened_on)
    )


def not_picked_up_due(cases: Iterable[Case], policy: RegionPolicy, today: date) -> list[Case]:
    """The cases the daily sweep closes with :func:`close_not_picked_up` on ``today``: open,
    never picked up, and opened at least their municipality's ``niet_opgepakt_sluiten_na_dagen``
    ago. In case id order."""
    due = []
    for case in cases:
        if not case.is_open or case.opgepakt_on is not None:
            continue
        # A municipality the policy no longer serves: the region's defaults rather than no
        # sweep at all.
        wait = policy.gemeenten.get(case.gemeentecode, policy.defaults)
        if (today - case.opened_on).days >= wait.niet_opgepakt_sluiten_na_dagen:
            due.append(case)
    return sorted(due, key=lambda c: c.case_id)


def not_picked_up_cutoff(policy: RegionPolicy, today: date) -> date:
    """No case opened after this date is due on ``today`` in any municipality (a bound for
    loading the candidates)."""
    days = min(
        p.niet_opgepakt_sluiten_na_dagen for p in (policy.defaults, *policy.gemeenten.values())
    )
    return today - timedelta(days=days)


def creditor_status(case: Case, signal_ref: str) -> CreditorStatus | None:
    """What the creditor of a signal may hear: picked up, definitively not, or nothing yet."""
    if signal_ref in case.herhaalde_meldingen:
        return CreditorStatus.NOT_PICKED_UP
    if case.opgepakt_on is not None:
        return CreditorStatus.PICKED_UP
    if not case.is_open:  # closed without ever being picked up
        return CreditorStatus.NOT_PICKED_UP
    return None  # still "nog niet opgepakt": a further signal may tip the balance


def case_change(kind: PlacementKind, placed: Case, evaluated: Case) -> CaseChange:
    """How a placement changed an existing case (not for an opened one).

    A merge first: whoever holds the absorbed cases must fold them into this one (the event
    carries the current routing, so a new team is visible either way); then a new
    municipality or team (e.g. the household moved); a rename alone is no change of its own
    (it shows in the previous case refs).
    """
    if kind is PlacementKind.MERGED:
        return CaseChange.MERGED
    if _rerouted(placed, evaluated):
        return CaseChange.REROUTED
    if kind is PlacementKind.UPDATED:
        return CaseChange.SIGNAL_UPDATED
    return CaseChange.SIGNAL_ADDED


def _rerouted(before: Case, after: Case) -> bool:
    old, new = before.routing, after.routing
    if old is None or new is None:
        return False
    return (old.gemeentecode, old.team) != (new.gemeentecode, new.team)


# --- what scheduling reports --------------------------------------------------------------


@dataclass(frozen=True)
class OutreachPlannedOn:
    """Scheduling planned the first contact (or a follow-up) on this date."""

    on: date


@dataclass(frozen=True)
class CaseResult:
    """The outreach ended with a DDAS end result."""

    resultaat: Eindresultaat
    on: date


Report = OutreachPlannedOn | ContactAttempt | CaseResult


def apply_report(case: Case, report: Report) -> Case:
    """A report of scheduling's on a case. A follow-up plan of a case already in contact and
    the same attempt reported twice change nothing (the DDAS record needs the attempts)."""
    if isinstance(report, OutreachPlannedOn):
        if case.state is CaseState.CONTACTED:
            return case
        return plan_outreach(case, report.on)
    if isinstance(report, ContactAttempt):
        if report in case.contactpogingen:
            return case
        return record_contact_attempt(case, report)
    return close_case(case, report.resultaat, report.on)
