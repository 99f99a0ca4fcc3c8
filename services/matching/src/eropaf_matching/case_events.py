"""Matching's outgoing events, built from domain outcomes.

Event ids are derived from what happened (``case-opened:<case_ref>`` ...), never random: a
batch that is re-run after a crash, or a redelivered signal that slipped past the inbox,
queues the same ids, and the outbox ignores an id it has seen. Every event is keyed by the
household pseudonym so that one household's events stay in order.

A closure is told twice (:func:`case_closed`): on the cases topic for scheduling and
notification, and on the matching -> intake topic for intake (the retention of personal data
runs from it), so that intake does not read the whole cases topic for the few closures in it.

Events go straight to outbox messages, their JSON written here from fixed templates: byte
for byte what ``Envelope.follow(payload)`` and ``outbox.envelope_message`` give for the
contract model (``tests/handlers/test_case_events.py`` holds them to that), without two
pydantic models per event, serialising twice and the generic JSON encoder -- measured: a
quarter of a batch's CPU. The values come from validated signals, the region and the policy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from json.encoder import encode_basestring
from typing import Protocol

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
    "creditor_status",
    "outreach_decided",
    "timestamp",
]

Outgoing = OutgoingMessage

# A JSON string literal as pydantic writes it (quotes, backslashes and control characters
# escaped, everything else as is); the C function the json module uses. Enum members go in
# as they are: every enum here is a StrEnum, whose string is its value.
_str = encode_basestring


def _strs(values: Iterable[str]) -> str:
    return "[" + ",".join(map(_str, values)) + "]"


def _int(value: int | None) -> str:
    return "null" if value is None else str(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


class Cause(Protocol):
    """What an event needs of the message that caused it (an ``Envelope`` has these)."""

    @property
    def id(self) -> str: ...

    @property
    def correlation_id(self) -> str | None: ...


_ZERO = timedelta(0)


# The last datetime timestamp() wrote and its text: a signal's events share its times (the
# same object).
_last_stamp: tuple[datetime | None, str] = (None, "")


def timestamp(value: datetime) -> str:
    """A timestamp as pydantic writes it in JSON: ISO 8601, ``Z`` for UTC."""
    global _last_stamp
    last = _last_stamp  # one read: the pair stays a pair
    if value is last[0]:
        return last[1]
    text = value.isoformat()
    if value.utcoffset() == _ZERO:
        text = text[:-6] + "Z"
    _last_stamp = (value, text)
    return text


# The last second _now() wrote and its text.
_last_second: tuple[int, str] = (-1, "")


def _now() -> str:
    """``timestamp(datetime.now(UTC))``, the text of the second reused (it was a tenth of an
    event's cost)."""
    global _last_second
    second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
    last = _last_second
    if second != last[0]:
        last = _last_second = (second, datetime.fromtimestamp(second, UTC).isoformat()[:-6])
    prefix = last[1]
    return f"{prefix}.{fraction:06d}Z" if fraction else f"{prefix}Z"


def _message(
    topic: str,
    cause: Cause,
    event_type: str,
    version: int,
    *,
    key: str,
    id: str,
    data: str,
    now: str | None = None,
) -> Outgoing:
    """``data``: the payload's JSON. The envelope's fields in ``Envelope``'s order, filled
    as ``Envelope.follow`` fills them; its headers as ``Envelope.headers`` gives them.
    ``now``: the envelope time's text (default: this instant)."""
    correlation_id = cause.correlation_id or cause.id
    if now is None:
        now = _now()
    value = (
        f'{{"id":{_str(id)},"type":{_str(event_type)},"version":{version},"time":"{now}",'
        f'"key":{_str(key)},"correlation_id":{_str(correlation_id)},'
        f'"causation_id":{_str(cause.id)},"data":{data}}}'
    )
    return OutgoingMessage(
        topic=topic,
        key=key,
        value=value.encode(),
        headers=[
            ("ce_id", id),
            ("ce_type", event_type),
            ("eropaf_version", str(version)),
            ("content-type", "application/json"),
            ("correlation_id", correlation_id),
        ],
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


def _facts(case: Case) -> str:
    """The JSON of the fields every case event shares (``_CaseFacts``), without the braces."""
    gemeentecode, team = _routing(case)
    open_signals = case.open_signals
    amounts = [s.bedrag for s in open_signals]
    total = None if not amounts or None in amounts else sum(a for a in amounts if a is not None)
    partner_types = sorted({s.partner_type for s in case.signals.values()})
    return (
        f'"case_ref":{_str(case.case_id)},"household_ref":{_str(case.household_id)},'
        f'"gemeentecode":{_str(gemeentecode)},"team":{_str(team)},'
        f'"postcode_area":{_str(_latest_open(case, open_signals).postcode_area)},'
        f'"signal_refs":{_strs(sorted(case.signals))},"partner_types":{_strs(partner_types)},'
        f'"total_bedrag":{_int(total)},'
        f'"crisis":{_bool(any(s.crisissignaal for s in open_signals))}'
    )


def case_opened(cause: Cause, case: Case, at: datetime) -> Outgoing:
    return _message(
        CASES_TOPIC,
        cause,
        CaseOpened.EVENT_TYPE,
        CaseOpened.VERSION,
        key=case.household_id,
        id=f"case-opened:{case.case_id}",
        data=f'{{{_facts(case)},"opened_at":"{timestamp(at)}"}}',
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
    return _message(
        CASES_TOPIC,
        cause,
        CaseUpdated.EVENT_TYPE,
        CaseUpdated.VERSION,
        key=case.household_id,
        id=f"case-updated:{case.case_id}:{change.value}:{about}",
        data=(
            f'{{{_facts(case)},"change":{_str(change)},"updated_at":"{timestamp(at)}",'
            f'"previous_case_refs":{_strs(previous_case_refs)}}}'
        ),
    )


def outreach_decided(cause: Cause, case: Case, at: datetime) -> Outgoing | None:
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
    data = (
        f'{{"case_ref":{_str(case.case_id)},"household_ref":{_str(case.household_id)},'
        f'"gemeentecode":{_str(gemeentecode)},"team":{_str(team)},'
        f'"postcode_area":{_str(_latest_open(case, case.open_signals).postcode_area)},'
        f'"outreach":{_str(decision.outreach)},"urgency":{_str(decision.urgency)},'
        f'"deadline":"{decision.deadline.isoformat()}","priority":{_int(decision.priority)},'
        f'"rule_ids":{_strs(decision.rule_ids)},"decided_at":"{timestamp(at)}",'
        f'"partner_codes":{_strs(sorted({s.partner_code for s in case.open_signals}))}}}'
    )
    # Same decision for the same case: same id, so an unchanged re-run emits nothing new.
    digest = _decision_digest(
        decision.outreach, decision.urgency, decision.deadline, decision.priority, decision.rule_ids
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
) -> str:
    return hashlib.sha256(
        json.dumps([outreach, urgency, str(deadline), priority, list(rule_ids)]).encode()
    ).hexdigest()[:16]


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
    data = (
        f'{{"case_ref":{_str(case.case_id)},"household_ref":{_str(case.household_id)},'
        f'"gemeentecode":{_str(gemeentecode)},"team":{_str(team)},'
        f'"signal_refs":{_strs(sorted(case.signals))},"resultaat":{_str(case.resultaat)},'
        f'"closed_at":"{timestamp(at)}"}}'
    )
    now = _now()
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


def creditor_status(case: Case, signal_ref: str) -> CreditorStatus | None:
    """What the creditor of a signal may hear: picked up, definitively not, or nothing yet."""
    if signal_ref in case.herhaalde_meldingen:
        return CreditorStatus.NOT_PICKED_UP
    if case.opgepakt_on is not None:
        return CreditorStatus.PICKED_UP
    if not case.is_open:  # closed without ever being picked up
        return CreditorStatus.NOT_PICKED_UP
    return None  # still "nog niet opgepakt": a further signal may tip the balance


def creditor_feedback(cause: Cause, case: Case, refs: Iterable[str]) -> list[Outgoing]:
    """One request per signal and status, ever (the id says so)."""
    out: list[Outgoing] = []
    for ref in sorted(refs):
        status = creditor_status(case, ref)
        if status is None:
            continue
        out.append(
            _message(
                CREDITOR_FEEDBACK_TOPIC,
                cause,
                CreditorFeedbackRequested.EVENT_TYPE,
                CreditorFeedbackRequested.VERSION,
                key=case.household_id,
                id=f"creditor-feedback:{ref}:{status.value}",
                data=f'{{"signal_ref":{_str(ref)},"status":{_str(status)}}}',
            )
        )
    return out
