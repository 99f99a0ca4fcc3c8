"""What becomes of a delivery attempt: sent, retried later, failed for good, or skipped.

Temporary failures (SMTP 4xx, a refused connection, a timeout, a recipient not yet known)
are retried with exponential backoff until the retry window since the message was owed is
over; permanent ones (SMTP 5xx, a webhook 4xx, a recipient removed from the roster) fail at
once with their reason. A message no longer owed when its turn comes is skipped (see
:func:`obsolete`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from eropaf_notification.domain.model import Intent, MessageKind, Visit, VisitStatus

__all__ = ["Decision", "Outcome", "RetryPolicy", "SendResult", "SendStatus", "decide", "obsolete"]


class SendStatus(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    reason: str | None = None

    @classmethod
    def sent(cls) -> SendResult:
        return cls(SendStatus.SENT)

    @classmethod
    def temporary(cls, reason: str) -> SendResult:
        return cls(SendStatus.TEMPORARY, reason[:500])

    @classmethod
    def permanent(cls, reason: str) -> SendResult:
        return cls(SendStatus.PERMANENT, reason[:500])

    @classmethod
    def skipped(cls, reason: str) -> SendResult:
        return cls(SendStatus.SKIPPED, reason[:500])


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RetryPolicy:
    initial_backoff_s: float = 30.0
    max_backoff_s: float = 3600.0
    window_s: float = 24 * 3600.0

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failed attempt: initial, doubled each time, capped."""
        seconds = self.initial_backoff_s * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.max_backoff_s))


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    next_attempt_at: datetime | None = None
    reason: str | None = None


def decide(
    result: SendResult, *, attempts: int, owed_since: datetime, now: datetime, policy: RetryPolicy
) -> Decision:
    """``attempts``: attempts made, this one included."""
    if result.status is SendStatus.SENT:
        return Decision(Outcome.SENT)
    if result.status is SendStatus.SKIPPED:
        return Decision(Outcome.SKIPPED, reason=result.reason)
    if result.status is SendStatus.PERMANENT:
        return Decision(Outcome.FAILED, reason=result.reason)
    retry_at = now + policy.backoff(attempts)
    if retry_at > owed_since + timedelta(seconds=policy.window_s):
        reason = f"gave up after {attempts} attempts in the retry window: {result.reason}"
        return Decision(Outcome.FAILED, reason=reason[:500])
    return Decision(Outcome.RETRY, next_attempt_at=retry_at, reason=result.reason)


_CALENDAR_KINDS = {MessageKind.VISIT_REQUEST, MessageKind.VISIT_LEFT, MessageKind.VISIT_CANCELLED}


def obsolete(intent: Intent, visit: Visit | None) -> str | None:
    """Why a message is no longer owed, else None.

    A reminder is not owed for a visit cancelled, done or moved since. An invite or cancel
    that a newer version of the visit superseded before it went out is not sent either: the
    newer version owes every member of the old and the new duo its own message, and an older
    invite arriving after a newer cancel would put the visit back in a calendar.
    """
    if intent.kind is MessageKind.REMINDER:
        if visit is None:
            return "visit unknown"
        if visit.status is not VisitStatus.PLANNED:
            return f"visit {visit.status.value}"
        if visit.sequence != intent.version:
            return "visit changed since the reminder was due"
    elif intent.kind in _CALENDAR_KINDS and visit is not None and visit.sequence > intent.version:
        return f"superseded by SEQUENCE {visit.sequence}"
    return None
