"""Who is told what, for each fact (CONTRACT §4.3). Pure: events and roster in, intents out.

- a case opened with an outreach decision: the team's coordinators, and for phone or letter
  outreach the team's counsellors serving the municipality (routine: may wait for a digest);
- a planned visit: an invite to both members of the duo;
- a rescheduled visit: the same UID with the new SEQUENCE to whoever is in the duo now, and a
  cancel naming only them to whoever left it;
- a cancelled visit: a cancel to the duo it had;
- a case left unplanned: an alert to the coordinators of the municipality (immediate);
- the working day before a visit: a reminder to the duo (never for a cancelled visit);
- a daily digest for staff who chose ``dagelijks``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta

from eropaf_contracts.events import (
    CaseUnplanned,
    DeliveryChannel,
    OutreachDecided,
    OutreachKind,
    StaffRole,
    VisitCancelled,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_notification.domain.model import (
    DigestItem,
    Intent,
    MessageFacts,
    MessageKind,
    StaffMember,
    Visit,
    VisitStatus,
    notification_id,
)

__all__ = [
    "case_fact",
    "case_opened",
    "case_unplanned",
    "digest",
    "digest_id",
    "previous_working_day",
    "reminder_due",
    "reminder_window",
    "reminders",
    "visit_cancelled",
    "visit_facts",
    "visit_of",
    "visit_planned",
    "visit_rescheduled",
    "with_webhooks",
]

VisitEvent = VisitPlanned | VisitRescheduled | VisitCancelled


def visit_of(event: VisitEvent) -> Visit:
    return Visit(
        visit_id=event.visit_id,
        case_ref=event.case_ref,
        gemeentecode=event.gemeentecode,
        team=event.team,
        datum=event.datum,
        dagdeel=str(event.dagdeel),
        start=event.start,
        end=event.end,
        staff=tuple(event.staff),
        sequence=event.sequence,
        attempt=event.attempt,
        deadline=event.deadline,
        status=VisitStatus.CANCELLED if isinstance(event, VisitCancelled) else VisitStatus.PLANNED,
    )


def visit_facts(visit: Visit, **more: object) -> MessageFacts:
    return MessageFacts.model_validate(
        {
            "case_ref": visit.case_ref,
            "gemeentecode": visit.gemeentecode,
            "team": visit.team,
            "visit_id": visit.visit_id,
            "datum": visit.datum,
            "dagdeel": visit.dagdeel,
            "start": visit.start,
            "end": visit.end,
            "attendees": visit.staff,
            "sequence": visit.sequence,
            "attempt": visit.attempt,
            "deadline": visit.deadline,
            **more,
        }
    )


def _visit_fact(visit_id: str) -> str:
    # One fact per visit: its versions are the invite's SEQUENCE, so a change is a new
    # version of the same fact and the Message-ID tells them apart.
    return f"visit:{visit_id}"


def visit_planned(event: VisitPlanned) -> list[Intent]:
    visit = visit_of(event)
    facts = visit_facts(visit)
    return [
        Intent(_visit_fact(visit.visit_id), visit.sequence, code, MessageKind.VISIT_REQUEST, facts)
        for code in visit.staff
    ]


def visit_rescheduled(event: VisitRescheduled) -> list[Intent]:
    """REQUEST (same UID, new SEQUENCE) to the duo as it is now; CANCEL to who left it."""
    visit = visit_of(event)
    facts = visit_facts(
        visit, previous_datum=event.previous_datum, previous_dagdeel=str(event.previous_dagdeel)
    )
    fact = _visit_fact(visit.visit_id)
    intents = [
        Intent(fact, visit.sequence, code, MessageKind.VISIT_REQUEST, facts) for code in visit.staff
    ]
    for code in event.previous_staff:
        if code not in visit.staff:
            intents.append(Intent(fact, visit.sequence, code, MessageKind.VISIT_LEFT, facts))
    return intents


def visit_cancelled(event: VisitCancelled) -> list[Intent]:
    visit = visit_of(event)
    facts = visit_facts(visit, reason=str(event.reason))
    return [
        Intent(
            _visit_fact(visit.visit_id), visit.sequence, code, MessageKind.VISIT_CANCELLED, facts
        )
        for code in visit.staff
    ]


def case_fact(case_ref: str) -> str:
    """The fact of a case's outreach decisions: each decision told is a version of it."""
    return f"case.opened:{case_ref}"


