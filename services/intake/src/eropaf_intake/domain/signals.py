"""What intake remembers of each accepted signal, and what happens when a partner sends a
signal or a resolution for it, or matching asks to tell the creditor about it.

Each operation returns its outcome: what happened, with the feedback status and reasons the
partner gets. The service layer turns outcomes into stored rows and events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from eropaf_contracts.events import CreditorFeedbackRequested
from eropaf_contracts.feedback import Feedback, FeedbackReason, FeedbackStatus, ReasonCode
from eropaf_contracts.signals import PartnerSignal, dump_ddas

from .match_tokens import match_tokens, pseudonym
from .revisions import Revision, content_fingerprint, decide_revision
from .validation import Rejected, ValidResolution, ValidSignal

__all__ = [
    "Accepted",
    "AlreadyResolved",
    "Conflict",
    "Duplicate",
    "Outcome",
    "Resolved",
    "StoredSignal",
    "UnknownSignal",
    "Updated",
    "feedback_status",
    "household_key_of",
    "lifecycle_feedback",
    "personal_fields",
    "receive",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class StoredSignal:
    """Intake's record of one accepted signal (no personal data). ``case_closed_at`` is not
    here: it is written only when matching closes the case, never with a signal."""

    signal_ref: str
    partner_code: str
    signal_id: str
    fingerprint: str
    signaaldatum: date | None
    revision: int
    household_key: str
    accepted_at: datetime
    resolved_on: date | None = None


# --- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """A new signal (revision 1) passed intake."""

    status: ClassVar[FeedbackStatus] = FeedbackStatus.ACCEPTED
    stored: StoredSignal
    valid: ValidSignal
    tokens: dict[str, str]


@dataclass(frozen=True, slots=True)
class Updated(Accepted):
    """A newer version (later signaaldatum, other content) of an accepted signal."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The same content as the accepted version: nothing changes."""

    status: ClassVar[FeedbackStatus] = FeedbackStatus.DUPLICATE
    signal_ref: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Other content under an accepted ID with a signaaldatum that is not later (stale or
    clashing): rejected, the accepted version stays."""

    status: ClassVar[FeedbackStatus] = FeedbackStatus.REJECTED
    signal_ref: str
    reasons: ClassVar[list[FeedbackReason]] = [
        FeedbackReason(
            code=ReasonCode.CONFLICT,
            field="ID",
            message=(
                "this ID was accepted before with other content"
                " and a signaaldatum that is not later"
            ),
        )
    ]


@dataclass(frozen=True, slots=True)
class Resolved:
    """The partner reports the arrears behind an accepted signal as cleared."""

    status: ClassVar[FeedbackStatus] = FeedbackStatus.ACCEPTED
    stored: StoredSignal
    datum_opgelost: date


@dataclass(frozen=True, slots=True)
class AlreadyResolved:
    status: ClassVar[FeedbackStatus] = FeedbackStatus.DUPLICATE
    signal_ref: str


@dataclass(frozen=True, slots=True)
class UnknownSignal:
    """A resolution for an ID that was never accepted (or whose record is gone)."""

    status: ClassVar[FeedbackStatus] = FeedbackStatus.REJECTED
    signal_ref: str
    reasons: ClassVar[list[FeedbackReason]] = [
        FeedbackReason(
            code=ReasonCode.UNKNOWN_SIGNAL,
            field="ID",
            message="no signal with this ID was accepted",
        )
    ]


Outcome = Accepted | Duplicate | Conflict | Resolved | AlreadyResolved | UnknownSignal | Rejected


def feedback_status(outcome: Outcome) -> tuple[FeedbackStatus, list[FeedbackReason]]:
    """The feedback a partner gets for a message with this outcome."""
    if isinstance(outcome, Rejected):
        return FeedbackStatus.REJECTED, outcome.reasons
    if isinstance(outcome, Conflict | UnknownSignal):
        return outcome.status, list(outcome.reasons)
    return outcome.status, []


# --- operations --------------------------------------------------------------------------


def household_key_of(tokens: Mapping[str, str], pseudonym_key: bytes, signal_ref: str) -> str:
    """The key personal data is encrypted under: the address's match token, so a household
    shares one data key (shredded together); without a usable address, the signal's own."""
    return tokens.get("address") or pseudonym(pseudonym_key, "household", signal_ref)


def receive(
    stored: StoredSignal | None,
    valid: ValidSignal,
    *,
    signal_ref: str,
    partner_code: str,
    pseudonym_key: bytes,
    now: datetime,
) -> Accepted | Duplicate | Conflict:
    """A valid signal against the accepted version of the same partner + ID, if any."""
    sig = valid.signal
    revision = 1
    if stored is not None:
        decision = decide_revision(stored.fingerprint, stored.signaaldatum, sig)
        if decision is Revision.DUPLICATE:
            return Duplicate(signal_ref)
        if decision is Revision.CONFLICT:
            return Conflict(signal_ref)
        revision = stored.revision + 1
    tokens = match_tokens(sig, pseudonym_key)
    new = StoredSignal(
        signal_ref=signal_ref,
        partner_code=partner_code,
        signal_id=sig.id,
        fingerprint=content_fingerprint(sig),
        signaaldatum=sig.signaaldatum,
        revision=revision,
        household_key=household_key_of(tokens, pseudonym_key, signal_ref),
        accepted_at=now,
        resolved_on=stored.resolved_on if stored else None,
    )
    return (Accepted if revision == 1 else Updated)(new, valid, tokens)


def resolve(
    stored: StoredSignal | None, valid: ValidResolution, *, signal_ref: str
) -> Resolved | AlreadyResolved | UnknownSignal:
    """A partner's resolution of one of its signals; the first one counts."""
    if stored is None:
        return UnknownSignal(signal_ref)
    if stored.resolved_on is not None:
        return AlreadyResolved(signal_ref)
    datum = valid.resolution.datum_opgelost
    return Resolved(dataclasses.replace(stored, resolved_on=datum), datum)


def lifecycle_feedback(
    stored: StoredSignal | None, request: CreditorFeedbackRequested, time: datetime
) -> Feedback | None:
    """What the law lets a creditor see of its signal: picked up or not, nothing more. None
    when the signal is not ours (shredded or never accepted): nothing to tell."""
    if stored is None:
        return None
    return Feedback(
        id=stored.signal_id,
        ce_id=None,
        status=FeedbackStatus(request.status.value),
        reasons=[],
        time=time,
    )


def personal_fields(sig: PartnerSignal) -> dict[str, Any]:
    """The personal part of a signal, as it is encrypted at rest."""
    ddas = dump_ddas(sig)
    return {
        "ID": ddas.get("ID"),
        "client": ddas.get("client", {}),
        "contactgegevens": ddas.get("contactgegevens"),
    }
