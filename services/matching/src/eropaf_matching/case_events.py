"""Matching's outgoing events, built from what the domain says happened.

Event ids are derived from what happened (``case-opened:<case_ref>`` ...), never random: a
batch that is re-run after a crash, or a redelivered signal that slipped past the inbox,
queues the same ids, and the outbox ignores an id it has seen. Every event is keyed by the
household pseudonym so that one household's events stay in order.

A closure is told twice (:func:`case_closed`): on the cases topic for scheduling and
notification, and on the matching -> intake topic for intake (the retention of personal data
runs from it), so that intake does not read the whole cases topic for the few closures in it.

One encoder writes every envelope (:func:`encode`, orjson): the payload as plain values in
the contract model's field order, the envelope in ``Envelope``'s, so the bytes are what
``Envelope.follow(payload)`` and ``outbox.envelope_message`` give for the contract model
(``tests/handlers/test_case_events.py`` holds them to that) without building two pydantic
models per event (measured: a quarter of a batch's CPU). Measured against the f-string
templates it replaced: 10,000 events of 2,000 cases in 84 ms of CPU instead of 107 ms. The
values come from validated signals, the region and the policy.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson

from eropaf_contracts.cloudevents import event_headers
from eropaf_contracts.events import (
    CaseChange,
    CaseClosed,
    CaseOpened,
    CaseUpdated,
    CreditorFeedbackRequested,
    CreditorStatus,
    OutreachDecided,
    OutreachKind,
    Urgency,
)
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.signals import SignalFacts
from eropaf_platform.outbox import OutgoingMessage

__all__ = [
    "Cause",
    "Outgoing",
    "case_closed",
    "case_opened",
    "case_updated",
    "creditor_feedback",
    "encode",
    "outreach_decided",
    "timestamp",
]

Outgoing = OutgoingMessage

# Timestamps as pydantic writes them: ISO 8601, "Z" for UTC.
_OPTIONS = orjson.OPT_UTC_Z


def encode(value: Any) -> bytes:
    """The JSON of an envelope or payload, as pydantic's ``model_dump_json`` writes the
    contract models (compact; strings escaped alike; enums by value; dates ISO; UTC ``Z``)."""
    return orjson.dumps(value, option=_OPTIONS)


def timestamp(value: datetime) -> str:
    """A timestamp as :func:`encode` (and pydantic) writes it."""
    return orjson.dumps(value, option=_OPTIONS)[1:-1].decode()


class Cause(Protocol):
    """What an event needs of the message that caused it (an ``Envelope`` has these)."""

    @property
    def id(self) -> str: ...

    @property
    def correlation_id(self) -> str | None: ...


def _message(
    topic: str,
    cause: Cause,
    event_type: str,
    version: int,
    *,
    key: str,
    id: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> Outgoing:
    """The envelope's fields in ``Envelope``'s order, filled as ``Envelope.follow`` fills
    them; its headers by ``event_headers``, as ``Envelope.text_headers``. ``now``: the
    envelope's time (default: this instant)."""
    correlation_id = cause.correlation_id or cause.id
    value = encode(
        {
            "id": id,
            "type": event_type,
            "version": version,
            "time": now if now is not None else datetime.now(UTC),
            "key": key,
            "correlation_id": correlation_id,
            "causation_id": cause.id,
            "data": data,
        }
    )
    return OutgoingMessage(
        topic=topic,
        key=key,
        value=value,
        headers=event_headers(
            id=id, type=event_type, version=version, correlation_id=correlation_id
        ),
        event_id=id,
    )


def _latest_open(case: Case, open_signals: Sequence[SignalFacts]) -> SignalFacts:
    if open_signals:
        return open_signals[-1]
    return max(case.signals.values(), key=lambda s: s.key)


def _routing(case: Case) -> tuple[str, str]:
    if case.routing is None:  # evaluate() always routes before anything is emitted
        raise ValueError(f"case {case.case_id} has not been routed")
    return case.routing.gemeentecode, case.routing.team


def _facts(case: Case) -> dict[str, Any]:
    """The fields every case event shares (``_CaseFacts``), in its order."""
    gemeentecode, team = _routing(case)
    open_signals = case.open_signals
    amounts = [s.bedrag for s in open_signals]
    total = None if not amounts or None in amounts else sum(a for a in amounts if a is not None)
    return {
        "case_ref": case.case_id,
        "household_ref": case.household_id,
        "gemeentecode": gemeentecode,
        "team": team,
        "postcode_area": _latest_open(case, open_signals).postcode_area,
        "signal_refs": sorted(case.signals),
        "partner_types": sorted({s.partner_type for s in case.signals.values()}),
        "total_bedrag": total,
        "crisis": any(s.crisissignaal for s in open_signals),
    }


