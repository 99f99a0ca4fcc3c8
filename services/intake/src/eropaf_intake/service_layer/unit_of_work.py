"""Intake's unit of work: the repositories of one batch's transaction. ``commit`` saves the
staged signals, then their personal data (which refers to them), then the queued events,
all in the caller's transaction (``eropaf_platform.unit_of_work``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_intake.adapters import crypto
from eropaf_intake.adapters.repository import (
    PartnerRepository,
    PersonalDataRepository,
    SignalRepository,
    SqlPartnerRepository,
    SqlPersonalDataRepository,
    SqlSignalRepository,
)
from eropaf_platform.unit_of_work import AbstractUnitOfWork, SqlUnitOfWork

__all__ = ["AbstractIntakeUnitOfWork", "IntakeUnitOfWork"]


class AbstractIntakeUnitOfWork(AbstractUnitOfWork):
    """What intake's use cases work with; the SQL one below and the in-memory fake of the
    service-layer tests implement it."""

    signals: SignalRepository
    partners: PartnerRepository
    personal_data: PersonalDataRepository

    async def commit(self) -> None:
        await self.signals.save()
        await self.personal_data.save()
        await super().commit()


class IntakeUnitOfWork(SqlUnitOfWork, AbstractIntakeUnitOfWork):
    """Over the session of the batch (consumer) or request (HTTP channel). The master
    keyring is needed only by use cases that write personal data."""

    def __init__(self, session: AsyncSession, keyring: crypto.Keyring | None = None) -> None:
        super().__init__(session)
        self.signals = SqlSignalRepository(session)
        self.partners = SqlPartnerRepository(session)
        self.personal_data = SqlPersonalDataRepository(session, keyring)
