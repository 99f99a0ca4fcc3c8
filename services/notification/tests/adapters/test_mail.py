from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from eropaf_notification.adapters.mail import MailIdentity, compose
from eropaf_notification.adapters.rendering import Recipient, Renderer
from eropaf_notification.domain import rules
from eropaf_notification.domain.model import Intent, MessageKind

from ..factories import cancelled, planned, rescheduled
from ..mailparse import all_text, calendars, event_of, parse, parts

pytestmark = pytest.mark.unit

AMS = ZoneInfo("Europe/Amsterdam")
IDENTITY = MailIdentity("noreply@eropaf.test", "planning@eropaf.test", "eropaf.test")
RENDERER = Renderer({"0356": "Nieuwegein"})
PEOPLE = {
    "ann": Recipient("ann", "Ann de Vries", "ann@staff.example.org", "nl"),
    "bob": Recipient("bob", "Bob Smith", "bob@staff.example.org", "en"),
    "cas": Recipient("cas", "Cas Jansen", "cas@staff.example.org", "nl"),
}


def sent(intent: Intent) -> bytes:
    attendees = [PEOPLE[c] for c in intent.facts.attendees]
    return compose(
        kind=intent.kind,
        facts=intent.facts,
        recipient=PEOPLE[intent.recipient],
        attendees=attendees,
        notification_id=intent.notification_id,
        identity=IDENTITY,
        renderer=RENDERER,
        now=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    )


def test_invite_structure_and_headers() -> None:
    intent = rules.visit_planned(planned())[0]
    raw = sent(intent)
    message = parse(raw)
    assert b'Content-Type: text/calendar; charset="utf-8"; method=REQUEST' in raw
    assert message.get_content_type() == "multipart/mixed"
    alt = parts(message)[0]
    assert alt.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in parts(alt)]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    cal_part = parts(alt)[2]
    assert cal_part.get_param("method") == "REQUEST"
    assert cal_part.get_content_charset() == "utf-8"
    attachment = parts(message)[1]
    assert attachment.get_filename() == "invite.ics"
    assert message["Message-ID"] == f"<{intent.notification_id}@eropaf.test>"
    assert intent.facts.case_ref in message["Subject"]
    (type_a, a), (type_b, b) = calendars(message)
    assert (type_a, type_b) == ("text/calendar", "application/ics")
    assert a.to_ical() == b.to_ical()
    assert str(a["METHOD"]) == "REQUEST"
    event = event_of(a)
    assert str(event["UID"]) == f"visit-{intent.facts.visit_id}@eropaf.test"
    assert str(event["ORGANIZER"]) == "mailto:planning@eropaf.test"
    assert sorted(str(x) for x in event["ATTENDEE"]) == [
        "mailto:ann@staff.example.org",
        "mailto:bob@staff.example.org",
    ]
    assert event["DTSTART"].params["TZID"] == "Europe/Amsterdam"
    assert "DTSTAMP" in event
    assert [str(tz["TZID"]) for tz in a.walk("VTIMEZONE")] == ["Europe/Amsterdam"]


def test_language_follows_the_recipient() -> None:
    intents = {i.recipient: i for i in rules.visit_planned(planned())}
    assert parse(sent(intents["ann"]))["Subject"].startswith("Huisbezoek dinsdag")
    assert parse(sent(intents["bob"]))["Subject"].startswith("Home visit Tuesday")


def _around_dst() -> list[date]:
    # The weeks of the 2026 changes: 29 March (CET -> CEST) and 25 October (CEST -> CET).
    return [date(2026, 3, 25) + timedelta(days=n) for n in range(8)] + [
        date(2026, 10, 21) + timedelta(days=n) for n in range(8)
    ]


@pytest.mark.parametrize("day", _around_dst(), ids=str)
def test_local_times_survive_parse_back_across_daylight_saving(day: date) -> None:
    intent = rules.visit_planned(planned(day=day, dagdeel="Middag"))[0]
    event = event_of(calendars(parse(sent(intent)))[0][1])
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start.astimezone(AMS).time() == time(13, 0)
    assert end.astimezone(AMS).time() == time(14, 0)
    assert start.astimezone(AMS).date() == day
    expected_offset = (
        timedelta(hours=2) if date(2026, 3, 29) <= day < date(2026, 10, 25) else timedelta(hours=1)
    )
    assert start.utcoffset() == expected_offset


