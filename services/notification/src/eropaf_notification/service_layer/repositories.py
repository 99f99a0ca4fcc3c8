"""The notification service's repositories as the service layer sees them (the SQL ones are in
``adapters.repository``, the in-memory ones in the tests' fakes)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from eropaf_notification.domain.delivery import Outcome
from eropaf_notification.domain.model import Intent, StaffMember, Visit

__all__ = ["Claimed", "Finished", "IntentRepository", "StaffRepository", "VisitRepository"]


@dataclass(frozen=True)
class Claimed:
    """An intent a delivery loop holds for one attempt."""

    intent: Intent
    attempts: int  # attempts made before this one
    owed_since: datetime


@dataclass(frozen=True)
class Finished:
    """One attempt's outcome."""

    notification_id: str
    outcome: Outcome
    attempts: int  # attempts made, this one included
    next_attempt_at: datetime | None = None
    reason: str | None = None


class StaffRepository(abc.ABC):
    @abc.abstractmethod
    async def get_many(self, codes: Collection[str]) -> dict[str, StaffMember]: ...

    @abc.abstractmethod
    async def active(self) -> list[StaffMember]: ...

    @abc.abstractmethod
    async def save(self, member: StaffMember, changed_at: datetime) -> bool:
        """Store ``member`` unless a record changed later is stored; True when stored."""


class VisitRepository(abc.ABC):
    @abc.abstractmethod
    async def get_many(self, visit_ids: Collection[str]) -> dict[str, Visit]: ...

    @abc.abstractmethod
    async def save_many(self, visits: Sequence[Visit]) -> None:
        """Store the visits (one per id), replacing what is stored."""

    @abc.abstractmethod
    async def planned_between(self, first: date, last: date) -> list[Visit]: ...

    @abc.abstractmethod
    async def planned_until(self, last: date, staff_code: str) -> list[Visit]:
        """The staff member's planned visits on or before ``last``."""


class IntentRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, intents: Sequence[tuple[Intent, str]], now: datetime) -> list[str]:
        """Record (intent, status) pairs; ids already recorded are left as they are. Returns
        the ids newly recorded."""

    @abc.abstractmethod
    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]: ...

    @abc.abstractmethod
    async def finish(self, attempts: Sequence[Finished], now: datetime) -> None:
        """Record attempts and their outcomes: a retry is due again at its time, any other
        outcome is the message's final status."""

    @abc.abstractmethod
    async def latest_case_opened(self, facts: Collection[str]) -> dict[str, Intent]:
        """Per ``case.opened`` fact, a message of its highest version (the decision told
        last), over all recipients and channels."""

    @abc.abstractmethod
    async def recorded(self, notification_ids: Collection[str]) -> set[str]:
        """Those of ``notification_ids`` that are recorded."""

    @abc.abstractmethod
    async def held_for(self, recipient: str) -> list[Intent]: ...

    @abc.abstractmethod
    async def mark_digested(self, notification_ids: Collection[str], digest_id: str) -> None: ...
