"""iCalendar invites (RFC 5545/5546): the event written out here, the ``VTIMEZONE`` made by the
icalendar library.

One ``UID`` per visit, ``SEQUENCE`` from scheduling's event, ``DTSTART``/``DTEND`` in local
time with ``TZID=Europe/Amsterdam`` and its ``VTIMEZONE``, ``ORGANIZER`` the system address
(never an attendee), the duo as ``ATTENDEE``s. A member who left the duo gets a ``CANCEL``
naming only them (RFC 5546 §3.2.5); a cancelled visit a ``CANCEL`` with ``STATUS:CANCELLED``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import icalendar

__all__ = ["AMSTERDAM", "Attendee", "CalendarMethod", "build_invite", "visit_uid"]

TZID = "Europe/Amsterdam"
AMSTERDAM = ZoneInfo(TZID)
PRODID = "-//Eropaf//Vroeg Eropaf notification//NL"


class CalendarMethod(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str


def visit_uid(visit_id: str, domain: str) -> str:
    return f"visit-{visit_id}@{domain}"


def build_invite(
    *,
    method: CalendarMethod,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    location: str,
    organizer: Attendee,
    attendees: Sequence[Attendee],
    stamp: datetime,
    cancelled: bool = False,
) -> bytes:
    """The calendar object of one invite or cancel, serialised (CRLF lines)."""
    if any(a.email.lower() == organizer.email.lower() for a in attendees):
        raise ValueError("the organizer must not be one of the attendees")
    local_start = start.astimezone(AMSTERDAM)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method.value}",
    ]
    event = [
        "BEGIN:VEVENT",
        f"UID:{_text(uid)}",
        f"SEQUENCE:{int(sequence)}",
        f"DTSTAMP:{stamp.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"DTSTART;TZID={TZID}:{local_start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={TZID}:{end.astimezone(AMSTERDAM):%Y%m%dT%H%M%S}",
        f"SUMMARY:{_text(summary)}",
        f"DESCRIPTION:{_text(description)}",
        f"LOCATION:{_text(location)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        f"ORGANIZER;CN={_param(organizer.name)}:mailto:{_address(organizer.email)}",
        *(
            f"ATTENDEE;CN={_param(a.name)};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;"
            f"RSVP=FALSE:mailto:{_address(a.email)}"
            for a in attendees
        ),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    # The VTIMEZONE goes before the event it defines the TZID of; it is the same for every
    # invite of a year, so it is made (by icalendar, from the zoneinfo rules) once per year.
    return (
        b"".join(_fold(line) for line in lines)
        + vtimezone(local_start.year)
        + b"".join(_fold(line) for line in event)
    )


# The event is written out here rather than with icalendar's objects (measured: they took
# about as much CPU as all the rest of composing a message). RFC 5545 §3.1 and §3.3.11,
# RFC 6868 for parameter values; the tests read every invite back with icalendar.
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", ";": "\\;", ",": "\\,", "\n": "\\n", "\r": None})
_PARAM_ESCAPES = str.maketrans({"^": "^^", "\n": "^n", '"': "^'", "\r": None})
_CONTROLS = {c: None for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)}


def _text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and line breaks escaped."""
    return value.replace("\r\n", "\n").translate(_TEXT_ESCAPES).translate(_CONTROLS)


def _param(value: str) -> str:
    """A parameter value, quoted (so ``:;,`` may occur in it), RFC 6868 escapes inside."""
    return '"' + value.replace("\r\n", "\n").translate(_PARAM_ESCAPES).translate(_CONTROLS) + '"'


def _address(email: str) -> str:
    if any(c in email for c in ' \t\r\n"') or not email.isprintable():
        raise ValueError("an e-mail address with a space, quote or control character")
    return email


def _fold(line: str) -> bytes:
    """One content line, folded into lines of at most 75 octets, never inside a UTF-8
    character; CRLF after each."""
    data = line.encode()
    if len(data) <= 75:
        return data + b"\r\n"
    out = []
    start, limit = 0, 75
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:  # a continuation byte: cut before its character
            cut -= 1
        out.append(data[start:cut])
        start, limit = cut, 74  # a continuation line starts with a space
    out.append(data[start:])
    return b"\r\n ".join(out) + b"\r\n"


@functools.lru_cache(maxsize=16)
def vtimezone(year: int) -> bytes:
    """``VTIMEZONE`` of Europe/Amsterdam covering ``year`` and the next, serialised."""
    component = icalendar.Timezone.from_tzinfo(
        AMSTERDAM, first_date=date(year, 1, 1), last_date=date(year + 2, 1, 1)
    )
    data: bytes = component.to_ical()
    return data
