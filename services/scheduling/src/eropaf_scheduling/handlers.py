"""The scheduling service's subscribers (thin: parse, call one service-layer function)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import CaseClosed, CaseUpdated, OutreachDecided
from eropaf_platform.consumer import Incoming, PoisonMessage, describe_error
from eropaf_platform.logging import get_logger
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import CaseEvent, PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import SqlSchedulingUnitOfWork

__all__ = ["CaseEventsHandler"]

log = get_logger(__name__)

_CASE_EVENTS: dict[str, type[CaseEvent]] = {
    m.EVENT_TYPE: m for m in (OutreachDecided, CaseUpdated, CaseClosed)
}


class CaseEventsHandler:
    """Matching's case events: outreach decisions open cases, updates re-key and re-route
    them, closures cancel their visits; a batch is one use case (one lock, bulk reads and
    writes, one replan request). A message that cannot be parsed raises PoisonMessage before
    anything is applied: the consumer then handles the batch one message at a time and the
    bad one goes to the dead-letter topic."""

    def __init__(self, config: PlanningConfig) -> None:
        self.config = config

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        events: list[tuple[CaseEvent, Envelope]] = []
        for message in messages:
            envelope = message.envelope()
            model = _CASE_EVENTS.get(envelope.type)
            if model is None:
                continue  # other case events are not scheduling's
            try:
                events.append((envelope.payload(model), envelope))
            except ValidationError as exc:
                raise PoisonMessage(describe_error(exc)) from exc
        if events:
            uow = SqlSchedulingUnitOfWork(session)
            await services.case_events(uow, events, self.config, datetime.now(UTC))
