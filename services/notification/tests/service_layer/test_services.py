from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import orjson
import pytest

from eropaf_contracts.events import OutreachKind, StaffRole
from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_notification.domain.delivery import Outcome, RetryPolicy, SendResult
from eropaf_notification.domain.model import MessageKind, VisitStatus
from eropaf_notification.service_layer import services

from ..factories import AMS, cancelled, decided, planned, rescheduled, staff, unplanned
from .fakes import FakeNotificationUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ROUTING = services.Routing({})


async def with_roster(*events: object) -> FakeNotificationUnitOfWork:
    uow = FakeNotificationUnitOfWork()
    for e in events:
        await services.on_staff_changed(uow, e)  # type: ignore[arg-type]
    return uow


async def test_a_visit_event_told_twice_owes_its_messages_once() -> None:
    uow = FakeNotificationUnitOfWork()
    event = planned()
    first = await services.on_visit_event(uow, event, NOW, ROUTING)
    again = await services.on_visit_event(uow, event, NOW, ROUTING)
    assert len(first) == 2 and again == []
    assert uow.commits == 2


async def test_visit_messages_are_owed_before_the_staff_are_known() -> None:
    uow = FakeNotificationUnitOfWork()
    await services.on_visit_event(uow, planned(duo=("ann", "bob")), NOW, ROUTING)
    assert sorted(i.recipient for i in uow.intents.by_status("pending")) == ["ann", "bob"]


async def test_an_older_visit_version_does_not_overwrite_the_copy() -> None:
    uow = FakeNotificationUnitOfWork()
    first = planned()
    moved = rescheduled(first, day=date(2026, 11, 12))
    await services.on_visit_event(uow, moved, NOW, ROUTING)
    await services.on_visit_event(uow, first, NOW, ROUTING)  # late redelivery
    assert uow.visits.rows[first.visit_id].datum == date(2026, 11, 12)
    assert len(uow.intents.rows) == 4  # both versions' invites are owed, once each


async def test_routine_mail_for_dagelijks_staff_is_held_for_the_digest() -> None:
    uow = await with_roster(
        staff("daily", StaffRole.COORDINATOR, bericht="dagelijks"),
        staff("direct", StaffRole.COORDINATOR),
    )
    await services.on_outreach_decided(uow, decided(outreach=OutreachKind.HOME_VISIT), NOW, ROUTING)
    assert [i.recipient for i in uow.intents.by_status("held")] == ["daily"]
    assert [i.recipient for i in uow.intents.by_status("pending")] == ["direct"]


async def test_a_changed_outreach_decision_is_told_again_as_a_new_version() -> None:
    uow = await with_roster(staff("coord", StaffRole.COORDINATOR), staff("shv"))
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    async def decide(outreach: OutreachKind, minutes: int, priority: int = 3) -> list[tuple]:
        event = decided(
            "c1", outreach, decided_at=at + timedelta(minutes=minutes), priority=priority
        )
        added = await services.on_outreach_decided(uow, event, NOW, ROUTING)
        intents = [uow.intents.rows[i].intent for i in added]
        return sorted((i.recipient, i.version, i.facts.previous_outreach) for i in intents)

    # Phone: the coordinator and the counsellor serving the municipality.
    assert await decide(OutreachKind.PHONE, 0) == [("coord", 1, None), ("shv", 1, None)]
    assert await decide(OutreachKind.PHONE, 0) == []  # the same decision again
    # Phone -> home visit: the coordinator is told again (a home visit is not team work).
    assert await decide(OutreachKind.HOME_VISIT, 10) == [("coord", 2, "phone")]
    assert await decide(OutreachKind.PHONE, 5) == []  # an older decision, redelivered late
    assert await decide(OutreachKind.HOME_VISIT, 20, priority=9) == []  # says nothing new
    assert await decide(OutreachKind.PHONE, 30) == [
        ("coord", 3, "home_visit"),
        ("shv", 3, "home_visit"),
    ]
    # Two changes in one consumed batch: each its own version.
    events = [
        decided("c1", OutreachKind.LETTER, decided_at=at + timedelta(minutes=40)),
        decided("c1", OutreachKind.HOME_VISIT, decided_at=at + timedelta(minutes=50)),
    ]
    added = await services.on_events(uow, events, NOW, ROUTING)
    versions = sorted(
        (uow.intents.rows[i].intent.recipient, uow.intents.rows[i].intent.version) for i in added
    )
    assert versions == [("coord", 4), ("coord", 5), ("shv", 4)]


