"""Reading sent messages back: parts, decoded text, the calendar (for assertions)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import icalendar


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def all_text(message: EmailMessage) -> str:
    """Headers and every decoded part, as one string to scan."""
    chunks = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        chunks.extend(f"{k}: {v}" for k, v in part.items())
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def calendars(message: EmailMessage) -> list[tuple[str, Any]]:
    """(content type, parsed calendar) of every calendar part and attachment."""
    out = []
    for part in message.walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.append((part.get_content_type(), icalendar.Calendar.from_ical(payload)))
    return out


def event_of(cal: icalendar.Calendar) -> Any:
    """The calendar's one VEVENT (typed loosely: its properties are many value types)."""
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, icalendar.Event)
    return event


def parts(message: EmailMessage) -> list[Any]:
    """The direct subparts of a multipart message."""
    payload = message.get_payload()
    assert isinstance(payload, list)
    return payload
