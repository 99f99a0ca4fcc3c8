"""The scheduling service's subscribers (thin: parse, call one service-layer function)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.events import CaseClosed, CaseUpdated, OutreachDecided
from eropaf_platform.consumer import Incoming, PoisonMessage, describe_error
from eropaf_platform.logging import get_logger
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import SqlSchedulingUnitOfWork

__all__ = ["CaseEventsHandler"]

log = get_logger(__name__)

_CASE_EVENTS = {m.EVENT_TYPE: m for m in (OutreachDecided, CaseUpdated, CaseClosed)}


class CaseEventsHandler:
    """Matching's case events: outreach decisions open cases, updates re-key and re-route
    them, closures cancel their visits. Every change asks for a (debounced) replan."""

    def __init__(self, config: PlanningConfig) -> None:
        self.config = config

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        uow = SqlSchedulingUnitOfWork(session)
        for message in messages:
            envelope = message.envelope()
            model = _CASE_EVENTS.get(envelope.type)
            if model is None:
                continue  # other case events are not scheduling's
            try:
                event = envelope.payload(model)
            except ValidationError as exc:
                raise PoisonMessage(describe_error(exc)) from exc
            now = datetime.now(UTC)
            if isinstance(event, OutreachDecided):
                await services.outreach_decided(uow, event, envelope, self.config, now)
            elif isinstance(event, CaseUpdated):
                await services.case_updated(uow, event, envelope, self.config, now)
            elif isinstance(event, CaseClosed):
                await services.case_closed(uow, event, envelope, self.config)
