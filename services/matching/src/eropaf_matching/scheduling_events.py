"""What matching reads from scheduling on ``VISITS_TOPIC`` (minimal, matching's own for now).

Scheduling does not exist yet; these payloads are the least matching needs to keep the DDAS
case record complete (``contactpogingen``, end result). When scheduling lands, they move to
``eropaf_contracts.events`` (with snapshots) and this module re-exports them. Pseudonymous
like every internal event: only case refs, dates and DDAS enum values.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from eropaf_contracts.base import IsoDate
from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat
from eropaf_contracts.events import EventPayload

__all__ = ["CaseOutcomeRecorded", "ContactAttemptRecorded", "OutreachPlanned"]

Ref = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,128}$")]


class OutreachPlanned(EventPayload):
    """The first contact is planned (e.g. a home visit was announced)."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.outreach.planned"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    planned_on: IsoDate


class ContactAttemptRecorded(EventPayload):
    """A DDAS ``contactpoging``: how, whether the household was reached, when."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.contact_attempt.recorded"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    soort: Contactsoort = Field(strict=False)
    bereikt: bool
    datum: IsoDate
    dagdeel: Dagdeel | None = Field(default=None, strict=False)


class CaseOutcomeRecorded(EventPayload):
    """Staff registered the end result of a case."""

    EVENT_TYPE: ClassVar[str] = "eropaf.scheduling.case_outcome.recorded"
    VERSION: ClassVar[int] = 1

    case_ref: Ref
    resultaat: Eindresultaat = Field(strict=False)
    datum: IsoDate