async def test_a_digest_names_a_case_decided_again_once_with_its_latest_decision() -> None:
    uow = await with_roster(staff("daily", StaffRole.COORDINATOR, bericht="dagelijks"))
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    await services.on_outreach_decided(uow, decided("c1", OutreachKind.PHONE, at), NOW, ROUTING)
    later = decided("c1", OutreachKind.HOME_VISIT, at + timedelta(hours=1))
    await services.on_outreach_decided(uow, later, NOW, ROUTING)
    made = await services.create_digests(uow, datetime(2026, 11, 3, 7, 30, tzinfo=AMS), time(7))
    digest = uow.intents.rows[made[0]].intent
    assert [(c.case_ref, c.outreach) for c in digest.facts.new_cases] == [
        (later.case_ref, "home_visit")
    ]
    assert uow.intents.by_status("held") == []


async def test_alerts_and_visit_changes_are_never_held() -> None:
    uow = await with_roster(
        staff("coord", StaffRole.COORDINATOR, bericht="dagelijks"),
        staff("ann", bericht="dagelijks"),
    )
    await services.on_case_unplanned(uow, unplanned(), NOW, ROUTING)
    await services.on_visit_event(uow, cancelled(planned(duo=("ann", "bob"))), NOW, ROUTING)
    assert uow.intents.by_status("held") == []
    assert len(uow.intents.by_status("pending")) == 3


async def test_digest_takes_in_held_messages_once() -> None:
    uow = await with_roster(staff("daily", StaffRole.COORDINATOR, bericht="dagelijks"))
    await services.on_outreach_decided(uow, decided("c1"), NOW, ROUTING)
    await services.on_outreach_decided(uow, decided("c2"), NOW, ROUTING)
    await services.on_visit_event(
        uow, planned(day=date(2026, 11, 10), duo=("daily", "xyz")), NOW, ROUTING
    )
    morning = datetime(2026, 11, 9, 7, 30, tzinfo=AMS)
    assert await services.create_digests(uow, morning.replace(hour=6), time(7)) == []
    made = await services.create_digests(uow, morning, time(7))
    again = await services.create_digests(uow, morning.replace(hour=15), time(7))
    assert len(made) == 1 and again == []
    digest = uow.intents.rows[made[0]].intent
    assert digest.kind is MessageKind.DIGEST and digest.recipient == "daily"
    assert len(digest.facts.new_cases) == 2 and len(digest.facts.tomorrow) == 1
    assert uow.intents.by_status("held") == []
    assert {r.digest_id for r in uow.intents.rows.values() if r.status == "digested"} == {made[0]}


async def test_messages_held_after_the_days_digest_wait_for_the_next_one() -> None:
    uow = await with_roster(staff("daily", StaffRole.COORDINATOR, bericht="dagelijks"))
    await services.on_outreach_decided(uow, decided("c1"), NOW, ROUTING)
    monday = datetime(2026, 11, 9, 7, 30, tzinfo=AMS)
    [first] = await services.create_digests(uow, monday, time(7))
    await services.on_outreach_decided(uow, decided("c2"), NOW, ROUTING)
    assert await services.create_digests(uow, monday.replace(hour=15), time(7)) == []
    [held] = uow.intents.by_status("held")
    [second] = await services.create_digests(uow, monday + timedelta(days=1), time(7))
    assert second != first
    assert uow.intents.rows[held.notification_id].digest_id == second
    [case] = uow.intents.rows[second].intent.facts.new_cases
    assert case.case_ref == held.case_ref


