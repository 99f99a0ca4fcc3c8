"""The notification service's subscriber (thin: parse, call one service-layer function).

One consumer reads scheduling's visits and staff topics and matching's cases topic, so that
a roster change and the visit events are handled in the order they were consumed. Messages
of other types on these topics are skipped without a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.events import (
    CaseUnplanned,
    ContactAttemptRecorded,
    OutreachDecided,
    StaffChanged,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
from eropaf_notification import metrics
from eropaf_notification.service_layer import services
from eropaf_notification.service_layer.unit_of_work import SqlNotificationUnitOfWork
from eropaf_platform.consumer import Incoming, PoisonMessage, describe_error
from eropaf_platform.logging import get_logger
from eropaf_platform.service import Service

__all__ = ["CONSUMER", "TOPICS", "NotificationEvents", "register", "wanted"]

log = get_logger(__name__)

CONSUMER = "notification-events"
TOPICS = (VISITS_TOPIC, STAFF_TOPIC, CASES_TOPIC)
_MODELS: dict[str, type[BaseModel]] = {
    m.EVENT_TYPE: m
    for m in (
        StaffChanged,
        OutreachDecided,
        VisitPlanned,
        VisitRescheduled,
        VisitCancelled,
        VisitCompleted,
        ContactAttemptRecorded,
        CaseUnplanned,
    )
}


def wanted(message: Incoming) -> bool:
    """Only the event types this service acts on (others share the topics)."""
    event_type = message.header("ce_type")
    return event_type is None or event_type in _MODELS


class NotificationEvents:
    def __init__(
        self,
        routing: services.Routing,
        *,
        service: str = "notification",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.routing = routing
        self.service = service
        self.clock = clock

    async def __call__(self, session: AsyncSession, messages: Sequence[Incoming]) -> None:
        events: list[services.Fact] = []
        for message in messages:
            envelope = message.envelope()  # PoisonMessage when it is no envelope at all
            model = _MODELS.get(envelope.type)
            if model is None:
                continue
            try:
                events.append(envelope.payload(model))  # type: ignore[arg-type]
            except ValidationError as exc:
                raise PoisonMessage(describe_error(exc)) from exc
        if not events:
            return
        added = await services.on_events(
            SqlNotificationUnitOfWork(session), events, self.clock(), self.routing
        )
        if added:
            metrics.NOTIFICATIONS.labels(self.service, "all", "queued").inc(len(added))


def register(
    service: Service,
    handler: NotificationEvents,
    *,
    group_prefix: str = "eropaf",
) -> None:
    """Subscribe the service's handler to its topics."""
    service.subscribe(
        *TOPICS,
        consumer=CONSUMER,
        handler=handler,
        group_id=f"{group_prefix}-{CONSUMER}",
        wanted=wanted,
    )
