"""The notification service's unit of work: its repositories over one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_notification.adapters import repository
from eropaf_notification.service_layer.repositories import (
    Claimed,
    Finished,
    IntentRepository,
    StaffRepository,
    VisitRepository,
)
from eropaf_platform.unit_of_work import AbstractUnitOfWork, SqlUnitOfWork

__all__ = [
    "Claimed",
    "Finished",
    "IntentRepository",
    "NotificationUnitOfWork",
    "SqlNotificationUnitOfWork",
    "StaffRepository",
    "VisitRepository",
]


class NotificationUnitOfWork(AbstractUnitOfWork):
    staff: StaffRepository
    visits: VisitRepository
    intents: IntentRepository


class SqlNotificationUnitOfWork(SqlUnitOfWork, NotificationUnitOfWork):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.staff = repository.SqlStaffRepository(session)
        self.visits = repository.SqlVisitRepository(session)
        self.intents = repository.SqlIntentRepository(session)
