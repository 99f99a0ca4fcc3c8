"""CloudEvents 1.0 headers of partner messages (Kafka protocol binding, binary mode), CONTRACT §2.1.

aiokafka carries headers as ``list[tuple[str, bytes]]``; these helpers build and read that list.
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
    "JSON_CONTENT_TYPE",
    "SIGNAL_RESOLVED_TYPE",
    "SIGNAL_SUBMITTED_TYPE",
    "SIGNAL_TYPES",
    "SPECVERSION",
    "CloudEventHeaderError",
    "CloudEventHeaders",
    "KafkaHeaders",
    "decode_headers",
    "version_of_type",
]

KafkaHeaders = list[tuple[str, bytes]]

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
CE_SIGNATURE = "ce_signature"

SPECVERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"

SIGNAL_SUBMITTED_TYPE = "nl.vroegsignalering.signal.submitted.v1"
SIGNAL_RESOLVED_TYPE = "nl.vroegsignalering.signal.resolved.v1"
SIGNAL_TYPES = frozenset({SIGNAL_SUBMITTED_TYPE, SIGNAL_RESOLVED_TYPE})

_TYPE_VERSION = re.compile(r"\.v(\d+)$")


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

    def to_kafka(self) -> KafkaHeaders:
        """Header list for aiokafka/FastStream; ``ce_time`` as RFC 3339 with ``Z`` for UTC."""
        time_text = self.time.isoformat().replace("+00:00", "Z")
        headers: KafkaHeaders = [
            (CE_SPECVERSION, self.specversion.encode()),
            (CE_ID, self.id.encode()),
            (CE_SOURCE, self.source.encode()),
            (CE_TYPE, self.type.encode()),
            (CE_TIME, time_text.encode()),
            (CONTENT_TYPE, self.content_type.encode()),
        ]
        if self.signature is not None:
            headers.append((CE_SIGNATURE, self.signature.encode()))
        return headers

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