def case_opened(cause: Cause, case: Case, at: datetime) -> Outgoing:
    data = _facts(case)
    data["opened_at"] = at
    return _message(
        CASES_TOPIC,
        cause,
        CaseOpened.EVENT_TYPE,
        CaseOpened.VERSION,
        key=case.household_id,
        id=f"case-opened:{case.case_id}",
        data=data,
    )


def case_updated(
    cause: Cause,
    case: Case,
    change: CaseChange,
    at: datetime,
    *,
    about: str,
    previous_case_refs: Sequence[str] = (),
) -> Outgoing:
    """``previous_case_refs``: the ids the case had before this change (renamed, absorbed)."""
    data = _facts(case)
    data["change"] = change
    data["updated_at"] = at
    data["previous_case_refs"] = list(previous_case_refs)
    return _message(
        CASES_TOPIC,
        cause,
        CaseUpdated.EVENT_TYPE,
        CaseUpdated.VERSION,
        key=case.household_id,
        id=f"case-updated:{case.case_id}:{change.value}:{about}",
        data=data,
    )


def outreach_decided(cause: Cause, case: Case, at: datetime) -> Outgoing | None:
    """The decision to reach out, if the case was picked up (None otherwise)."""
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
    partner_codes = case.creditors
    data = {
        "case_ref": case.case_id,
        "household_ref": case.household_id,
        "gemeentecode": gemeentecode,
        "team": team,
        "postcode_area": _latest_open(case, case.open_signals).postcode_area,
        "outreach": decision.outreach,
        "urgency": decision.urgency,
        "deadline": decision.deadline,
        "priority": decision.priority,
        "rule_ids": list(decision.rule_ids),
        "decided_at": at,
        "partner_codes": list(partner_codes),
    }
    # Same decision for the same case and creditors: same id, so an unchanged re-run emits
    # nothing new, and a change of creditors (scheduling picks the duo by them) does.
    digest = _decision_digest(
        decision.outreach,
        decision.urgency,
        decision.deadline,
        decision.priority,
        decision.rule_ids,
        partner_codes,
    )
    return _message(
        CASES_TOPIC,
        cause,
        OutreachDecided.EVENT_TYPE,
        OutreachDecided.VERSION,
        key=case.household_id,
        id=f"outreach-decided:{case.case_id}:{digest}",
        data=data,
    )


@functools.lru_cache(maxsize=4096)  # few distinct decisions a day
def _decision_digest(
    outreach: OutreachKind,
    urgency: Urgency,
    deadline: date,
    priority: int,
    rule_ids: tuple[str, ...],
    partner_codes: tuple[str, ...],
) -> str:
    decision = (outreach, urgency, deadline, priority, rule_ids, partner_codes)
    return hashlib.sha256(encode(decision)).hexdigest()[:16]


def case_closed(cause: Cause, case: Case, at: datetime) -> tuple[Outgoing, Outgoing]:
    """The closure for scheduling and notification (cases topic) and the same for intake
    (matching -> intake topic), always both: every path that closes a case queues what this
    returns, so none can forget intake's copy.

    Intake's copy is the same event -- same type, payload and envelope time, so one contract
    model on both topics -- under an id of its own (``case-closed:<case_ref>:intake``): the
    outbox keeps one message per event id, and intake records processed messages by id.
    It is keyed like the creditor feedback on that topic (and the cases topic): by the
    household pseudonym, so a household's closure and feedback stay in order.
    """
    if case.resultaat is None:
        raise ValueError(f"case {case.case_id} is not closed")
    gemeentecode, team = _routing(case)
    data = {
        "case_ref": case.case_id,
        "household_ref": case.household_id,
        "gemeentecode": gemeentecode,
        "team": team,
        "signal_refs": sorted(case.signals),
        "resultaat": case.resultaat,
        "closed_at": at,
    }
    now = datetime.now(UTC)
    event_id = f"case-closed:{case.case_id}"
    return (
        _message(
            CASES_TOPIC,
            cause,
            CaseClosed.EVENT_TYPE,
            CaseClosed.VERSION,
            key=case.household_id,
            id=event_id,
            data=data,
            now=now,
        ),
        _message(
            CREDITOR_FEEDBACK_TOPIC,
            cause,
            CaseClosed.EVENT_TYPE,
            CaseClosed.VERSION,
            key=case.household_id,
            id=f"{event_id}:intake",
            data=data,
            now=now,
        ),
    )


def creditor_feedback(
    cause: Cause, household_ref: str, signal_ref: str, status: CreditorStatus
) -> Outgoing:
    """What the creditor of a signal may hear (the domain decides the status): one request
    per signal and status, ever (the id says so)."""
    return _message(
        CREDITOR_FEEDBACK_TOPIC,
        cause,
        CreditorFeedbackRequested.EVENT_TYPE,
        CreditorFeedbackRequested.VERSION,
        key=household_ref,
        id=f"creditor-feedback:{signal_ref}:{status.value}",
        data={"signal_ref": signal_ref, "status": status},
    )
