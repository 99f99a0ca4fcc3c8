"""Payloads (the envelope's ``data``) of internal events between the services.

Pseudonymous by design: no name, BSN, birth date, street address or contact detail may ever
appear here, only keyed pseudonyms (``*_ref``, ``match_tokens``) and the few attributes the
next step needs (municipality, PC4 area, amounts, dates, flags). Adding a field is a contract
change: bump ``VERSION`` and regenerate the snapshots
(``python -m eropaf_contracts.snapshots --update``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from eropaf_contracts.base import ContractModel, IsoDate, Timestamp
from eropaf_contracts.ddas import Eindresultaat, Signaalpartner

__all__ = [
    "EVENT_PAYLOADS",
    "CaseChange",
    "CaseClosed",
    "CaseOpened",
    "CaseUpdated",
    "CreditorFeedbackRequested",
    "CreditorStatus",
    "EventPayload",
    "MatchTokenKind",
    "OutreachDecided",
    "OutreachKind",
    "SignalAccepted",
    "SignalResolved",
    "SignalUpdated",
    "Urgency",
    "payload_type",
]

# Pseudonyms are keyed HMACs (hex); the bounds only guard against passing raw data by mistake.
Ref = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,128}$")]
Gemeentecode = Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
Pc4 = Annotated[str, StringConstraints(pattern=r"^[1-9]\d{3}$")]
RuleId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{2,32}$")]


class EventPayload(ContractModel):
    """Base of all payloads.

    ``EVENT_TYPE`` goes into the envelope; ``VERSION`` is the version of this schema.
    """

    EVENT_TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class MatchTokenKind(StrEnum):
    """Kinds of keyed match token that intake derives for matching to compare households."""

    BSN = "bsn"
    BIRTH_SURNAME = "birth_surname"  # birth date + normalised surname
    BIRTH_INITIALS_ADDRESS = "birth_initials_address"  # birth date + initials + address
    ADDRESS = "address"  # normalised postcode + house number (+ suffix)


# --- intake -> matching -------------------------------------------------------------


class _SignalFacts(EventPayload):
    signal_ref: Ref  # HMAC of partner code + signal ID: stable across updates
    partner_code: Slug
    partner_type: Signaalpartner = Field(strict=False)
    gemeentecode: Gemeentecode
    postcode_area: Pc4
    bedrag: int | None = None
    ontstaansdatum: IsoDate | None = None
    signaaldatum: IsoDate | None = None
    crisissignaal: bool = False
    warme_overdracht: bool = False
    match_tokens: dict[Annotated[MatchTokenKind, Field(strict=False)], Ref]
    received_at: Timestamp
    revision: int = Field(ge=1)  # 1 for a new signal, +1 per accepted update


class SignalAccepted(_SignalFacts):
    """A new signal passed intake."""

    EVENT_TYPE: ClassVar[str] = "eropaf.intake.signal.accepted"
    VERSION: ClassVar[int] = 1


class SignalUpdated(_SignalFacts):
    """A newer version of an accepted signal (same partner and ID)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.intake.signal.updated"
    VERSION: ClassVar[int] = 1

    revision: int = Field(ge=2)


class SignalResolved(EventPayload):
    """The creditor reports the arrears behind a signal as paid or under arrangement."""

    EVENT_TYPE: ClassVar[str] = "eropaf.intake.signal.resolved"
    VERSION: ClassVar[int] = 1

    signal_ref: Ref
    datum_opgelost: IsoDate


# --- matching -> scheduling / notification / intake ----------------------------------


class OutreachKind(StrEnum):
    HOME_VISIT = "home_visit"  # a duo goes to the door
    PHONE = "phone"
    LETTER = "letter"


class Urgency(StrEnum):
    CRISIS = "crisis"  # e.g. crisis flag, eviction or energy end-of-supply imminent
    HIGH = "high"
    NORMAL = "normal"


class CaseChange(StrEnum):
    SIGNAL_ADDED = "signal_added"
    SIGNAL_UPDATED = "signal_updated"
    SIGNAL_RESOLVED = "signal_resolved"
    REROUTED = "rerouted"  # municipality or team changed (e.g. household moved)
    # A signal linked households that each had an open case: they became this one
    # (``previous_case_refs`` names the cases it absorbed).
    MERGED = "merged"


class _CaseFacts(EventPayload):
    case_ref: Ref
    household_ref: Ref
    gemeentecode: Gemeentecode
    team: Slug
    postcode_area: Pc4
    signal_refs: list[Ref] = Field(min_length=1)  # all signals in the case, open or resolved
    partner_types: list[Annotated[Signaalpartner, Field(strict=False)]]
    total_bedrag: int | None = None  # sum of open signals' amounts, whole euros
    crisis: bool = False


class CaseOpened(_CaseFacts):
    EVENT_TYPE: ClassVar[str] = "eropaf.matching.case.opened"
    VERSION: ClassVar[int] = 1

    opened_at: Timestamp


class CaseUpdated(_CaseFacts):
    EVENT_TYPE: ClassVar[str] = "eropaf.matching.case.updated"
    VERSION: ClassVar[int] = 2

    change: CaseChange = Field(strict=False)
    updated_at: Timestamp
    # Case ids derive from a case's earliest signal: an earlier-dated signal (or a merge)
    # gives the case another ref. These are the refs it was known by until this change (the
    # renamed one, the absorbed ones), so that whoever keys on case_ref can re-key.
    previous_case_refs: list[Ref] = Field(default_factory=list)


class OutreachDecided(EventPayload):
    """Triage result: who goes, how, and by when. Re-emitted when the decision changes."""

    EVENT_TYPE: ClassVar[str] = "eropaf.matching.outreach.decided"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    household_ref: Ref
    gemeentecode: Gemeentecode
    team: Slug
    postcode_area: Pc4  # scheduling estimates travel by PC4
    outreach: OutreachKind = Field(strict=False)
    urgency: Urgency = Field(strict=False)
    deadline: IsoDate  # first contact should happen by this date
    priority: int = Field(ge=0)  # higher = sooner; for ordering within the same deadline
    rule_ids: list[RuleId]  # triage rules that fired, for explanation and evaluation
    decided_at: Timestamp


class CaseClosed(EventPayload):
    EVENT_TYPE: ClassVar[str] = "eropaf.matching.case.closed"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    household_ref: Ref
    gemeentecode: Gemeentecode
    team: Slug
    signal_refs: list[Ref] = Field(min_length=1)
    resultaat: Eindresultaat = Field(strict=False)
    closed_at: Timestamp


class CreditorStatus(StrEnum):
    # Same values as the partner feedback lifecycle statuses.
    PICKED_UP = "picked_up"
    NOT_PICKED_UP = "not_picked_up"


class CreditorFeedbackRequested(EventPayload):
    """Matching asks intake to tell the creditor of a signal whether it was picked up."""

    EVENT_TYPE: ClassVar[str] = "eropaf.matching.creditor_feedback.requested"
    VERSION: ClassVar[int] = 1

    signal_ref: Ref
    status: CreditorStatus = Field(strict=False)


EVENT_PAYLOADS: dict[str, type[EventPayload]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        SignalAccepted,
        SignalUpdated,
        SignalResolved,
        CaseOpened,
        CaseUpdated,
        OutreachDecided,
        CaseClosed,
        CreditorFeedbackRequested,
    )
}


def payload_type(event_type: str) -> type[EventPayload]:
    """The payload class of an event type; KeyError for an unknown type."""
    return EVENT_PAYLOADS[event_type]
