"""Scheduling's unit of work: its repository and its lock, over the platform's unit of work."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_platform.db import transaction
from eropaf_platform.unit_of_work import AbstractUnitOfWork, SqlUnitOfWork
from eropaf_scheduling.adapters.repository import SqlSchedulingRepository
from eropaf_scheduling.service_layer.repository import ReplanState, SchedulingRepository

__all__ = [
    "ReplanState",
    "SchedulingRepository",
    "SchedulingUnitOfWork",
    "SqlSchedulingUnitOfWork",
    "sql_units_of_work",
]


class SchedulingUnitOfWork(AbstractUnitOfWork):
    repo: SchedulingRepository

    @abc.abstractmethod
    async def lock(self) -> None:
        """Serialise writers of the schedule (consumer, replan job, staff API, CLI)."""


class SqlSchedulingUnitOfWork(SqlUnitOfWork, SchedulingUnitOfWork):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.repo = SqlSchedulingRepository(session)

    async def lock(self) -> None:
        await self.session.execute(sa.text("SELECT pg_advisory_xact_lock(5313001)"))


def sql_units_of_work(
    sessions: async_sessionmaker[AsyncSession],
) -> Callable[[], AbstractAsyncContextManager[SchedulingUnitOfWork]]:
    """Units of work on PostgreSQL, each in a transaction of its own (what ``replan`` and the
    staff API open one after the other)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[SchedulingUnitOfWork]:
        async with transaction(sessions) as session:
            uow = SqlSchedulingUnitOfWork(session)
            async with uow:
                yield uow

    return opened
