"""iCalendar invites (RFC 5545/5546) built with the icalendar library.

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

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
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
    """The calendar object of one invite or cancel, serialised (CRLF lines). Both members of
    a duo usually get the same one: it is made once and kept for a while."""
    if any(a.email.lower() == organizer.email.lower() for a in attendees):
        raise ValueError("the organizer must not be one of the attendees")
    for address in (organizer, *attendees):
        if any(c in address.email for c in ' \t\r\n"') or not address.email.isprintable():
            raise ValueError("an e-mail address with a space, quote or control character")
    return _invite(
        method,
        uid,
        sequence,
        start,
        end,
        _clean(summary),
        _clean(description),
        _clean(location),
        organizer,
        tuple(attendees),
        stamp,
        cancelled,
    )


# Control characters have no place in iCalendar text (RFC 5545 §3.3.11); a line break stays.
_CONTROLS = {c: None for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F)}


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").translate(_CONTROLS)


@functools.lru_cache(maxsize=256)
def _invite(
    method: CalendarMethod,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    location: str,
    organizer: Attendee,
    attendees: tuple[Attendee, ...],
    stamp: datetime,
    cancelled: bool,
) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method.value)
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", start.astimezone(AMSTERDAM))
    event.add("dtend", end.astimezone(AMSTERDAM))
    event.add("summary", summary)
    event.add("description", description)
    event.add("location", location)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    org = icalendar.vCalAddress(f"mailto:{organizer.email}")
    org.params["CN"] = icalendar.vText(organizer.name)
    event.add("organizer", org)
    for attendee in attendees:
        address = icalendar.vCalAddress(f"mailto:{attendee.email}")
        address.params["CN"] = icalendar.vText(attendee.name)
        address.params["ROLE"] = icalendar.vText("REQ-PARTICIPANT")
        address.params["PARTSTAT"] = icalendar.vText("NEEDS-ACTION")
        address.params["RSVP"] = icalendar.vText("FALSE")
        event.add("attendee", address, encode=False)
    cal.add_component(event)
    data: bytes = cal.to_ical()
    # The VTIMEZONE goes before the event it defines the TZID of; it is the same for every
    # invite of a year, so it is made (by icalendar, from the zoneinfo rules) once per year.
    marker = b"BEGIN:VEVENT\r\n"
    return data.replace(marker, vtimezone(start.astimezone(AMSTERDAM).year) + marker, 1)


@functools.lru_cache(maxsize=16)
def vtimezone(year: int) -> bytes:
    """``VTIMEZONE`` of Europe/Amsterdam covering ``year`` and the next, serialised."""
    component = icalendar.Timezone.from_tzinfo(
        AMSTERDAM, first_date=date(year, 1, 1), last_date=date(year + 2, 1, 1)
    )
    data: bytes = component.to_ical()
    return data
