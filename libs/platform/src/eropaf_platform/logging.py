"""JSON logs with correlation ids, with personal fields removed before anything is written."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog

# Keys that name personal data anywhere in a log event (compared case-insensitively).
PERSONAL_KEYS = frozenset(
    k.lower()
    for k in (
        "Burgerservicenummer", "bsn", "Voorletters", "Voorvoegsel", "Achternaam", "surname",
        "name", "naam", "first_name", "last_name", "initials", "Geboortedatum", "birth_date",
        "birthdate", "Straatnaam", "street", "Postcode", "Huisnummer", "Huisnummertoevoeging",
        "house_number", "Plaatsnaam", "city", "address", "adres", "client", "contactgegevens",
        "telefoonnummer", "phone", "email", "e_mail", "contact_details",
    )
)  # fmt: skip
REDACTED = "[redacted]"


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in PERSONAL_KEYS else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_personal(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace every personal field, also nested ones, by a marker."""
    return _scrub(event_dict)  # type: ignore[no-any-return,unused-ignore]


def configure_logging(service: str, level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and the standard library (aiokafka, uvicorn) to one JSON stream."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_personal,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "faststream.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def bind_correlation(correlation_id: str | None, **extra: Any) -> None:
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id, **extra)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return,unused-ignore]
