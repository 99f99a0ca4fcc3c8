from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from eropaf_contracts.events import DeliveryChannel, OutreachKind, StaffRole
from eropaf_notification.domain import rules
from eropaf_notification.domain.model import MessageKind, VisitStatus

from ..factories import AMS, cancelled, decided, member, planned, rescheduled, unplanned

pytestmark = pytest.mark.unit

ROSTER = [
    member("coord", StaffRole.COORDINATOR, gemeenten=["0356", "0353"]),
    member("coord-other", StaffRole.COORDINATOR, organisatie="other-team", gemeenten=["0001"]),
    member("shv1"),
    member("shv2", gemeenten=["0353"]),
    member("emp", StaffRole.MEDEWERKER, organisatie="mitros"),
    member("gone", StaffRole.COORDINATOR, active=False),
]


def who(intents: list, kind: MessageKind | None = None) -> list[str]:
    return sorted(i.recipient for i in intents if kind is None or i.kind is kind)


def test_planned_visit_invites_both_members_of_the_duo() -> None:
    intents = rules.visit_planned(planned(duo=("ann", "bob"), sequence=0))
    assert who(intents, MessageKind.VISIT_REQUEST) == ["ann", "bob"]
    assert {i.version for i in intents} == {0}
    assert len({i.notification_id for i in intents}) == 2


def test_reschedule_in_time_keeps_the_fact_and_raises_the_version() -> None:
    first = planned()
    moved = rescheduled(first, day=date(2026, 11, 11))
    before, after = rules.visit_planned(first), rules.visit_rescheduled(moved)
    assert who(after, MessageKind.VISIT_REQUEST) == ["ann", "bob"]
    assert {i.fact for i in before} == {i.fact for i in after}
    assert {i.version for i in after} == {1}
    assert not {i.notification_id for i in before} & {i.notification_id for i in after}


def test_duo_change_cancels_to_the_leaver_and_invites_the_joiner() -> None:
    moved = rescheduled(planned(duo=("ann", "bob")), duo=("ann", "cas"))
    intents = rules.visit_rescheduled(moved)
    assert who(intents, MessageKind.VISIT_REQUEST) == ["ann", "cas"]
    assert who(intents, MessageKind.VISIT_LEFT) == ["bob"]


def test_cancelled_visit_cancels_to_the_duo() -> None:
    intents = rules.visit_cancelled(cancelled(planned()))
    assert who(intents, MessageKind.VISIT_CANCELLED) == ["ann", "bob"]
    assert {i.version for i in intents} == {1}
    assert all(not i.routine for i in intents)


def test_home_visit_case_tells_the_team_coordinator_only() -> None:
    intents = rules.case_opened(decided(outreach=OutreachKind.HOME_VISIT), ROSTER)
    assert who(intents) == ["coord"]
    assert all(i.routine for i in intents)


def test_phone_case_also_tells_the_team_serving_the_municipality() -> None:
    intents = rules.case_opened(decided(outreach=OutreachKind.PHONE), ROSTER)
    assert who(intents) == ["coord", "shv1"]


def test_case_opened_is_one_fact_per_case_whatever_the_decision() -> None:
    a = rules.case_opened(decided(outreach=OutreachKind.PHONE), ROSTER)
    b = rules.case_opened(decided(outreach=OutreachKind.LETTER), ROSTER)
    assert {i.notification_id for i in a} == {i.notification_id for i in b}


def test_unplanned_case_alerts_the_municipality_coordinators_immediately() -> None:
    intents = rules.case_unplanned(unplanned(), ROSTER)
    assert who(intents, MessageKind.CASE_UNPLANNED) == ["coord"]
    assert not any(i.routine for i in intents)


def test_webhook_copies_for_members_and_team_with_a_webhook() -> None:
    intents = rules.case_opened(decided(outreach=OutreachKind.PHONE), ROSTER)
    out = rules.with_webhooks(
        intents, {"shv1": "https://chat/1", "lekstroom-team": "x"}, team="lekstroom-team"
    )
    hooks = sorted(i.recipient for i in out if i.channel is DeliveryChannel.WEBHOOK)
    assert hooks == ["lekstroom-team", "shv1"]
    assert len({i.notification_id for i in out}) == len(out)


@pytest.mark.parametrize(
    ("visit_day", "now", "due"),
    [
        (date(2026, 11, 10), datetime(2026, 11, 9, 7, 59, tzinfo=AMS), False),  # Tue, Mon early
        (date(2026, 11, 10), datetime(2026, 11, 9, 8, 0, tzinfo=AMS), True),
        (date(2026, 11, 9), datetime(2026, 11, 6, 8, 0, tzinfo=AMS), True),  # Mon -> Friday
        (date(2026, 11, 9), datetime(2026, 11, 7, 12, 0, tzinfo=AMS), True),  # late: Saturday
        (date(2026, 11, 9), datetime(2026, 11, 5, 12, 0, tzinfo=AMS), False),  # too early
        (date(2026, 11, 9), datetime(2026, 11, 9, 7, 0, tzinfo=AMS), False),  # the day itself
    ],
)
def test_reminder_the_working_day_before(visit_day: date, now: datetime, due: bool) -> None:
    visit = rules.visit_of(planned(day=visit_day))
    assert rules.reminder_due(visit, now, time(8)) is due


