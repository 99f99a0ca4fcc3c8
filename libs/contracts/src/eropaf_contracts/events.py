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
from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner

__all__ = [
    "EVENT_PAYLOADS",
    "BacklogReason",
    "CaseChange",
    "CaseClosed",
    "CaseOpened",
    "CaseOutcomeRecorded",
    "CaseUnplanned",
    "CaseUpdated",
    "ContactAttemptRecorded",
    "CreditorFeedbackRequested",
    "CreditorStatus",
    "DeliveryChannel",
    "EventPayload",
    "MatchTokenKind",
    "NotificationDelivered",
    "NotificationFailed",
    "OutreachDecided",
    "OutreachKind",
    "OutreachPlanned",
    "SignalAccepted",
    "SignalResolved",
    "SignalUpdated",
    "StaffChanged",
    "StaffRole",
    "Urgency",
    "VisitCancelReason",
    "VisitCancelled",
    "VisitCompleted",
    "VisitPlanned",
    "VisitRescheduled",
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
    VERSION: ClassVar[int] = 2

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
    # Partner codes of the creditors with an open signal in the case (sorted): scheduling
    # takes the duo's employee from a corporation among them (CONTRACT §4).
    partner_codes: list[Slug] = Field(default_factory=list)


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


# --- scheduling -> matching / notification ------------------------------------------------
# VISITS_TOPIC, keyed by case_ref; STAFF_TOPIC, keyed by staff code. Staff codes, names and
# e-mail addresses are staff data (not household data) and may travel on internal topics.

VisitId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
StaffCode = Slug


class StaffRole(StrEnum):
    MEDEWERKER = "medewerker"  # corporation employee
    SCHULDHULPVERLENER = "schuldhulpverlener"  # debt counsellor of the municipal team
    COORDINATOR = "coordinator"


class BacklogReason(StrEnum):
    NO_COUNSELLOR_AVAILABLE = "no_counsellor_available"
    NO_EMPLOYEE_AVAILABLE = "no_employee_available"
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    DEADLINE_PASSED = "deadline_passed"
    # its planned visit's day has passed and no contact attempt was recorded for it
    VISIT_OVERDUE = "visit_overdue"


class VisitCancelReason(StrEnum):
    CASE_CLOSED = "case_closed"  # outreach ended (reached, resolved, closed by matching)
    STAFF_ABSENT = "staff_absent"  # no replacement duo could be found in time
    REPLANNED = "replanned"  # the solver dropped it for a more urgent case
    OUTREACH_CHANGED = "outreach_changed"  # triage no longer asks for a home visit


class _VisitFacts(EventPayload):
    visit_id: VisitId  # stable per visit: the invite's UID derives from it
    case_ref: Ref
    gemeentecode: Gemeentecode
    team: Slug
    postcode_area: Pc4
    datum: IsoDate  # local date in Europe/Amsterdam
    dagdeel: Dagdeel = Field(strict=False)
    start: Timestamp  # with the Amsterdam offset
    end: Timestamp
    staff: list[StaffCode] = Field(min_length=1, max_length=2)  # the duo
    sequence: int = Field(ge=0)  # the invite's SEQUENCE; rises with every change
    attempt: int = Field(ge=1)  # the contact attempt this visit serves
    deadline: IsoDate


class VisitPlanned(_VisitFacts):
    """A new visit (for a new case, or the next attempt after a card was left)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.visit.planned"
    VERSION: ClassVar[int] = 1


class VisitRescheduled(_VisitFacts):
    """A planned visit moved in time and/or changed a member of its duo (same visit_id)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.visit.rescheduled"
    VERSION: ClassVar[int] = 1

    previous_datum: IsoDate
    previous_dagdeel: Dagdeel = Field(strict=False)
    previous_start: Timestamp
    previous_end: Timestamp
    previous_staff: list[StaffCode] = Field(min_length=1, max_length=2)


class VisitCancelled(_VisitFacts):
    """The whole visit is off (``staff`` is the duo it had)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.visit.cancelled"
    VERSION: ClassVar[int] = 1

    reason: VisitCancelReason = Field(strict=False)


class VisitCompleted(EventPayload):
    """Staff recorded the attempt this visit served (``bereikt`` or not)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.visit.completed"
    VERSION: ClassVar[int] = 1

    visit_id: VisitId
    case_ref: Ref
    gemeentecode: Gemeentecode
    datum: IsoDate
    staff: list[StaffCode] = Field(min_length=1, max_length=2)
    attempt: int = Field(ge=1)
    bereikt: bool


class OutreachPlanned(EventPayload):
    """The first contact of a case is planned (its first visit or task got a date)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.outreach.planned"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    planned_on: IsoDate


class ContactAttemptRecorded(EventPayload):
    """A DDAS ``contactpoging``: how, whether the household was reached, when, by whom."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.contact_attempt.recorded"
    VERSION: ClassVar[int] = 2

    case_ref: Ref
    soort: Contactsoort = Field(strict=False)
    bereikt: bool
    datum: IsoDate
    dagdeel: Dagdeel | None = Field(default=None, strict=False)
    attempt: int = Field(default=1, ge=1)
    visit_id: VisitId | None = None
    gemeentecode: Gemeentecode | None = None
    recorded_by: StaffCode | None = None


class CaseOutcomeRecorded(EventPayload):
    """The outreach of a case ended with a DDAS end result (staff's, or the attempt limit)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.case_outcome.recorded"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    resultaat: Eindresultaat = Field(strict=False)
    datum: IsoDate


class CaseUnplanned(EventPayload):
    """A home-visit case has no visit on or before its deadline, or its visit's day passed
    with nothing recorded (``visit_overdue``), and why (the backlog)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.case.unplanned"
    VERSION: ClassVar[int] = 2  # 2: reason visit_overdue

    case_ref: Ref
    gemeentecode: Gemeentecode
    team: Slug
    deadline: IsoDate
    attempt: int = Field(ge=1)
    reason: BacklogReason = Field(strict=False)
    detected_at: Timestamp


class StaffChanged(EventPayload):
    """The current record of one staff member (full state, keyed by code; last one wins)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.staff.changed"
    VERSION: ClassVar[int] = 1

    code: StaffCode
    naam: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    organisatie: Slug
    rol: StaffRole = Field(strict=False)
    gemeenten: list[Gemeentecode]
    taal: Annotated[str, StringConstraints(pattern=r"^(nl|en)$")]
    bericht: Annotated[str, StringConstraints(pattern=r"^(direct|dagelijks)$")]
    active: bool = True  # False: removed from the roster
    changed_at: Timestamp


# --- notification -> operators / chat tools -----------------------------------------------


class DeliveryChannel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class _DeliveryFacts(EventPayload):
    notification_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
    fact: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # e.g. visit.planned
    recipient: StaffCode
    channel: DeliveryChannel = Field(strict=False)
    case_ref: Ref | None = None
    message_id: Annotated[str, StringConstraints(min_length=3, max_length=400)]
    attempts: int = Field(ge=1)


class NotificationDelivered(_DeliveryFacts):
    EVENT_TYPE: ClassVar[str] = "eropaf.notification.delivered"
    VERSION: ClassVar[int] = 1

    delivered_at: Timestamp


class NotificationFailed(_DeliveryFacts):
    EVENT_TYPE: ClassVar[str] = "eropaf.notification.failed"
    VERSION: ClassVar[int] = 1

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    failed_at: Timestamp


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
        VisitPlanned,
        VisitRescheduled,
        VisitCancelled,
        VisitCompleted,
        OutreachPlanned,
        ContactAttemptRecorded,
        CaseOutcomeRecorded,
        CaseUnplanned,
        StaffChanged,
        NotificationDelivered,
        NotificationFailed,
    )
}


def payload_type(event_type: str) -> type[EventPayload]:
    """The payload class of an event type; KeyError for an unknown type."""
    return EVENT_PAYLOADS[event_type]