def test_plan_reschedule_cancel_keeps_uid_and_raises_sequence() -> None:
    first = planned(day=date(2026, 3, 27))
    moved = rescheduled(first, day=date(2026, 3, 30))  # over the change to summer time
    gone = cancelled(moved)
    steps = [
        rules.visit_planned(first)[0],
        rules.visit_rescheduled(moved)[0],
        rules.visit_cancelled(gone)[0],
    ]
    events = [event_of(calendars(parse(sent(i)))[0][1]) for i in steps]
    methods = [str(calendars(parse(sent(i)))[0][1]["METHOD"]) for i in steps]
    assert len({str(e["UID"]) for e in events}) == 1
    assert [int(e["SEQUENCE"]) for e in events] == [0, 1, 2]
    assert methods == ["REQUEST", "REQUEST", "CANCEL"]
    assert [str(e["STATUS"]) for e in events] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert events[1].decoded("DTSTART").astimezone(AMS).hour == 9
    assert events[1].decoded("DTSTART").utcoffset() == timedelta(hours=2)


def test_leaver_gets_a_cancel_naming_only_them() -> None:
    intents = rules.visit_rescheduled(rescheduled(planned(duo=("ann", "bob")), duo=("ann", "cas")))
    left = next(i for i in intents if i.kind is MessageKind.VISIT_LEFT)
    cal = calendars(parse(sent(left)))[0][1]
    event = event_of(cal)
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(event["ATTENDEE"]) == "mailto:bob@staff.example.org"
    assert str(event["STATUS"]) != "CANCELLED"
    joined = next(i for i in intents if i.recipient == "cas")
    assert str(calendars(parse(sent(joined)))[0][1]["METHOD"]) == "REQUEST"


def test_reminder_has_no_calendar_part() -> None:
    visit = rules.visit_of(planned(day=date(2026, 11, 10)))
    intent = rules.reminders([visit], datetime(2026, 11, 9, 9, tzinfo=AMS), time(8))[0]
    message = parse(sent(intent))
    assert message.get_content_type() == "multipart/alternative"
    assert calendars(message) == []
    assert intent.facts.case_ref in message["Subject"]
    assert "Herinnering" in all_text(message)


async def test_rendering_in_worker_processes_gives_the_same_message() -> None:
    from eropaf_notification.adapters.dispatch import Dispatcher
    from eropaf_notification.adapters.smtp import Mailer
    from eropaf_notification.domain.delivery import SendResult
    from eropaf_notification.domain.model import StaffMember
    from eropaf_notification.service_layer.services import Job
    from eropaf_notification.service_layer.unit_of_work import Claimed

    from ..factories import member

    class Keep(Mailer):
        sent: list[bytes] = []

        async def send(self, message: object, *, sender: str, recipients: object) -> SendResult:
            assert isinstance(message, bytes)
            self.sent.append(message)
            return SendResult.sent()

    intent = rules.visit_planned(planned(duo=("ann", "bob")))[0]
    staff: dict[str, StaffMember] = {c: member(c) for c in ("ann", "bob")}
    job = Job(Claimed(intent, 0, datetime(2026, 11, 2, tzinfo=UTC)), staff["ann"], staff, None)
    dispatcher = Dispatcher(renderer=RENDERER, identity=IDENTITY, mailer=Keep(), render_workers=1)
    try:
        result = await dispatcher.send(job, datetime(2026, 11, 2, 8, tzinfo=UTC))
    finally:
        dispatcher.close()
    assert result.status.value == "sent"
    message = parse(Keep.sent[0])
    assert message["Message-ID"] == f"<{intent.notification_id}@eropaf.test>"
    assert str(calendars(message)[0][1]["METHOD"]) == "REQUEST"


def test_headers_and_bodies_read_back_exactly() -> None:
    odd = Recipient("ann", 'Ännë "de" Vries, Jr.', "ann@staff.example.org", "nl")
    intent = rules.visit_planned(planned(duo=("ann", "bob")))[0]
    raw = compose(
        kind=intent.kind,
        facts=intent.facts,
        recipient=odd,
        attendees=[odd, PEOPLE["bob"]],
        notification_id=intent.notification_id,
        identity=IDENTITY,
        renderer=RENDERER,
        now=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    )
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF lines only
    message = parse(raw)
    assert message["To"].addresses[0].display_name == odd.naam
    assert message["To"].addresses[0].addr_spec == odd.email
    assert " ".join(message["Subject"].split()) == message["Subject"]
    assert intent.facts.case_ref in message["Subject"]
    text = parts(parts(message)[0])[0].get_content()
    assert odd.naam in text
    (_, cal), _ = calendars(message)
    names = sorted(str(a.params["CN"]) for a in event_of(cal)["ATTENDEE"])
    assert names == sorted([odd.naam, "Bob Smith"])


def test_a_line_break_in_a_header_value_is_refused() -> None:
    intent = rules.visit_planned(planned(duo=("ann", "bob")))[0]
    sneaky = Recipient("ann", "Ann\r\nBcc: x@example.org", "ann@staff.example.org", "nl")
    with pytest.raises(ValueError, match="line break"):
        compose(
            kind=intent.kind,
            facts=intent.facts,
            recipient=sneaky,
            attendees=[PEOPLE["bob"]],
            notification_id=intent.notification_id,
            identity=IDENTITY,
            renderer=RENDERER,
            now=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        )