def test_a_public_holiday_is_no_working_day() -> None:
    # Monday 28 December 2026 follows Christmas (Friday 25th) and a weekend.
    holidays = {date(2026, 12, 25), date(2026, 12, 26)}
    assert rules.previous_working_day(date(2026, 12, 28), holidays) == date(2026, 12, 24)
    assert rules.previous_working_day(date(2026, 12, 28)) == date(2026, 12, 25)
    visit = rules.visit_of(planned(day=date(2026, 12, 28)))
    on_christmas_eve = datetime(2026, 12, 24, 9, 0, tzinfo=AMS)
    assert rules.reminder_due(visit, on_christmas_eve, time(8), holidays) is True
    assert rules.reminder_due(visit, on_christmas_eve, time(8)) is False


@pytest.mark.parametrize("holidays", [set(), {date(2026, 12, 24), date(2026, 12, 25)}])
def test_the_reminder_window_holds_every_visit_a_reminder_is_due_for(holidays: set[date]) -> None:
    for offset in range(60):  # each day from 1 November 2026, weekends and Christmas too
        today = date(2026, 11, 1) + timedelta(days=offset)
        first, last = rules.reminder_window(today, holidays)
        assert today < first <= last <= today + timedelta(days=14)
        late = datetime.combine(today, time(23, 0), AMS)
        for ahead in range(1, 30):
            day = today + timedelta(days=ahead)
            visit = rules.visit_of(planned(day=day))
            due = rules.reminder_due(visit, late, time(8), holidays)
            assert due is (first <= day <= last), (today, day)


def test_no_reminder_for_a_cancelled_visit() -> None:
    visit = rules.visit_of(cancelled(planned(day=date(2026, 11, 10))))
    assert visit.status is VisitStatus.CANCELLED
    assert rules.reminders([visit], datetime(2026, 11, 9, 9, 0, tzinfo=AMS), time(8)) == []


def test_reminders_go_to_the_duo_once_per_sequence() -> None:
    visit = rules.visit_of(planned(day=date(2026, 11, 10)))
    now = datetime(2026, 11, 9, 9, 0, tzinfo=AMS)
    a = rules.reminders([visit], now, time(8))
    b = rules.reminders([visit], now.replace(hour=15), time(8))
    assert who(a, MessageKind.REMINDER) == ["ann", "bob"]
    assert [i.notification_id for i in a] == [i.notification_id for i in b]


def test_digest_holds_new_cases_tomorrows_visits_and_overdue_attempts() -> None:
    me = member("ann", bericht="dagelijks")
    held = rules.case_opened(decided("case-9"), [member("ann", StaffRole.COORDINATOR)])
    tomorrow = rules.visit_of(planned("v-t", day=date(2026, 11, 10), duo=("ann", "bob")))
    past = rules.visit_of(planned("v-p", day=date(2026, 11, 5), duo=("ann", "bob"), case="case-2"))
    other = rules.visit_of(planned("v-o", day=date(2026, 11, 10), duo=("cas", "bob")))
    intent = rules.digest(me, date(2026, 11, 9), held, [tomorrow, past, other])
    assert intent is not None and intent.kind is MessageKind.DIGEST
    assert intent.fact == "digest:ann:2026-11-09"
    assert [c.case_ref for c in intent.facts.new_cases] == [held[0].facts.case_ref]
    assert [v.case_ref for v in intent.facts.tomorrow] == [tomorrow.case_ref]
    assert [v.case_ref for v in intent.facts.overdue] == [past.case_ref]


def test_no_digest_when_nothing_to_say() -> None:
    assert rules.digest(member("ann", bericht="dagelijks"), date(2026, 11, 9), [], []) is None


def test_an_invite_superseded_before_it_went_out_is_skipped() -> None:
    from eropaf_notification.domain.delivery import obsolete

    first = planned()
    moved = rescheduled(first, day=date(2026, 11, 12))
    old_invite = rules.visit_planned(first)[0]
    new_invite = rules.visit_rescheduled(moved)[0]
    current = rules.visit_of(moved)
    assert obsolete(old_invite, current) == "superseded by SEQUENCE 1"
    assert obsolete(new_invite, current) is None
    reminder = rules.reminders(
        [rules.visit_of(first)], datetime(2026, 11, 9, 9, tzinfo=AMS), time(8)
    )[0]
    assert obsolete(reminder, current) == "visit changed since the reminder was due"
    assert obsolete(reminder, rules.visit_of(cancelled(first))) == "visit cancelled"