def case_opened(
    event: OutreachDecided, roster: Iterable[StaffMember], told: Intent | None = None
) -> list[Intent]:
    """A case's outreach decision, to the team. ``told``: a message of the decision told last
    about the case (None: none yet). The first decision is version 1; a later one that changes
    what the message says (outreach, urgency, deadline) is the next version, naming the
    outreach told before. The same decision again, or one older than the one told, owes
    nothing."""
    version, previous = 1, None
    if told is not None:
        known = told.facts
        if known.decided_at is not None and event.decided_at <= known.decided_at:
            return []
        said = (known.outreach, known.urgency, known.deadline)
        if said == (str(event.outreach), str(event.urgency), event.deadline):
            return []
        version, previous = told.version + 1, known.outreach
    facts = MessageFacts(
        case_ref=event.case_ref,
        gemeentecode=event.gemeentecode,
        team=event.team,
        outreach=str(event.outreach),
        previous_outreach=previous,
        decided_at=event.decided_at,
        urgency=str(event.urgency),
        deadline=event.deadline,
    )
    team_work = event.outreach in (OutreachKind.PHONE, OutreachKind.LETTER)
    recipients = []
    for member in roster:
        if not member.active or member.organisatie != event.team:
            continue
        if member.rol is StaffRole.COORDINATOR or (
            team_work
            and member.rol is StaffRole.SCHULDHULPVERLENER
            and event.gemeentecode in member.gemeenten
        ):
            recipients.append(member.code)
    fact = case_fact(event.case_ref)
    return [
        Intent(fact, version, code, MessageKind.CASE_OPENED, facts, routine=True)
        for code in sorted(set(recipients))
    ]


def case_unplanned(event: CaseUnplanned, roster: Iterable[StaffMember]) -> list[Intent]:
    facts = MessageFacts(
        case_ref=event.case_ref,
        gemeentecode=event.gemeentecode,
        team=event.team,
        deadline=event.deadline,
        attempt=event.attempt,
        reason=str(event.reason),
    )
    recipients = sorted(
        m.code
        for m in roster
        if m.active and m.rol is StaffRole.COORDINATOR and event.gemeentecode in m.gemeenten
    )
    # One alert per case, attempt and deadline: scheduling re-reports a case still unplanned.
    fact = f"case.unplanned:{event.case_ref}:{event.attempt}:{event.deadline.isoformat()}"
    return [Intent(fact, 1, code, MessageKind.CASE_UNPLANNED, facts) for code in recipients]


def with_webhooks(
    intents: Sequence[Intent], targets: Mapping[str, object], team: str | None = None
) -> list[Intent]:
    """The same messages also over the chat webhook of each recipient that has one, and
    once to the team's webhook (recipient: the team code) when the team has one."""
    out = list(intents)
    for intent in intents:
        if intent.channel is DeliveryChannel.EMAIL and intent.recipient in targets:
            out.append(_on_webhook(intent, intent.recipient))
    if team is not None and team in targets and intents:
        out.append(_on_webhook(intents[0], team))
    return out


def _on_webhook(intent: Intent, recipient: str) -> Intent:
    return Intent(
        intent.fact,
        intent.version,
        recipient,
        intent.kind,
        intent.facts,
        channel=DeliveryChannel.WEBHOOK,
        routine=False,
    )


# --- reminders ---------------------------------------------------------------------------


def previous_working_day(day: date, holidays: Collection[date] = ()) -> date:
    """The working day before ``day``: Monday to Friday and not one of the region's
    ``holidays``."""
    day -= timedelta(days=1)
    while day.weekday() >= 5 or day in holidays:
        day -= timedelta(days=1)
    return day


