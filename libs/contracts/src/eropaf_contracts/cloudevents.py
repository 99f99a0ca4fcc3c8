"""CloudEvents headers (Kafka protocol binding, binary mode): the one place they are built.

* Partner messages (CONTRACT §2.1 signals, §2.2 feedback of type
  :data:`SIGNAL_FEEDBACK_TYPE`): :class:`CloudEventHeaders`, with ``ce_time`` always written
  by :func:`format_ce_time`.
* Internal events: :func:`event_headers`, the routing headers mirrored from the envelope
  (``Envelope.headers`` uses it; code that writes envelopes without pydantic calls it too).

aiokafka carries headers as ``list[tuple[str, bytes]]`` (:data:`KafkaHeaders`); the outbox
stores text pairs (:data:`TextHeaders`). Both forms come from the same builders.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from eropaf_contracts.base import parse_rfc3339

__all__ = [
    "CE_ID",
    "CE_SIGNATURE",
    "CE_SOURCE",
    "CE_SPECVERSION",
    "CE_TIME",
    "CE_TYPE",
    "CONTENT_TYPE",
    "CORRELATION_ID",
    "EROPAF_VERSION",
    "JSON_CONTENT_TYPE",
    "SIGNAL_FEEDBACK_TYPE",
    "SIGNAL_RESOLVED_TYPE",
    "SIGNAL_SUBMITTED_TYPE",
    "SIGNAL_TYPES",
    "SPECVERSION",
    "CloudEventHeaderError",
    "CloudEventHeaders",
    "KafkaHeaders",
    "TextHeaders",
    "decode_headers",
    "encode_headers",
    "event_headers",
    "format_ce_time",
    "version_of_type",
]

KafkaHeaders = list[tuple[str, bytes]]
TextHeaders = list[tuple[str, str]]

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
CE_SIGNATURE = "ce_signature"
EROPAF_VERSION = "eropaf_version"
CORRELATION_ID = "correlation_id"

SPECVERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"

SIGNAL_SUBMITTED_TYPE = "nl.vroegsignalering.signal.submitted.v1"
SIGNAL_RESOLVED_TYPE = "nl.vroegsignalering.signal.resolved.v1"
SIGNAL_TYPES = frozenset({SIGNAL_SUBMITTED_TYPE, SIGNAL_RESOLVED_TYPE})
# Intake's answer on ``arrears.feedback.<code>`` (CONTRACT §2.2): same headers, no signature.
SIGNAL_FEEDBACK_TYPE = "nl.vroegsignalering.signal.feedback.v1"

_TYPE_VERSION = re.compile(r"\.v(\d+)$")


def format_ce_time(moment: datetime) -> str:
    """The ``ce_time`` text of ``moment``: RFC 3339 in UTC with ``Z``, microseconds only when
    not zero (``2025-01-05T10:30:00Z``, ``2025-01-05T10:30:00.250000Z``). Naive times are
    refused: a header never guesses a zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("ce_time needs a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_headers(headers: Iterable[tuple[str, str]]) -> KafkaHeaders:
    """Text pairs as aiokafka sends them (UTF-8)."""
    return [(name, value.encode()) for name, value in headers]


def event_headers(
    *, id: str, type: str, version: int, correlation_id: str | None = None
) -> TextHeaders:
    """Routing headers of an internal event, mirrored from its envelope so that DLQ tools and
    filters need not parse the JSON: ``ce_id``, ``ce_type``, ``eropaf_version``,
    ``content-type`` and, when there is one, ``correlation_id``."""
    headers: TextHeaders = [
        (CE_ID, id),
        (CE_TYPE, type),
        (EROPAF_VERSION, str(version)),
        (CONTENT_TYPE, JSON_CONTENT_TYPE),
    ]
    if correlation_id:
        headers.append((CORRELATION_ID, correlation_id))
    return headers


def version_of_type(event_type: str) -> int:
    """The contract version encoded in a partner event type (``...submitted.v1`` -> 1)."""
    match = _TYPE_VERSION.search(event_type)
    if match is None:
        raise ValueError(f"event type {event_type!r} carries no version suffix")
    return int(match.group(1))


class CloudEventHeaderError(ValueError):
    """Headers present but unusable. ``problems`` are ``(header, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], ce_id: str | None) -> None:
        super().__init__("; ".join(f"{h}: {m}" for h, m in problems))
        self.problems = problems
        self.ce_id = ce_id  # still useful as feedback key when the rest is broken


def decode_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Lenient view: header name (lower-case) -> UTF-8 text. Skips undecodable values.

    The first occurrence wins, so a later duplicate cannot override what was signed for.
    """
    out: dict[str, str] = {}
    for name, raw in headers or ():
        key = name.lower()
        if key in out or raw is None:
            continue
        try:
            out[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class CloudEventHeaders:
    """The CloudEvents attributes of one partner message."""

    id: str
    source: str
    type: str
    time: datetime
    signature: str | None = None
    specversion: str = SPECVERSION
    content_type: str = JSON_CONTENT_TYPE

    @classmethod
    def new(
        cls,
        source: str,
        type: str,
        *,
        signature: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> CloudEventHeaders:
        """Fresh headers: random UUID id and the current UTC time unless given."""
        return cls(
            id=id or str(uuid.uuid4()),
            source=source,
            type=type,
            time=time or datetime.now(UTC),
            signature=signature,
        )

    def with_signature(self, signature: str) -> CloudEventHeaders:
        return CloudEventHeaders(
            id=self.id,
            source=self.source,
            type=self.type,
            time=self.time,
            signature=signature,
            specversion=self.specversion,
            content_type=self.content_type,
        )

    def to_text(self) -> TextHeaders:
        """The headers as text pairs (what the outbox stores)."""
        headers: TextHeaders = [
            (CE_SPECVERSION, self.specversion),
            (CE_ID, self.id),
            (CE_SOURCE, self.source),
            (CE_TYPE, self.type),
            (CE_TIME, format_ce_time(self.time)),
            (CONTENT_TYPE, self.content_type),
        ]
        if self.signature is not None:
            headers.append((CE_SIGNATURE, self.signature))
        return headers

    def to_kafka(self) -> KafkaHeaders:
        """Header list for aiokafka/FastStream."""
        return encode_headers(self.to_text())

    @classmethod
    def from_kafka(cls, headers: Iterable[tuple[str, bytes | None]] | None) -> CloudEventHeaders:
        """Read and check the headers; raise CloudEventHeaderError listing every problem.

        A missing ``ce_signature`` is not an error here: it is reported to the partner with
        its own reason code (``missing_signature``), so the caller checks ``signature is None``.
        """
        values = decode_headers(headers)
        problems: list[tuple[str, str]] = []
        for name in (CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CONTENT_TYPE):
            if not values.get(name):
                problems.append((name, "missing header"))
        if values.get(CE_SPECVERSION, SPECVERSION) != SPECVERSION:
            problems.append((CE_SPECVERSION, f"must be {SPECVERSION}"))
        ce_type = values.get(CE_TYPE)
        if ce_type and ce_type not in SIGNAL_TYPES:
            problems.append((CE_TYPE, f"unknown type; expected one of {sorted(SIGNAL_TYPES)}"))
        content_type = values.get(CONTENT_TYPE)
        # Media type parameters (e.g. "; charset=utf-8") are allowed by RFC 9110.
        if content_type and content_type.split(";")[0].strip().lower() != JSON_CONTENT_TYPE:
            problems.append((CONTENT_TYPE, f"must be {JSON_CONTENT_TYPE}"))
        parsed_time: datetime | None = None
        if values.get(CE_TIME):
            try:
                parsed_time = parse_rfc3339(values[CE_TIME])
            except ValueError as exc:
                problems.append((CE_TIME, str(exc)))
        if problems or parsed_time is None:
            raise CloudEventHeaderError(problems, values.get(CE_ID) or None)
        return cls(
            id=values[CE_ID],
            source=values[CE_SOURCE],
            type=values[CE_TYPE],
            time=parsed_time,
            signature=values.get(CE_SIGNATURE) or None,
            specversion=values[CE_SPECVERSION],
            content_type=values[CONTENT_TYPE],
        )
