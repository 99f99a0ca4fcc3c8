"""Who may see and record on a case (CONTRACT §4.2)."""

from __future__ import annotations

from collections.abc import Iterable

from eropaf_contracts.events import StaffRole
from eropaf_scheduling.domain.model import StaffMember
from eropaf_scheduling.domain.schedule import CaseRecord, VisitRecord

__all__ = ["may_see"]


def may_see(member: StaffMember, case: CaseRecord, case_visits: Iterable[VisitRecord]) -> bool:
    """A coordinator: every case in their municipalities. Anyone: the cases of their own
    visits (``case_visits`` are all visits of the case). A counsellor also: their team's
    cases in the municipalities they serve."""
    if member.rol is StaffRole.COORDINATOR:
        return case.gemeentecode in member.gemeenten
    if any(member.code in v.staff for v in case_visits):
        return True
    return (
        member.rol is StaffRole.SCHULDHULPVERLENER
        and member.organisatie == case.team
        and case.gemeentecode in member.gemeenten
    )
