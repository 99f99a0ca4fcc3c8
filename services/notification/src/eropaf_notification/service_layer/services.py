"""Use cases of the notification service, one function each, in a unit of work.

Consuming a fact records the messages it owes (intents) in the same transaction as the
consumption; delivery claims due intents, and records each attempt's outcome with the
``NotificationDelivered``/``NotificationFailed`` event in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseUnplanned,
    ContactAttemptRecorded,
    DeliveryChannel,
    NotificationDelivered,
    NotificationFailed,
    OutreachDecided,
    StaffChanged,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_notification.domain import rules
from eropaf_notification.domain.delivery import (
    Decision,
    Outcome,
    RetryPolicy,
    SendResult,
    decide,
)
from eropaf_notification.domain.model import Intent, StaffMember, Visit, VisitStatus
from eropaf_notification.service_layer.unit_of_work import (
    Claimed,
    Finished,
    NotificationUnitOfWork,
)

__all__ = [
    "HELD",
    "PENDING",
    "Job",
    "Routing",
    "claim_due",
    "create_digests",
    "create_reminders",
    "on_case_unplanned",
    "on_events",
    "on_outreach_decided",
    "on_staff_changed",
    "on_visit_completed",
    "on_visit_event",
    "record_results",
]

PENDING = "pending"
HELD = "held"


@dataclass(frozen=True)
class Routing:
    """Which codes (staff or team) also get messages over a chat webhook (a setting)."""

    webhooks: Mapping[str, str]

    def route(self, intents: Sequence[Intent], team: str | None = None) -> list[Intent]:
        return rules.with_webhooks(intents, self.webhooks, team)


NO_WEBHOOKS = Routing({})


async def _owe(
    uow: NotificationUnitOfWork,
    intents: Sequence[Intent],
    now: datetime,
    roster: Mapping[str, StaffMember] | None = None,
) -> list[str]:
    """Record the intents: routine e-mail for staff who chose ``dagelijks`` is held for their
    digest, the rest is due now. Returns the ids newly recorded."""
    if not intents:
        return []
    routine = {i.recipient for i in intents if i.routine}
    if roster is None and routine:
        roster = await uow.staff.get_many(routine)
    roster = roster or {}
    rows = []
    for intent in intents:
        member = roster.get(intent.recipient)
        held = (
            intent.routine
            and intent.channel is DeliveryChannel.EMAIL
            and member is not None
            and member.daily
        )
        rows.append((intent, HELD if held else PENDING))
    return await uow.intents.add(rows, now)


Fact = (
    StaffChanged
    | OutreachDecided
    | CaseUnplanned
    | VisitPlanned
    | VisitRescheduled
    | VisitCancelled
    | VisitCompleted
    | ContactAttemptRecorded
)


async def on_events(
    uow: NotificationUnitOfWork, events: Sequence[Fact], now: datetime, routing: Routing
) -> list[str]:
    """Take in a batch of consumed facts, in order: keep the roster and the copies of the
    visits, and record the messages the facts owe. A few statements per batch, whatever its
    size. Returns the ids of the messages newly owed."""
    visit_ids = {
        e.visit_id
        for e in events
        if not isinstance(e, StaffChanged | OutreachDecided | CaseUnplanned) and e.visit_id
    }
    visits = await uow.visits.get_many(visit_ids) if visit_ids else {}
    decided = {rules.case_fact(e.case_ref) for e in events if isinstance(e, OutreachDecided)}
    told = await uow.intents.latest_case_opened(decided) if decided else {}
    changed: dict[str, Visit] = {}
    roster: dict[str, StaffMember] | None = None
    intents: list[Intent] = []
    for event in events:
        if isinstance(event, StaffChanged):
            await uow.staff.save(_member_of(event), event.changed_at)
            roster = None  # read again if a later fact needs it
        elif isinstance(event, OutreachDecided | CaseUnplanned):
            if roster is None:
                roster = {m.code: m for m in await uow.staff.active()}
            if isinstance(event, OutreachDecided):
                fact = rules.case_fact(event.case_ref)
                owed = rules.case_opened(event, roster.values(), told.get(fact))
                if owed:
                    told[fact] = owed[0]
            else:
                owed = rules.case_unplanned(event, roster.values())
            intents.extend(
                routing.route(owed, team=event.team if isinstance(event, OutreachDecided) else None)
            )
        elif isinstance(event, VisitPlanned | VisitRescheduled | VisitCancelled):
            # A version older than the one held changes the copy not; its messages are
            # still owed once each (and skipped at sending if superseded by then).
            known = visits.get(event.visit_id)
            if known is None or known.sequence <= event.sequence:
                visits[event.visit_id] = changed[event.visit_id] = rules.visit_of(event)
            if isinstance(event, VisitPlanned):
                owed = rules.visit_planned(event)
            elif isinstance(event, VisitRescheduled):
                owed = rules.visit_rescheduled(event)
            else:
                owed = rules.visit_cancelled(event)
            intents.extend(routing.route(owed))
        elif event.visit_id is not None:  # VisitCompleted | ContactAttemptRecorded
            known = visits.get(event.visit_id)
            if known is not None and known.status is VisitStatus.PLANNED:
                visits[event.visit_id] = changed[event.visit_id] = replace(
                    known, status=VisitStatus.DONE
                )
    if changed:
        await uow.visits.save_many(list(changed.values()))
    unique = list({i.notification_id: i for i in intents}.values())
    added = await _owe(uow, unique, now, roster)
    await uow.commit()
    return added


def _member_of(event: StaffChanged) -> StaffMember:
    return StaffMember(
        code=event.code,
        naam=event.naam,
        email=event.email,
        organisatie=event.organisatie,
        rol=event.rol,
        gemeenten=tuple(event.gemeenten),
        taal=event.taal,
        bericht=event.bericht,
        active=event.active,
    )


async def on_staff_changed(uow: NotificationUnitOfWork, event: StaffChanged) -> list[str]:
    return await on_events(uow, [event], event.changed_at, NO_WEBHOOKS)


async def on_outreach_decided(
    uow: NotificationUnitOfWork, event: OutreachDecided, now: datetime, routing: Routing
) -> list[str]:
    return await on_events(uow, [event], now, routing)


async def on_case_unplanned(
    uow: NotificationUnitOfWork, event: CaseUnplanned, now: datetime, routing: Routing
) -> list[str]:
    return await on_events(uow, [event], now, routing)


async def on_visit_event(
    uow: NotificationUnitOfWork,
    event: VisitPlanned | VisitRescheduled | VisitCancelled,
    now: datetime,
    routing: Routing,
) -> list[str]:
    return await on_events(uow, [event], now, routing)


async def on_visit_completed(
    uow: NotificationUnitOfWork, event: VisitCompleted | ContactAttemptRecorded
) -> list[str]:
    """The attempt a visit served is recorded: no reminder, not overdue."""
    return await on_events(uow, [event], datetime.now(UTC), NO_WEBHOOKS)


async def create_reminders(
    uow: NotificationUnitOfWork,
    now_local: datetime,
    send_from: time,
    routing: Routing,
    holidays: Collection[date] = (),
) -> list[str]:
    """Reminders owed now (deterministic facts: a re-run or a restart owes the same ones)."""
    # Only the visits a reminder can be due for: a visit further ahead is read on the
    # working day before it, so a job round reads a day's visits, not the whole plan.
    visits = await uow.visits.planned_between(*rules.reminder_window(now_local.date(), holidays))
    intents = routing.route(rules.reminders(visits, now_local, send_from, holidays))
    added = await _owe(uow, intents, now_local)
    await uow.commit()
    return added


async def create_digests(
    uow: NotificationUnitOfWork, now_local: datetime, send_from: time
) -> list[str]:
    """From ``send_from`` on, each ``dagelijks`` staff member's digest of today (once)."""
    if now_local.time() < send_from:
        return []
    day = now_local.date()
    daily = {rules.digest_id(m.code, day): m for m in await uow.staff.active() if m.daily}
    # A member whose digest of the day is recorded is passed by before their held messages
    # are read: those held since then wait for tomorrow's, and reading them every round
    # would hold all of them in memory at once.
    done = await uow.intents.recorded(list(daily))
    added: list[str] = []
    for digest_id, member in daily.items():
        if digest_id in done:
            continue
        held = await uow.intents.held_for(member.code)
        visits = await uow.visits.planned_until(day + timedelta(days=1), member.code)
        digest = rules.digest(member, day, held, visits)
        if digest is None:
            continue
        new = await uow.intents.add([(digest, PENDING)], now_local)
        if new:
            await uow.intents.mark_digested([i.notification_id for i in held], new[0])
            added.extend(new)
    await uow.commit()
    return added


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A claimed intent with what sending it needs (read in the claiming transaction)."""

    claimed: Claimed
    recipient: StaffMember | None
    attendees: Mapping[str, StaffMember]
    visit: Visit | None

    @property
    def intent(self) -> Intent:
        return self.claimed.intent


async def claim_due(
    uow: NotificationUnitOfWork, now: datetime, *, limit: int, lease_s: float
) -> list[Job]:
    claimed = await uow.intents.claim_due(now, limit, lease_s)
    if not claimed:
        await uow.commit()
        return []
    codes: set[str] = set()
    visit_ids: set[str] = set()
    for c in claimed:
        codes.add(c.intent.recipient)
        codes.update(c.intent.facts.attendees)
        if c.intent.facts.visit_id:
            visit_ids.add(c.intent.facts.visit_id)
    staff = await uow.staff.get_many(codes)
    visits = await uow.visits.get_many(visit_ids)
    await uow.commit()
    return [
        Job(
            claimed=c,
            recipient=staff.get(c.intent.recipient),
            attendees={a: staff[a] for a in c.intent.facts.attendees if a in staff},
            visit=visits.get(c.intent.facts.visit_id or ""),
        )
        for c in claimed
    ]


async def record_results(
    uow: NotificationUnitOfWork,
    results: Sequence[tuple[Job, SendResult, str]],
    now: datetime,
    policy: RetryPolicy,
) -> list[Decision]:
    """Record each attempt (job, result, message id) and its event, in one transaction."""
    decisions = []
    finished = []
    for job, result, message_id in results:
        attempts = job.claimed.attempts + 1
        decision = decide(
            result, attempts=attempts, owed_since=job.claimed.owed_since, now=now, policy=policy
        )
        intent = job.intent
        finished.append(
            Finished(
                intent.notification_id,
                decision.outcome,
                attempts,
                decision.next_attempt_at,
                decision.reason,
            )
        )
        common: dict[str, Any] = {
            "notification_id": intent.notification_id,
            "fact": intent.fact[:200],
            "recipient": intent.recipient,
            "channel": intent.channel,
            "case_ref": intent.case_ref,
            "message_id": message_id,
            "attempts": attempts,
        }
        if decision.outcome is Outcome.SENT:
            payload: NotificationDelivered | NotificationFailed = NotificationDelivered(
                **common, delivered_at=now
            )
        elif decision.outcome is Outcome.FAILED:
            payload = NotificationFailed(
                **common, reason=decision.reason or "failed", failed_at=now
            )
        else:
            decisions.append(decision)
            continue
        uow.emit(
            NOTIFICATION_DELIVERIES_TOPIC,
            Envelope.wrap(
                payload,
                key=intent.recipient,
                id=f"{payload.EVENT_TYPE}:{intent.notification_id}",
            ),
        )
        decisions.append(decision)
    await uow.intents.finish(finished, now)
    await uow.commit()
    return decisions
