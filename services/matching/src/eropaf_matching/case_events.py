"""Matching's outgoing events, built from domain outcomes.

Event ids are derived from what happened (``case-opened:<case_ref>`` ...), never random: a
batch that is re-run after a crash, or a redelivered signal that slipped past the inbox,
queues the same ids, and the outbox ignores an id it has seen. Every event is keyed by the
household pseudonym so that one household's events stay in order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseChange,
    CaseClosed,
    CaseOpened,
    CaseUpdated,
    CreditorFeedbackRequested,
    CreditorStatus,
    OutreachDecided,
)
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.signals import SignalFacts

__all__ = [
    "Outgoing",
    "case_closed",
    "case_opened",
    "case_updated",
    "creditor_feedback",
    "outreach_decided",
]

Outgoing = tuple[str, Envelope]  # (topic, envelope)


def _latest_open(case: Case) -> SignalFacts:
    signals = case.open_signals or tuple(sorted(case.signals.values(), key=lambda s: s.key))
    return signals[-1]


def _routing(case: Case) -> tuple[str, str]:
    if case.routing is None:  # evaluate() always routes before anything is emitted
        raise ValueError(f"case {case.case_id} has not been routed")
    return case.routing.gemeentecode, case.routing.team


def _facts(case: Case) -> dict[str, object]:
    gemeentecode, team = _routing(case)
    open_signals = case.open_signals
    amounts = [s.bedrag for s in open_signals]
    total = (
        None
        if not amounts or any(a is None for a in amounts)
        else sum(a for a in amounts if a is not None)
    )
    return {
        "case_ref": case.case_id,
        "household_ref": case.household_id,
        "gemeentecode": gemeentecode,
        "team": team,
        "postcode_area": _latest_open(case).postcode_area,
        "signal_refs": sorted(case.signals),
        "partner_types": sorted({s.partner_type for s in case.signals.values()}),
        "total_bedrag": total,
        "crisis": any(s.crisissignaal for s in open_signals),
    }


def case_opened(cause: Envelope, case: Case, at: datetime) -> Outgoing:
    payload = CaseOpened(**_facts(case), opened_at=at)  # type: ignore[arg-type]
    return CASES_TOPIC, cause.follow(
        payload, key=case.household_id, id=f"case-opened:{case.case_id}"
    )


def case_updated(
    cause: Envelope, case: Case, change: CaseChange, at: datetime, *, about: str
) -> Outgoing:
    payload = CaseUpdated(**_facts(case), change=change, updated_at=at)  # type: ignore[arg-type]
    return CASES_TOPIC, cause.follow(
        payload, key=case.household_id, id=f"case-updated:{case.case_id}:{change.value}:{about}"
    )


def outreach_decided(cause: Envelope, case: Case, at: datetime) -> Outgoing | None:
    decision = case.decision
    if (
        decision is None
        or not decision.picked_up
        or decision.outreach is None
        or decision.urgency is None
        or decision.deadline is None
    ):
        return None
    gemeentecode, team = _routing(case)
    payload = OutreachDecided(
        case_ref=case.case_id,
        household_ref=case.household_id,
        gemeentecode=gemeentecode,
        team=team,
        postcode_area=_latest_open(case).postcode_area,
        outreach=decision.outreach,
        urgency=decision.urgency,
        deadline=decision.deadline,
        priority=decision.priority,
        rule_ids=list(decision.rule_ids),
        decided_at=at,
    )
    # Same decision for the same case: same id, so an unchanged re-run emits nothing new.
    digest = hashlib.sha256(
        json.dumps(
            [
                decision.outreach,
                decision.urgency,
                str(decision.deadline),
                decision.priority,
                list(decision.rule_ids),
            ]
        ).encode()
    ).hexdigest()[:16]
    return CASES_TOPIC, cause.follow(
        payload, key=case.household_id, id=f"outreach-decided:{case.case_id}:{digest}"
    )


def case_closed(cause: Envelope, case: Case, at: datetime) -> Outgoing:
    if case.resultaat is None:
        raise ValueError(f"case {case.case_id} is not closed")
    gemeentecode, team = _routing(case)
    payload = CaseClosed(
        case_ref=case.case_id,
        household_ref=case.household_id,
        gemeentecode=gemeentecode,
        team=team,
        signal_refs=sorted(case.signals),
        resultaat=case.resultaat,
        closed_at=at,
    )
    return CASES_TOPIC, cause.follow(
        payload, key=case.household_id, id=f"case-closed:{case.case_id}"
    )


def creditor_status(case: Case, signal_ref: str) -> CreditorStatus | None:
    """What the creditor of a signal may hear: picked up, definitively not, or nothing yet."""
    if signal_ref in case.herhaalde_meldingen:
        return CreditorStatus.NOT_PICKED_UP
    if case.opgepakt_on is not None:
        return CreditorStatus.PICKED_UP
    if not case.is_open:  # closed without ever being picked up
        return CreditorStatus.NOT_PICKED_UP
    return None  # still "nog niet opgepakt": a further signal may tip the balance


def creditor_feedback(cause: Envelope, case: Case, refs: Iterable[str]) -> list[Outgoing]:
    """One request per signal and status, ever (the id says so)."""
    out: list[Outgoing] = []
    for ref in sorted(refs):
        status = creditor_status(case, ref)
        if status is None:
            continue
        payload = CreditorFeedbackRequested(signal_ref=ref, status=status)
        out.append(
            (
                CREDITOR_FEEDBACK_TOPIC,
                cause.follow(
                    payload, key=case.household_id, id=f"creditor-feedback:{ref}:{status.value}"
                ),
            )
        )
    return out
