"""The service on the real broker, PostgreSQL and SMTP server: who receives what for every
event type, invites that parse back with the right local times across daylight saving, the
same UID with a rising SEQUENCE, the duo change, the delivery events, and no personal value
of the pipeline's input in any message, headers included."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from eropaf_contracts.events import OutreachKind, StaffRole
from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_platform.testing.topics import read_to_end
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import SmtpServer, StartNotification, publish
from ..factories import cancelled, decided, envelope, planned, rescheduled, staff, unplanned
from ..mailparse import all_text, calendars, event_of, parse
from ..privacy import HOUSEHOLD, leaks

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")


def address(code: str) -> str:
    return f"{code}@staff.example.org"


async def wait_mail(smtp: SmtpServer, code: str, count: int, timeout: float = 30.0) -> list:
    async def enough() -> list | None:
        got = smtp.to(address(code))
        return got if len(got) >= count else None

    return await wait_until_async(enough, timeout=timeout, message=f"{count} mails to {code}")


def invites(smtp: SmtpServer, code: str) -> list[tuple[str, int, str, object]]:
    return [calendar_of(m.raw) for m in smtp.to(address(code)) if calendars(parse(m.raw))]


def calendar_of(raw: bytes) -> tuple[str, int, str, object]:
    cal = calendars(parse(raw))[0][1]
    event = event_of(cal)
    return str(cal["METHOD"]), int(event["SEQUENCE"]), str(event["UID"]), event


async def test_every_event_type_reaches_the_right_people(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    tag: str,
) -> None:
    await start_notification()
    ann, bob, cas, coord, shv, late = (
        f"{tag}-{n}" for n in ("ann", "bob", "cas", "coord", "shv", "late")
    )
    # A visit with someone the roster has not told about yet: owed now, sent once known.
    early = planned(f"{tag}-early", day=date(2026, 11, 10), duo=(late, shv), case=f"{tag}-c0")
    await publish(kafka_bootstrap_servers, envelope(early))
    roster = [
        staff(ann),
        staff(bob, StaffRole.MEDEWERKER, organisatie="mitros", taal="en"),
        staff(cas),
        staff(coord, StaffRole.COORDINATOR, gemeenten=["0356", "0353"]),
        staff(shv),
        staff(f"{tag}-other", StaffRole.COORDINATOR, organisatie="elders", gemeenten=["0001"]),
    ]
    await publish(kafka_bootstrap_servers, *(envelope(s) for s in roster))

    # Plan (Friday before summer time) -> reschedule to Monday after it, bob -> cas -> cancel.
    first = planned(
        f"{tag}-v1", day=date(2026, 3, 27), dagdeel="Middag", duo=(ann, bob), case=f"{tag}-c1"
    )
    await publish(kafka_bootstrap_servers, envelope(first))
    await wait_mail(smtp_server, ann, 1)
    moved = rescheduled(first, day=date(2026, 3, 30), duo=(ann, cas))
    await publish(kafka_bootstrap_servers, envelope(moved))
    await wait_mail(smtp_server, ann, 2)
    gone = cancelled(moved)
    await publish(kafka_bootstrap_servers, envelope(gone))
    await wait_mail(smtp_server, ann, 3)

    phone = decided(f"{tag}-c2", OutreachKind.PHONE)
    home = decided(f"{tag}-c3", OutreachKind.HOME_VISIT)
    alert = unplanned(f"{tag}-c3")
    await publish(kafka_bootstrap_servers, envelope(phone), envelope(home), envelope(alert))
    await wait_mail(smtp_server, coord, 3)
    await wait_mail(smtp_server, shv, 1)
    await wait_mail(smtp_server, ann, 4)  # ann serves 0356 in the team: the phone case too
    # The invite to the duo with the unknown member waited for the roster to name them.
    assert smtp_server.to(address(late)) == []
    assert all(
        early.case_ref not in str(parse(m.raw)["Subject"]) for m in smtp_server.to(address(shv))
    )
    await publish(kafka_bootstrap_servers, envelope(staff(late)))
    await wait_mail(smtp_server, late, 1)
    await wait_mail(smtp_server, shv, 2)

    # ann: REQUEST 0, REQUEST 1, CANCEL 2 of one UID, at 13:00 local either side of DST.
    steps = invites(smtp_server, ann)
    assert [(method, seq) for method, seq, _, _ in steps] == [
        ("REQUEST", 0),
        ("REQUEST", 1),
        ("CANCEL", 2),
    ]
    assert len({uid for _, _, uid, _ in steps}) == 1
    starts = [event.decoded("DTSTART") for _, _, _, event in steps]  # type: ignore[attr-defined]
    assert [s.astimezone(AMS).replace(tzinfo=None).isoformat() for s in starts] == [
        "2026-03-27T13:00:00",
        "2026-03-30T13:00:00",
        "2026-03-30T13:00:00",
    ]
    assert [s.utcoffset() for s in starts] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    assert str(steps[2][3]["STATUS"]) == "CANCELLED"  # type: ignore[index]
    # bob: the invite, then a CANCEL naming only him; cas: a REQUEST at SEQUENCE 1, then the cancel.
    bob_steps = invites(smtp_server, bob)
    assert [(m, s) for m, s, _, _ in bob_steps] == [("REQUEST", 0), ("CANCEL", 1)]
    assert str(bob_steps[1][3]["ATTENDEE"]) == f"mailto:{address(bob)}"  # type: ignore[index]
    assert parse(smtp_server.to(address(bob))[0].raw)["Subject"].startswith("Home visit")
    cas_steps = invites(smtp_server, cas)
    assert [(m, s) for m, s, _, _ in cas_steps] == [("REQUEST", 1), ("CANCEL", 2)]
    # coordinator: two new cases and the alert; the team member serving 0356: the phone case.
    subjects = sorted(str(parse(m.raw)["Subject"]) for m in smtp_server.to(address(coord)))
    assert sum("Nieuwe casus" in s for s in subjects) == 2
    assert sum("niet ingepland" in s for s in subjects) == 1
    shv_subjects = [str(parse(m.raw)["Subject"]) for m in smtp_server.to(address(shv))]
    assert any(phone.case_ref in s and "Nieuwe casus" in s for s in shv_subjects)
    assert not any(home.case_ref in s for s in shv_subjects)
    assert smtp_server.to(address(f"{tag}-other")) == []

    # Nothing doubled; no household value anywhere (the input's personal data never came in).
    mine = [m for m in smtp_server.snapshot() if any(tag in r for r in m.rcpt_tos)]
    assert len({m.message_id for m in mine}) == len(mine)
    for m in mine:
        text = all_text(parse(m.raw))
        assert leaks(text) == [], leaks(text)
        assert HOUSEHOLD["naam"] not in m.raw.decode(errors="replace")

    # Each delivery is published.
    async def delivered() -> set[str] | None:
        records = await read_to_end(kafka_bootstrap_servers, NOTIFICATION_DELIVERIES_TOPIC)
        ids = {
            orjson.loads(r.value)["data"]["message_id"]
            for r in records
            if orjson.loads(r.value)["type"] == "eropaf.notification.delivered"
        }
        return ids if {m.message_id for m in mine} <= ids else None

    await wait_until_async(delivered, timeout=30)

    # The phone case decided again as a home visit: the coordinator is told again (a new
    # version), the counsellor not (a home visit is not team work); told twice, once.
    changed = decided(f"{tag}-c2", OutreachKind.HOME_VISIT, phone.decided_at + timedelta(hours=1))
    await publish(kafka_bootstrap_servers, envelope(changed), envelope(changed))
    got = await wait_mail(smtp_server, coord, 4)
    new = parse(got[-1].raw)
    assert changed.case_ref in str(new["Subject"])
    assert str(new["Subject"]).startswith("Besluit gewijzigd (huisbezoek)")
    assert "aanpak was: telefonisch contact" in all_text(new)
    # Back to phone (same case, so after the repeat on its partition): both are told, and
    # nothing came of the repeat.
    back = decided(f"{tag}-c2", OutreachKind.PHONE, phone.decided_at + timedelta(hours=2))
    await publish(kafka_bootstrap_servers, envelope(back))
    await wait_mail(smtp_server, shv, 3)
    await wait_mail(smtp_server, coord, 5)
    assert len(smtp_server.to(address(coord))) == 5
    assert len(smtp_server.to(address(shv))) == 3