async def test_reminders_are_owed_once_and_not_for_cancelled_visits() -> None:
    uow = FakeNotificationUnitOfWork()
    kept = planned("keep", day=date(2026, 11, 10))
    dropped = planned("drop", day=date(2026, 11, 10), case="case-2")
    await services.on_visit_event(uow, kept, NOW, ROUTING)
    await services.on_visit_event(uow, dropped, NOW, ROUTING)
    await services.on_visit_event(uow, cancelled(dropped), NOW, ROUTING)
    evening = datetime(2026, 11, 9, 18, 0, tzinfo=AMS)
    made = await services.create_reminders(uow, evening, time(8), ROUTING)
    assert await services.create_reminders(uow, evening, time(8), ROUTING) == []
    assert {uow.intents.rows[n].intent.facts.visit_id for n in made} == {kept.visit_id}
    assert uow.visits.rows[dropped.visit_id].status is VisitStatus.CANCELLED


async def _claim_one(uow: FakeNotificationUnitOfWork, now: datetime) -> services.Job:
    jobs = await services.claim_due(uow, now, limit=10, lease_s=60)
    assert len(jobs) == 1
    return jobs[0]


async def test_delivery_outcomes_are_recorded_and_published() -> None:
    uow = await with_roster(staff("ann"))
    await services.on_visit_event(uow, planned(duo=("ann",)), NOW, ROUTING)
    policy = RetryPolicy(initial_backoff_s=10, max_backoff_s=100, window_s=3600)
    job = await _claim_one(uow, NOW)
    assert job.recipient is not None and job.recipient.code == "ann"
    assert await services.claim_due(uow, NOW, limit=10, lease_s=60) == []  # leased
    [d] = await services.record_results(
        uow, [(job, SendResult.temporary("SMTP 451"), "<m>")], NOW, policy
    )
    assert d.outcome is Outcome.RETRY and d.next_attempt_at == NOW + timedelta(seconds=10)
    assert uow.published == []
    assert await services.claim_due(uow, NOW + timedelta(seconds=5), limit=10, lease_s=60) == []
    job = await _claim_one(uow, NOW + timedelta(seconds=10))
    [d] = await services.record_results(uow, [(job, SendResult.sent(), "<m>")], NOW, policy)
    assert d.outcome is Outcome.SENT
    [event] = uow.published
    assert event.topic == NOTIFICATION_DELIVERIES_TOPIC
    body = orjson.loads(event.value)
    assert body["type"] == "eropaf.notification.delivered"
    assert body["data"]["attempts"] == 2 and body["data"]["message_id"] == "<m>"


async def test_permanent_failure_and_exhausted_window_fail_with_a_reason() -> None:
    uow = await with_roster(staff("ann"), staff("bob"))
    await services.on_visit_event(uow, planned(duo=("ann", "bob")), NOW, ROUTING)
    policy = RetryPolicy(initial_backoff_s=10, max_backoff_s=100, window_s=15)
    jobs = sorted(
        await services.claim_due(uow, NOW, limit=10, lease_s=60), key=lambda j: j.intent.recipient
    )
    results = [
        (jobs[0], SendResult.permanent("SMTP 550: no such user"), "<a>"),
        (jobs[1], SendResult.temporary("SMTP 421"), "<b>"),
    ]
    decisions = await services.record_results(uow, results, NOW + timedelta(seconds=10), policy)
    assert [d.outcome for d in decisions] == [Outcome.FAILED, Outcome.FAILED]
    failed = [orjson.loads(m.value)["data"] for m in uow.published]
    assert failed[0]["reason"] == "SMTP 550: no such user"
    assert "SMTP 421" in failed[1]["reason"]