def reminder_window(
    today: date, holidays: Collection[date] = (), horizon_days: int = 14
) -> tuple[date, date]:
    """The days of the visits a reminder may be due for today (:func:`reminder_due`): from
    tomorrow to the next working day (a visit after it has a working day before it that is
    still to come), at most ``horizon_days`` ahead."""
    first, last = today + timedelta(days=1), today + timedelta(days=1)
    while last.weekday() >= 5 or last in holidays:
        last += timedelta(days=1)
    return first, min(last, today + timedelta(days=horizon_days))


def reminder_due(
    visit: Visit, now_local: datetime, send_from: time, holidays: Collection[date] = ()
) -> bool:
    """From ``send_from`` on the working day before a planned visit until the visit's day
    (a service that was down on that day still reminds, late rather than never)."""
    if visit.status is not VisitStatus.PLANNED:
        return False
    first = previous_working_day(visit.datum, holidays)
    today = now_local.date()
    if today < first or today >= visit.datum:
        return False
    return today > first or now_local.time() >= send_from


def reminders(
    visits: Iterable[Visit],
    now_local: datetime,
    send_from: time,
    holidays: Collection[date] = (),
) -> list[Intent]:
    """Reminders owed now; one per visit, member and SEQUENCE (a moved visit reminds again)."""
    out: list[Intent] = []
    for visit in visits:
        if not reminder_due(visit, now_local, send_from, holidays):
            continue
        facts = visit_facts(visit)
        out.extend(
            Intent(f"reminder:{visit.visit_id}", visit.sequence, code, MessageKind.REMINDER, facts)
            for code in visit.staff
        )
    return out


# --- the daily digest ----------------------------------------------------------------------


def _digest_fact(code: str, day: date) -> str:
    return f"digest:{code}:{day.isoformat()}"


def digest_id(code: str, day: date) -> str:
    """The notification id of ``code``'s digest of ``day`` (one a day)."""
    return notification_id(_digest_fact(code, day), code, 1, DeliveryChannel.EMAIL)


def digest(
    member: StaffMember,
    day: date,
    held: Iterable[Intent],
    visits: Iterable[Visit],
) -> Intent | None:
    """The digest of ``member`` for ``day``: the routine messages held for them (new cases
    awaiting action), their visits tomorrow, and their visits past whose attempt was never
    recorded (overdue). None when there is nothing to say."""
    latest: dict[str, Intent] = {}  # a case decided again: its latest decision held
    for i in held:
        if i.facts.case_ref:
            known = latest.get(i.facts.case_ref)
            if known is None or known.version <= i.version:
                latest[i.facts.case_ref] = i
    new_cases = tuple(
        DigestItem(
            case_ref=i.facts.case_ref or "",
            gemeentecode=i.facts.gemeentecode or "",
            outreach=i.facts.outreach,
            deadline=i.facts.deadline,
        )
        for i in latest.values()
    )
    tomorrow = day + timedelta(days=1)
    mine = [v for v in visits if member.code in v.staff and v.status is VisitStatus.PLANNED]
    upcoming = tuple(
        DigestItem(
            case_ref=v.case_ref,
            gemeentecode=v.gemeentecode,
            datum=v.datum,
            dagdeel=v.dagdeel,
            attempt=v.attempt,
        )
        for v in sorted(mine, key=lambda v: v.start)
        if v.datum == tomorrow
    )
    overdue = tuple(
        DigestItem(
            case_ref=v.case_ref,
            gemeentecode=v.gemeentecode,
            datum=v.datum,
            dagdeel=v.dagdeel,
            attempt=v.attempt,
        )
        for v in sorted(mine, key=lambda v: v.start)
        if v.datum < day
    )
    if not (new_cases or upcoming or overdue):
        return None
    facts = MessageFacts(digest_date=day, new_cases=new_cases, tomorrow=upcoming, overdue=overdue)
    return Intent(_digest_fact(member.code, day), 1, member.code, MessageKind.DIGEST, facts)
