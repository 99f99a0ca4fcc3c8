"""Shared building blocks for contract models.

Contracts are strict: a partner that sends ``"bedrag": "12"`` or ``"crisissignaal": "true"``
gets a clear rejection instead of a silent coercion. The only coercions allowed are the ones
JSON forces on us: it has no date, time or enum type, so those arrive as strings.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

__all__ = [
    "ContractModel",
    "IsoDate",
    "Timestamp",
    "error_pairs",
    "is_rfc3339",
    "parse_rfc3339",
]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_rfc3339(value: str) -> bool:
    """True when ``value`` is an RFC 3339 date-time with an explicit offset."""
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:  # e.g. month 13: the regex only checks the shape
        return False
    return True


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp; always timezone-aware. Raises ValueError."""
    if not is_rfc3339(value):
        raise ValueError("expected an RFC 3339 timestamp, e.g. 2025-01-05T10:30:00Z")
    return datetime.fromisoformat(value.upper().replace(" ", "T"))


def _date_from_iso(value: Any) -> Any:
    # Only the exact ISO form: lax pydantic would also take unix timestamps and datetimes.
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise ValueError("expected a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a calendar date") from None
    return value


def _aware_from_rfc3339(value: Any) -> Any:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        # A naive time is ambiguous across DST in Europe/Amsterdam; refuse it.
        raise ValueError("timestamp must carry a timezone offset")
    return value


IsoDate = Annotated[date, BeforeValidator(_date_from_iso)]
"""A date; from JSON only as ``YYYY-MM-DD``."""

Timestamp = Annotated[datetime, BeforeValidator(_aware_from_rfc3339)]
"""A timezone-aware datetime; from JSON only as RFC 3339."""


class ContractModel(BaseModel):
    """Base of every contract model: strict, closed, immutable.

    Enum fields opt out of strictness per field (``Field(strict=False)``) because strict
    mode would demand enum instances from python dicts, which JSON never gives us.
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        populate_by_name=True,
        frozen=True,
    )


def _format_loc(loc: tuple[int | str, ...]) -> str | None:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or None


def error_pairs(exc: ValidationError) -> list[tuple[str | None, str]]:
    """Map a ValidationError to ``(field path, message)`` pairs, e.g. ``("client.Postcode", ...)``.

    The path uses the wire (DDAS) names so a partner can find the field in what it sent;
    ``None`` means the object as a whole.
    """
    pairs: list[tuple[str | None, str]] = []
    for err in exc.errors(include_url=False):
        # Drop pydantic's internal validator steps (e.g. "function-before[...]") from the path.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        pairs.append((_format_loc(loc), message))
    return pairs
