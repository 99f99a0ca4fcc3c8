"""Events and roster records built from the contract models (scheduling is not running here)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from eropaf_contracts.ddas import Dagdeel
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    BacklogReason,
    CaseUnplanned,
    OutreachDecided,
    OutreachKind,
    StaffChanged,
    StaffRole,
    Urgency,
    VisitCancelled,
    VisitCancelReason,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_notification.domain.model import StaffMember

AMS = ZoneInfo("Europe/Amsterdam")
GEMEENTE = "0356"  # Nieuwegein
TEAM = "lekstroom-team"
HOURS = {
    "Ochtend": (time(9), time(10)),
    "Middag": (time(13), time(14)),
    "Avond": (time(18), time(19)),
}


def ref(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def staff(code: str, rol: StaffRole = StaffRole.SCHULDHULPVERLENER, **kw: Any) -> StaffChanged:
    return StaffChanged(
        code=code,
        naam=kw.pop("naam", f"Medewerker {code}"),
        email=kw.pop("email", f"{code}@staff.example.org"),
        organisatie=kw.pop("organisatie", TEAM),
        rol=rol,
        gemeenten=kw.pop("gemeenten", [GEMEENTE]),
        taal=kw.pop("taal", "nl"),
        bericht=kw.pop("bericht", "direct"),
        active=kw.pop("active", True),
        changed_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    )


def member(code: str, rol: StaffRole = StaffRole.SCHULDHULPVERLENER, **kw: Any) -> StaffMember:
    e = staff(code, rol, **kw)
    return StaffMember(
        code=e.code,
        naam=e.naam,
        email=e.email,
        organisatie=e.organisatie,
        rol=e.rol,
        gemeenten=tuple(e.gemeenten),
        taal=e.taal,
        bericht=e.bericht,
        active=e.active,
    )


def _slot(day: date, dagdeel: str) -> dict[str, Any]:
    first, last = HOURS[dagdeel]
    return {
        "datum": day,
        "dagdeel": Dagdeel(dagdeel),
        "start": datetime.combine(day, first, AMS),
        "end": datetime.combine(day, last, AMS),
    }


def planned(
    visit: str = "v1",
    day: date = date(2026, 11, 10),
    dagdeel: str = "Ochtend",
    duo: tuple[str, ...] = ("ann", "bob"),
    sequence: int = 0,
    case: str = "case-1",
) -> VisitPlanned:
    return VisitPlanned(
        visit_id=ref(visit),
        case_ref=ref(case),
        gemeentecode=GEMEENTE,
        team=TEAM,
        postcode_area="3431",
        staff=list(duo),
        sequence=sequence,
        attempt=1,
        deadline=date(2026, 11, 20),
        **_slot(day, dagdeel),
    )


def rescheduled(
    before: VisitPlanned | VisitRescheduled,
    day: date | None = None,
    dagdeel: str | None = None,
    duo: tuple[str, ...] | None = None,
) -> VisitRescheduled:
    data = before.model_dump(
        exclude={
            "previous_datum",
            "previous_dagdeel",
            "previous_start",
            "previous_end",
            "previous_staff",
        }
    )
    data.update(_slot(day or before.datum, dagdeel or str(before.dagdeel)))
    data["staff"] = list(duo or before.staff)
    data["sequence"] = before.sequence + 1
    return VisitRescheduled(
        **data,
        previous_datum=before.datum,
        previous_dagdeel=before.dagdeel,
        previous_start=before.start,
        previous_end=before.end,
        previous_staff=list(before.staff),
    )


def cancelled(before: VisitPlanned | VisitRescheduled) -> VisitCancelled:
    data = before.model_dump(
        exclude={
            "previous_datum",
            "previous_dagdeel",
            "previous_start",
            "previous_end",
            "previous_staff",
        }
    )
    data["sequence"] = before.sequence + 1
    return VisitCancelled(**data, reason=VisitCancelReason.CASE_CLOSED)


def decided(
    case: str = "case-1",
    outreach: OutreachKind = OutreachKind.HOME_VISIT,
    decided_at: datetime = datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    priority: int = 3,
) -> OutreachDecided:
    return OutreachDecided(
        case_ref=ref(case),
        household_ref=ref("household-" + case),
        gemeentecode=GEMEENTE,
        team=TEAM,
        postcode_area="3431",
        outreach=outreach,
        urgency=Urgency.HIGH,
        deadline=date(2026, 11, 20),
        priority=priority,
        rule_ids=["huur-2-maanden"],
        decided_at=decided_at,
        partner_codes=["mitros"],
    )


def unplanned(case: str = "case-1") -> CaseUnplanned:
    return CaseUnplanned(
        case_ref=ref(case),
        gemeentecode=GEMEENTE,
        team=TEAM,
        deadline=date(2026, 11, 20),
        attempt=1,
        reason=BacklogReason.CAPACITY_EXHAUSTED,
        detected_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )


def envelope(payload: Any, key: str | None = None) -> Envelope:
    if key is None:
        key = getattr(payload, "case_ref", None) or payload.code
    return Envelope.wrap(payload, key=key)
