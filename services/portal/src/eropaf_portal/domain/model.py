"""What the portal shows, as values: staff, visits, cases, the region's figures.

None of it is personal data of a household: cases travel by reference. Contact details are
read on demand (`ContactDetails`), shown once and never kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Role(StrEnum):
    MEDEWERKER = "medewerker"
    SCHULDHULPVERLENER = "schuldhulpverlener"
    COORDINATOR = "coordinator"


class Language(StrEnum):
    NL = "nl"
    EN = "en"

    @classmethod
    def of(cls, value: str | None) -> Language:
        try:
            return cls(value or "nl")
        except ValueError:
            return cls.NL


@dataclass(frozen=True)
class Me:
    """The staff member signed in (scheduling's `GET /v1/me`)."""

    code: str
    naam: str
    email: str
    organisatie: str
    rol: Role
    gemeenten: tuple[str, ...]
    taal: Language

    @property
    def is_coordinator(self) -> bool:
        return self.rol is Role.COORDINATOR

    @property
    def sees_backlog(self) -> bool:
        return self.rol is not Role.MEDEWERKER


@dataclass(frozen=True)
class Visit:
    visit_id: str
    case_ref: str
    gemeentecode: str
    datum: date
    dagdeel: str
    start: datetime
    end: datetime
    staff: tuple[str, ...]
    status: str
    sequence: int
    attempt: int

    def partners_of(self, code: str) -> tuple[str, ...]:
        """The other member(s) of the duo, seen from `code`."""
        return tuple(s for s in self.staff if s != code)


@dataclass(frozen=True)
class Attempt:
    attempt: int
    contactsoort: str
    datum: date
    dagdeel: str | None
    bereikt: bool
    eindresultaat: str | None
    recorded_by: str | None


@dataclass(frozen=True)
class Case:
    case_ref: str
    gemeentecode: str
    outreach: str
    deadline: date
    state: str
    attempt: int
    visits: tuple[Visit, ...]
    attempts: tuple[Attempt, ...]
    eindresultaat: str | None

    @property
    def planned_visit(self) -> Visit | None:
        """The visit that serves the case's next attempt, if one is planned."""
        planned = [v for v in self.visits if v.status == "planned"]
        return max(planned, key=lambda v: (v.attempt, v.datum)) if planned else None

    @property
    def open(self) -> bool:
        return self.eindresultaat is None and self.state == "open"


@dataclass(frozen=True)
class AttemptInput:
    """A contact attempt as the staff member records it (DDAS terms)."""

    contactsoort: str
    datum: date
    dagdeel: str | None
    bereikt: bool
    eindresultaat: str | None
    visit_id: str | None


@dataclass(frozen=True)
class BacklogEntry:
    case_ref: str
    gemeentecode: str
    deadline: date
    reason: str


@dataclass(frozen=True)
class Task:
    case_ref: str
    gemeentecode: str
    outreach: str
    deadline: date


@dataclass(frozen=True)
class CapacityWeek:
    week: str
    gemeentecode: str
    team: str
    planned: int
    available: int

    @property
    def load_percent(self) -> int:
        """Planned against available, capped at 100 for drawing (the numbers stay shown)."""
        if self.available <= 0:
            return 100 if self.planned else 0
        return min(100, round(100 * self.planned / self.available))


@dataclass(frozen=True)
class Absence:
    first: date
    last: date


@dataclass(frozen=True)
class StaffEntry:
    code: str
    naam: str
    organisatie: str
    rol: Role
    gemeenten: tuple[str, ...]
    absences: tuple[Absence, ...] = field(default=())


@dataclass(frozen=True)
class AbsenceRecorded:
    code: str
    first: date
    last: date
    visits_moved: int


@dataclass(frozen=True)
class Funnel:
    gemeentecode: str
    first: date
    last: date
    signals: int
    cases: int
    outreach: int
    reached: int
    help_accepted: int

    def steps(self) -> list[FunnelStep]:
        """The funnel's steps in order, each with its share of the first (for the bars)."""
        values = [
            ("signals", self.signals),
            ("cases", self.cases),
            ("outreach", self.outreach),
            ("reached", self.reached),
            ("help_accepted", self.help_accepted),
        ]
        top = max(self.signals, 1)
        return [
            FunnelStep(name, value, min(100, round(100 * value / top))) for name, value in values
        ]


@dataclass(frozen=True)
class FunnelStep:
    name: str
    value: int
    percent: int


@dataclass(frozen=True)
class DdasExport:
    """A municipality's DDAS delivery as matching made it (its bytes and media type)."""

    content: bytes
    media_type: str

    @property
    def extension(self) -> str:
        return "json" if "json" in self.media_type else "xml"


@dataclass(frozen=True)
class ContactDetails:
    """One signal's personal fields as intake returned them (label, value), for one page."""

    signal_ref: str
    fields: tuple[tuple[str, str], ...]
