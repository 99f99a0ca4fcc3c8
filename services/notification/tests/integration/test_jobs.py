"""The scheduled jobs on the real broker, PostgreSQL and SMTP server: the daily digest of a
staff member who chose ``dagelijks`` (and no routine mail to them before it), reminders the
working day before a visit (none for a cancelled one), neither doubled by a second run."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from eropaf_contracts.events import DeliveryChannel, OutreachKind, StaffRole, VisitCompleted
from eropaf_notification.adapters.calendar import AMSTERDAM
from eropaf_notification.domain.model import notification_id
from eropaf_notification.service_layer import services
from eropaf_notification.service_layer.unit_of_work import SqlNotificationUnitOfWork
from eropaf_platform.db import transaction
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import SmtpServer, StartNotification, publish, wait_staff_known
from ..factories import cancelled, decided, envelope, planned, staff
from ..mailparse import all_text, calendars, parse

pytestmark = pytest.mark.integration

TODAY = date(2026, 11, 9)  # a Monday


def address(code: str) -> str:
    return f"{code}@staff.example.org"


async def run_digests(service: Service, at: datetime) -> list[str]:
    async with transaction(service.sessions) as session:
        return await services.create_digests(SqlNotificationUnitOfWork(session), at, time(7))


async def run_reminders(service: Service, at: datetime) -> list[str]:
    async with transaction(service.sessions) as session:
        return await services.create_reminders(
            SqlNotificationUnitOfWork(session), at, time(8), services.Routing({})
        )


async def test_digest_for_dagelijks_and_nothing_routine_before_it(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    tag: str,
) -> None:
    service = await start_notification()
    daily, direct, mate = f"{tag}-daily", f"{tag}-direct", f"{tag}-mate"
    await publish(
        kafka_bootstrap_servers,
        envelope(staff(daily, StaffRole.COORDINATOR, bericht="dagelijks", taal="en")),
        envelope(staff(direct, StaffRole.COORDINATOR)),
        envelope(staff(mate)),
    )
    await wait_staff_known(service, daily, direct, mate)
    new_cases = [decided(f"{tag}-n{i}", OutreachKind.HOME_VISIT) for i in range(2)]
    tomorrow = planned(f"{tag}-t", day=date(2026, 11, 10), duo=(daily, mate), case=f"{tag}-ct")
    overdue = planned(f"{tag}-o", day=date(2026, 11, 5), duo=(daily, mate), case=f"{tag}-co")
    done = planned(f"{tag}-d", day=date(2026, 11, 4), duo=(daily, mate), case=f"{tag}-cd")
    completed = VisitCompleted(
        visit_id=done.visit_id,
        case_ref=done.case_ref,
        gemeentecode=done.gemeentecode,
        datum=done.datum,
        staff=done.staff,
        attempt=1,
        bereikt=True,
    )
    await publish(
        kafka_bootstrap_servers,
        *(envelope(e) for e in (*new_cases, tomorrow, overdue, done, completed)),
    )
    # The direct coordinator has both new cases at once; the dagelijks one only the invites.
    await wait_until_async(lambda: len(smtp_server.to(address(direct))) == 2, timeout=30)
    await wait_until_async(lambda: len(smtp_server.to(address(daily))) == 3, timeout=30)
    assert all(calendars(parse(m.raw)) for m in smtp_server.to(address(daily)))

    at = datetime.combine(TODAY, time(7, 30), AMSTERDAM)
    assert await run_digests(service, at.replace(hour=6)) == []  # before digest time
    made = await run_digests(service, at)
    assert len(made) == 1
    assert await run_digests(service, at.replace(hour=12)) == []  # once a day
    await wait_until_async(lambda: len(smtp_server.to(address(daily))) == 4, timeout=30)
    digest = parse(smtp_server.to(address(daily))[-1].raw)
    assert str(digest["Subject"]) == "Vroeg Eropaf daily digest Monday 9 November 2026"
    text = all_text(digest)
    assert all(c.case_ref in text for c in new_cases)
    assert "Home visits tomorrow (1)" in text and tomorrow.case_ref in text
    assert "Contact attempts still to record (1)" in text and overdue.case_ref in text
    assert done.case_ref not in text
    assert len(smtp_server.to(address(direct))) == 2  # no digest for a direct member


async def test_reminders_the_working_day_before_and_never_for_a_cancelled_visit(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    tag: str,
) -> None:
    service = await start_notification()
    ann, bob = f"{tag}-ann", f"{tag}-bob"
    await publish(kafka_bootstrap_servers, envelope(staff(ann)), envelope(staff(bob)))
    kept = planned(f"{tag}-k", day=date(2026, 11, 10), duo=(ann, bob), case=f"{tag}-ck")
    dropped = planned(f"{tag}-x", day=date(2026, 11, 10), duo=(ann, bob), case=f"{tag}-cx")
    await publish(
        kafka_bootstrap_servers, envelope(kept), envelope(dropped), envelope(cancelled(dropped))
    )
    await wait_until_async(lambda: len(smtp_server.to(address(ann))) >= 2, timeout=30)

    assert await run_reminders(service, datetime.combine(TODAY, time(7), AMSTERDAM)) == []
    made = await run_reminders(service, datetime.combine(TODAY, time(9), AMSTERDAM))
    again = await run_reminders(service, datetime.combine(TODAY, time(16), AMSTERDAM))
    mine = {
        notification_id(f"reminder:{v.visit_id}", code, v.sequence, DeliveryChannel.EMAIL)
        for v in (kept, dropped)
        for code in (ann, bob)
    }
    assert sorted(mine & set(made)) == sorted(
        notification_id(f"reminder:{kept.visit_id}", code, 0, DeliveryChannel.EMAIL)
        for code in (ann, bob)
    )
    assert again == []

    def reminders(code: str) -> list[str]:
        return [
            str(parse(m.raw)["Subject"])
            for m in smtp_server.to(address(code))
            if str(parse(m.raw)["Subject"]).startswith("Herinnering")
        ]

    await wait_until_async(
        lambda: len(reminders(ann)) == 1 and len(reminders(bob)) == 1, timeout=30
    )
    assert kept.case_ref in reminders(ann)[0]
    assert not any(dropped.case_ref in s for s in reminders(ann) + reminders(bob))
