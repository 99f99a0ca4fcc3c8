"""The unit of work every service's service layer runs its use cases in.

A use case loads what it needs through the unit of work's repositories, asks the domain what
happens, saves, and queues the events that say so; ``commit`` writes the queued events to the
outbox in the same transaction as the saved state, so both are durable together or not at all.
A service subclasses :class:`SqlUnitOfWork` (adding its repositories and its lock) and its tests
subclass :class:`FakeUnitOfWork` (in-memory repositories), so the service layer is tested
without a database.

The transaction itself belongs to whoever opened the session: the batch processor of a
consumer (which also records the processed message ids in it) or an HTTP request's
``eropaf_platform.db.transaction``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.envelope import Envelope
from eropaf_platform import outbox
from eropaf_platform.outbox import OutgoingMessage, envelope_message

__all__ = ["AbstractUnitOfWork", "FakeUnitOfWork", "SqlUnitOfWork"]


class AbstractUnitOfWork(abc.ABC):
    """Queue events with ``emit``/``queue``; ``commit`` saves them with the state."""

    def __init__(self) -> None:
        self._queued: list[OutgoingMessage] = []

    def queue(self, messages: Iterable[OutgoingMessage]) -> None:
        self._queued.extend(messages)

    def emit(self, topic: str, *envelopes: Envelope) -> None:
        self._queued.extend(envelope_message(topic, e) for e in envelopes)

    @property
    def queued(self) -> list[OutgoingMessage]:
        """Events queued and not yet committed."""
        return list(self._queued)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            await self.rollback()
        self._queued.clear()

    async def commit(self) -> None:
        messages, self._queued = self._queued, []
        await self._commit(messages)

    @abc.abstractmethod
    async def _commit(self, messages: list[OutgoingMessage]) -> None:
        """Make the saved state and ``messages`` durable together."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Forget what was saved and queued since the last commit."""


class SqlUnitOfWork(AbstractUnitOfWork):
    """Over the caller's session: ``commit`` flushes the state and adds the outbox rows to the
    open transaction; the transaction's owner commits it."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session

    async def _commit(self, messages: list[OutgoingMessage]) -> None:
        await self.session.flush()
        await outbox.add(self.session, messages)

    async def rollback(self) -> None:
        self._queued.clear()


class FakeUnitOfWork(AbstractUnitOfWork):
    """In-memory: ``published`` holds every committed event in order, ``commits`` counts."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[OutgoingMessage] = []
        self.commits = 0

    async def _commit(self, messages: list[OutgoingMessage]) -> None:
        self.published.extend(messages)
        self.commits += 1

    async def rollback(self) -> None:
        self._queued.clear()
