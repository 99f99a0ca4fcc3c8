"""Admission of a partner message: who sent it (partner, topic, signature) and whether its
content is a valid signal or resolution. No database: the partner directory is read once per
batch and handed in; signatures are read and checked by the adapter the directory names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from eropaf_contracts.cloudevents import SIGNAL_RESOLVED_TYPE, SIGNAL_SUBMITTED_TYPE
from eropaf_contracts.feedback import FeedbackReason, ReasonCode
from eropaf_contracts.region import Region

from .validation import (
    Limits,
    PartnerPolicy,
    Rejected,
    ValidResolution,
    ValidSignal,
    validate_resolution,
    validate_signal,
)

__all__ = [
    "Admitted",
    "PartnerDirectory",
    "PartnerKey",
    "PartnerMessage",
    "Signatures",
    "SignedBy",
    "admit",
    "signal_id_of",
]

Admitted = ValidSignal | ValidResolution | Rejected


@dataclass(frozen=True)
class PartnerMessage:
    """One message from a partner, from either channel."""

    partner_code: str
    value: bytes | dict[str, Any]
    ce_type: str = SIGNAL_SUBMITTED_TYPE
    ce_id: str | None = None
    ce_source: str | None = None
    signature: str | None = None
    require_signature: bool = True  # the HTTP channel authenticates with a token instead
    fallback_key: str = ""  # <topic>:<partition>:<offset> for unreadable messages
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class PartnerKey:
    kid: str
    partner_code: str
    public_key: Any  # the signature adapter's form of the key: converted once per batch
    revoked: bool


class SignedBy(Protocol):
    """A signature as read from its header, before any cryptography: it names its key."""

    @property
    def kid(self) -> str: ...


class Signatures(Protocol):
    """Reads and verifies detached signatures (``adapters.jws.DetachedSignatures``)."""

    def read(self, header: str) -> SignedBy:
        """The signature in ``header``; ``ValueError`` (saying why) when it is malformed."""
        ...

    def verify(self, signed: SignedBy, value: bytes, key: PartnerKey) -> bool: ...


@dataclass(frozen=True)
class PartnerDirectory:
    """Partners and their keys as the database has them now (read once per batch, so a
    revocation takes effect at the next batch)."""

    partners: dict[str, PartnerPolicy]
    keys: dict[str, PartnerKey]
    token_hashes: dict[str, str]
    signatures: Signatures


def _rejected(reason: ReasonCode, message: str, field: str | None = None) -> Rejected:
    return Rejected([FeedbackReason(code=reason, field=field, message=message)])


def authenticate(message: PartnerMessage, directory: PartnerDirectory) -> Rejected | None:
    """None when the message comes from the registered partner that owns its topic, signed
    (Kafka) with one of that partner's keys that is not revoked."""
    policy = directory.partners.get(message.partner_code)
    if policy is None:
        return _rejected(
            ReasonCode.UNKNOWN_PARTNER, f"partner {message.partner_code!r} is not registered"
        )
    if message.ce_source is not None and message.ce_source != message.partner_code:
        return _rejected(
            ReasonCode.INVALID_SIGNATURE,
            "ce_source does not name the partner that owns this topic",
            "ce_source",
        )
    if not message.require_signature:
        return None
    if not message.signature:
        return _rejected(
            ReasonCode.MISSING_SIGNATURE, "the ce_signature header is missing", "ce_signature"
        )
    try:
        signed = directory.signatures.read(message.signature)
    except ValueError as exc:
        return _rejected(
            ReasonCode.INVALID_SIGNATURE, f"malformed signature: {exc}", "ce_signature"
        )
    key = directory.keys.get(signed.kid)
    if key is None or key.partner_code != message.partner_code:
        return _rejected(
            ReasonCode.INVALID_SIGNATURE,
            f"key {signed.kid!r} is not a key of this partner",
            "ce_signature",
        )
    if key.revoked:
        return _rejected(
            ReasonCode.INVALID_SIGNATURE, f"key {signed.kid!r} has been revoked", "ce_signature"
        )
    value = message.value if isinstance(message.value, bytes) else b""
    if not directory.signatures.verify(signed, value, key):
        return _rejected(
            ReasonCode.INVALID_SIGNATURE,
            "the signature does not match the message",
            "ce_signature",
        )
    return None


def admit(
    message: PartnerMessage,
    directory: PartnerDirectory,
    *,
    region: Region,
    today: date,
    limits: Limits,
) -> Admitted:
    """The message's content when it is within the size limit, authentic, of a known type
    and valid; else every reason to reject it. Unauthenticated content is not read."""
    policy = directory.partners.get(message.partner_code)
    if isinstance(message.value, bytes) and len(message.value) > limits.max_value_bytes:
        return _rejected(ReasonCode.TOO_LARGE, f"message exceeds {limits.max_value_bytes} bytes")
    problem = authenticate(message, directory)
    if problem is not None:
        return problem
    assert policy is not None
    if message.ce_type == SIGNAL_RESOLVED_TYPE:
        return validate_resolution(message.value, today, limits, policy)
    if message.ce_type != SIGNAL_SUBMITTED_TYPE:
        return _rejected(
            ReasonCode.INVALID_SCHEMA, f"unknown ce_type {message.ce_type!r}", "ce_type"
        )
    return validate_signal(message.value, policy, region, today, limits)


def signal_id_of(admitted: ValidSignal | ValidResolution) -> str:
    """The partner's ID of an admitted signal or resolution."""
    if isinstance(admitted, ValidSignal):
        return admitted.signal.id
    return admitted.resolution.id
