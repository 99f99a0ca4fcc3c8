"""What the notification service knows: staff members, visits, and the messages it owes.

A message owed is an :class:`Intent`: one fact, one recipient, one version, one channel. Its
id is derived from those four, so the same fact told twice (a redelivered event, a re-run
job) is the same intent, and its ``Message-ID`` is the same mail.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from eropaf_contracts.events import DeliveryChannel, StaffRole

__all__ = [
    "DigestItem",
    "Intent",
    "MessageFacts",
    "MessageKind",
    "StaffMember",
    "Visit",
    "VisitStatus",
    "notification_id",
]


class MessageKind(StrEnum):
    CASE_OPENED = "case_opened"  # a new case with an outreach decision (routine)
    VISIT_REQUEST = "visit_request"  # invite, new or changed (METHOD:REQUEST)
    VISIT_LEFT = "visit_left"  # the recipient left the duo (METHOD:CANCEL naming them)
    VISIT_CANCELLED = "visit_cancelled"  # the whole visit is off (METHOD:CANCEL)
    REMINDER = "reminder"  # the working day before a visit, no calendar part
    CASE_UNPLANNED = "case_unplanned"  # alert to the coordinators: always immediate
    DIGEST = "digest"  # the daily summary for staff who chose ``dagelijks``


class VisitStatus(StrEnum):
    PLANNED = "planned"
    CANCELLED = "cancelled"
    DONE = "done"


class DigestItem(BaseModel):
    """One line of a digest: a case awaiting action, a visit tomorrow, or an overdue attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_ref: str
    gemeentecode: str
    datum: date | None = None
    dagdeel: str | None = None
    outreach: str | None = None
    deadline: date | None = None
    attempt: int | None = None


class MessageFacts(BaseModel):
    """Everything a message may say. Closed (``extra="forbid"``): no field of a household's
    personal data can be carried into a template, by design rather than by care."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_ref: str | None = None
    gemeentecode: str | None = None
    team: str | None = None
    visit_id: str | None = None
    datum: date | None = None
    dagdeel: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    previous_datum: date | None = None
    previous_dagdeel: str | None = None
    attendees: tuple[str, ...] = ()  # staff codes of the duo
    sequence: int | None = None
    attempt: int | None = None
    deadline: date | None = None
    outreach: str | None = None
    previous_outreach: str | None = None  # a changed decision: the outreach told before
    decided_at: datetime | None = None  # of the outreach decision told
    urgency: str | None = None
    reason: str | None = None
    digest_date: date | None = None
    new_cases: tuple[DigestItem, ...] = ()
    tomorrow: tuple[DigestItem, ...] = ()
    overdue: tuple[DigestItem, ...] = ()


def notification_id(fact: str, recipient: str, version: int, channel: DeliveryChannel) -> str:
    """Stable id of one message: the same (fact, recipient, version, channel), the same id."""
    digest = hashlib.sha256()
    for part in (fact, recipient, str(version), channel.value):
        raw = part.encode()
        digest.update(len(raw).to_bytes(4, "big"))
        digest.update(raw)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Intent:
    """A message owed: which fact, to whom, which version of it, over which channel."""

    fact: str
    version: int
    recipient: str  # a staff code (or, for a team's webhook, the team code)
    kind: MessageKind
    facts: MessageFacts
    channel: DeliveryChannel = DeliveryChannel.EMAIL
    routine: bool = False  # may wait for the recipient's daily digest

    @functools.cached_property
    def notification_id(self) -> str:  # worked out once: it is asked for often
        return notification_id(self.fact, self.recipient, self.version, self.channel)

    @property
    def case_ref(self) -> str | None:
        return self.facts.case_ref


@dataclass(frozen=True)
class StaffMember:
    """The latest roster record of one staff member (from ``StaffChanged``)."""

    code: str
    naam: str
    email: str
    organisatie: str
    rol: StaffRole
    gemeenten: tuple[str, ...]
    taal: str = "nl"
    bericht: str = "direct"
    active: bool = True

    @property
    def daily(self) -> bool:
        return self.bericht == "dagelijks"


@dataclass(frozen=True)
class Visit:
    """The notification service's own copy of a visit (from scheduling's visit events)."""

    visit_id: str
    case_ref: str
    gemeentecode: str
    team: str
    datum: date
    dagdeel: str
    start: datetime
    end: datetime
    staff: tuple[str, ...]
    sequence: int
    attempt: int
    deadline: date
    status: VisitStatus = VisitStatus.PLANNED
