"""What the portal needs of the world: the services' APIs, a mailer, login links.

Each is an interface; `adapters/` has the HTTP clients, the SMTP mailer and the signer, and
`tests/service_layer/fakes.py` the in-memory ones.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from eropaf_portal.domain.model import (
    AbsenceRecorded,
    Attempt,
    AttemptInput,
    BacklogEntry,
    CapacityWeek,
    Case,
    DdasExport,
    Funnel,
    Me,
    StaffEntry,
    Task,
    Visit,
)


class ApiError(Exception):
    """A service answered with a refusal; `status` is its HTTP status, `detail` its words."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Unauthenticated(ApiError):
    """401: the staff code is unknown or no longer active."""

    def __init__(self, detail: str = "unknown staff member") -> None:
        super().__init__(401, detail)


class Forbidden(ApiError):
    """403: not a case (or page) of this staff member."""

    def __init__(self, detail: str = "not allowed") -> None:
        super().__init__(403, detail)


class NotFound(ApiError):
    def __init__(self, detail: str = "not found") -> None:
        super().__init__(404, detail)


class Refused(ApiError):
    """409/422/400: the request is well meant but the state or the input does not allow it."""


class Unavailable(Exception):
    """A service could not be reached or answered with a server error."""


class SchedulingApi(Protocol):
    """Scheduling's staff API, acting as the staff member `code` (CONTRACT §4.2)."""

    async def me(self, code: str) -> Me: ...

    async def visits(self, code: str, first: date, last: date) -> list[Visit]: ...

    async def case(self, code: str, case_ref: str) -> Case: ...

    async def record_attempt(self, code: str, case_ref: str, attempt: AttemptInput) -> Attempt: ...

    async def backlog(self, code: str) -> list[BacklogEntry]: ...

    async def tasks(self, code: str) -> list[Task]: ...

    async def staff(self, code: str) -> list[StaffEntry]: ...

    async def add_absence(
        self, code: str, staff_code: str, first: date, last: date
    ) -> AbsenceRecorded: ...

    async def capacity(self, code: str, first: date, last: date) -> list[CapacityWeek]: ...


class MatchingApi(Protocol):
    """Matching's internal read side (no staff rules of its own: the portal applies them)."""

    async def signal_refs(self, case_ref: str) -> list[str]: ...

    async def funnel(self, gemeentecode: str, first: date, last: date) -> Funnel: ...

    async def ddas_export(self, gemeentecode: str, first: date, last: date) -> DdasExport: ...


class IntakeApi(Protocol):
    """Intake's audited read of personal data: who reads and why are recorded with it."""

    async def personal_data(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]: ...


class Mailer(Protocol):
    async def send(self, *, to: str, subject: str, body: str) -> None: ...


class LoginLinks(Protocol):
    """One-time, short-lived login links."""

    max_age_s: int

    def issue(self, code: str) -> str:
        """A token naming `code`, for a link."""
        ...

    def redeem(self, token: str) -> str | None:
        """The code the token names, once; None when invalid, expired or already used."""
        ...
