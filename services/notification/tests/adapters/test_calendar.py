"""Whatever the text and names of an invite, icalendar reads back
exactly what went in, and no line is longer than 75 octets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eropaf_notification.adapters.calendar import (
    AMSTERDAM,
    Attendee,
    CalendarMethod,
    build_invite,
)

from ..mailparse import event_of

pytestmark = pytest.mark.unit

# Any text a template or the roster may give: no surrogates (not UTF-8), no lone CR (a line
# break is written as CRLF or LF), no other control characters (not allowed in iCalendar).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n"), max_size=200
)
# Names without a backslash: RFC 5545 gives it no meaning in a parameter value, but icalendar's
# reader takes it as an escape (and so reads back what its own writer wrote the same way).
NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(summary=TEXT, description=TEXT, location=TEXT, names=st.lists(NAME, min_size=1, max_size=3))
def test_text_and_names_read_back_exactly(
    summary: str, description: str, location: str, names: list[str]
) -> None:
    start = datetime(2026, 10, 25, 9, tzinfo=AMSTERDAM)
    attendees = [Attendee(f"m{n}@staff.example.org", name) for n, name in enumerate(names)]
    raw = build_invite(
        method=CalendarMethod.REQUEST,
        uid="visit-abc@eropaf.test",
        sequence=3,
        start=start,
        end=start + timedelta(hours=1),
        summary=summary,
        description=description,
        location=location,
        organizer=Attendee("planning@eropaf.test", 'Vroeg Eropaf; planning, "team"'),
        attendees=attendees,
        stamp=datetime(2026, 10, 20, 8, 0, 1, tzinfo=UTC),
    )
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    raw.decode()  # never cut inside a character
    cal = icalendar.Calendar.from_ical(raw)
    event = event_of(cal)
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == description
    assert str(event["LOCATION"]) == location
    assert str(event["ORGANIZER"].params["CN"]) == 'Vroeg Eropaf; planning, "team"'
    found = event["ATTENDEE"] if isinstance(event["ATTENDEE"], list) else [event["ATTENDEE"]]
    assert [(str(a), str(a.params["CN"])) for a in found] == [
        (f"mailto:{a.email}", a.name) for a in attendees
    ]
    assert int(event["SEQUENCE"]) == 3
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTSTAMP") == datetime(2026, 10, 20, 8, 0, 1, tzinfo=UTC)


def test_an_address_with_a_space_or_quote_is_refused() -> None:
    start = datetime(2026, 11, 10, 9, tzinfo=AMSTERDAM)
    with pytest.raises(ValueError, match="e-mail address"):
        build_invite(
            method=CalendarMethod.CANCEL,
            uid="visit-abc@eropaf.test",
            sequence=0,
            start=start,
            end=start + timedelta(hours=1),
            summary="s",
            description="d",
            location="l",
            organizer=Attendee("planning@eropaf.test", "Vroeg Eropaf"),
            attendees=[Attendee('x"@staff.example.org', "X")],
            stamp=start,
        )
