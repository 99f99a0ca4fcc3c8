"""Feedback to partners on ``arrears.feedback.<code>`` (CONTRACT §2.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from eropaf_contracts.base import ContractModel, Timestamp

__all__ = [
    "FEEDBACK_VERSION",
    "Feedback",
    "FeedbackReason",
    "FeedbackStatus",
    "ReasonCode",
    "feedback_key",
]

# The feedback topic has no CloudEvents type to carry a version; this is its contract version.
FEEDBACK_VERSION = 1


class FeedbackStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # same ID, same content, accepted before
    REJECTED = "rejected"  # carries at least one reason
    # Lifecycle statuses a creditor may see by law; never the reason or household detail.
    PICKED_UP = "picked_up"
    NOT_PICKED_UP = "not_picked_up"


class ReasonCode(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_SCHEMA = "invalid_schema"  # with the offending field
    MISSING_SIGNATURE = "missing_signature"
    INVALID_SIGNATURE = "invalid_signature"
    PARTNER_TYPE_MISMATCH = "partner_type_mismatch"
    OUT_OF_REGION = "out_of_region"
    TOO_LARGE = "too_large"
    CONFLICT = "conflict"  # same ID, different content, not a newer version
    UNKNOWN_SIGNAL = "unknown_signal"  # resolution for an ID never seen
    PARTNER_DISABLED = "partner_disabled"
    UNKNOWN_PARTNER = "unknown_partner"


class FeedbackReason(ContractModel):
    code: ReasonCode = Field(strict=False)
    field: str | None = None
    message: str


class Feedback(ContractModel):
    """One feedback message; exactly one per partner message, plus lifecycle updates."""

    VERSION: ClassVar[int] = FEEDBACK_VERSION

    id: str | None = Field(alias="ID")
    ce_id: str | None
    status: FeedbackStatus = Field(strict=False)
    reasons: list[FeedbackReason] = Field(default_factory=list)
    time: Timestamp

    @model_validator(mode="after")
    def _rejection_has_reason(self) -> Self:
        if self.status is FeedbackStatus.REJECTED and not self.reasons:
            raise ValueError("a rejection carries at least one reason")
        return self

    @classmethod
    def now(
        cls,
        status: FeedbackStatus,
        *,
        signal_id: str | None,
        ce_id: str | None,
        reasons: list[FeedbackReason] | None = None,
    ) -> Feedback:
        """Feedback stamped with the current UTC time."""
        return cls(
            id=signal_id, ce_id=ce_id, status=status, reasons=reasons or [], time=datetime.now(UTC)
        )


def feedback_key(
    signal_id: str | None, ce_id: str | None, topic: str, partition: int, offset: int
) -> str:
    """Kafka key of a feedback message: signal ID, else ce_id, else ``topic:partition:offset``."""
    if signal_id:
        return signal_id
    if ce_id:
        return ce_id
    return f"{topic}:{partition}:{offset}"
