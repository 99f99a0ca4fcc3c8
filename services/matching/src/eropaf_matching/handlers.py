"""Matching's subscribers: parse the batch, call one use case (``service_layer.services``).

``SignalEventsHandler`` (``INTAKE_SIGNALS_TOPIC``): intake's signal events
(:func:`~eropaf_matching.service_layer.services.handle_signal_events`).

``VisitEventsHandler`` (``VISITS_TOPIC``): what scheduling reports of a case -- planned
outreach, contact attempts, outcomes
(:func:`~eropaf_matching.service_layer.services.handle_visit_events`); scheduling's other
events on that topic are not matching's and are passed by.

``NotPickedUpSweep`` (periodic, and ``eropaf matching sweep``): closes the cases triage
never picked up once the policy's wait is over
(:func:`~eropaf_matching.service_layer.services.sweep_not_picked_up`).

A message that is no envelope, or whose payload does not validate, is poison (the batch
processor dead-letters it with the cause).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.region import Region
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_matching.service_layer import services
from eropaf_matching.service_layer.services import SignalEvent, VisitEvent, facts_of
from eropaf_matching.service_layer.unit_of_work import MatchingUnitOfWork
from eropaf_platform.consumer import Incoming, PoisonMessage, describe_error
from eropaf_platform.db import transaction
from eropaf_platform.logging import get_logger

__all__ = [
    "SIGNAL_EVENTS",
    "VISIT_EVENTS",
    "NotPickedUpSweep",
    "SignalEventsHandler",
    "VisitEventsHandler",
    "facts_of",
    "parse",
]

log = get_logger(__name__)

E = TypeVar("E", bound=BaseModel)

SIGNAL_EVENTS: dict[str, type[SignalEvent]] = {
    m.EVENT_TYPE: m for m in (SignalAccepted, SignalUpdated, SignalResolved)
}
VISIT_EVENTS: dict[str, type[VisitEvent]] = {
    m.EVENT_TYPE: m for m in (OutreachPlanned, ContactAttemptRecorded, CaseOutcomeRecorded)
}


def parse(messages: Sequence[Incoming], models: Mapping[str, type[E]]) -> list[tuple[Envelope, E]]:
    """The batch's envelopes and payloads, in order. An event type not in ``models`` is
    passed by (others share the topic: not ours to judge); a message that is no envelope,
    or a payload that does not validate, is poison."""
    parsed: list[tuple[Envelope, E]] = []
    for message in messages:
        envelope = message.envelope()  # PoisonMessage when it is no envelope at all
        model = models.get(envelope.type)
        if model is None:
            log.debug("event type passed by", type=envelope.type, topic=message.topic)
            continue
        try:
            parsed.append((envelope, envelope.payload(model)))
        except ValidationError as exc:
            raise PoisonMessage(describe_error(exc)) from exc
    return parsed


class SignalEventsHandler:
    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        # Matching runs once: this process holds the linking state and the cases, checked
        # against the tables on every batch (adapters.link_cache, adapters.case_cache). The
        # case copy is shared with the process's other writers of cases.
        self.links = LinkCache()
        self.cases = cases if cases is not None else CaseCache()

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        uow = MatchingUnitOfWork(
            session, self.policy, self.region, links=self.links, cases=self.cases
        )
        await services.handle_signal_events(uow, parse(messages, SIGNAL_EVENTS))


class VisitEventsHandler:
    """Keeps the case record complete with what scheduling reports."""

    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        self.cases = cases  # the process's copy of the cases, if it keeps one

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        uow = MatchingUnitOfWork(session, self.policy, self.region, cases=self.cases)
        await services.handle_visit_events(uow, parse(messages, VISIT_EVENTS))


class NotPickedUpSweep:
    """Closes the open cases never picked up whose wait is over, with CaseClosed and
    creditor feedback, all in one transaction (exactly once: see
    :func:`~eropaf_matching.service_layer.services.sweep_not_picked_up`)."""

    def __init__(
        self, policy: RegionPolicy, region: Region, cases: CaseCache | None = None
    ) -> None:
        self.policy = policy
        self.region = region
        self.cases = cases  # the process's copy of the cases, if it keeps one

    async def run(self, sessions: async_sessionmaker[AsyncSession], today: date) -> list[str]:
        """Sweep as of ``today``; the ids of the cases it closed."""
        async with transaction(sessions) as session:
            return await self(session, today)

    async def __call__(self, session: AsyncSession, today: date) -> list[str]:
        uow = MatchingUnitOfWork(session, self.policy, self.region, cases=self.cases)
        return await services.sweep_not_picked_up(uow, today)
