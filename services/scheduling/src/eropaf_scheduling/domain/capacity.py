"""Visits planned against visit slots available, per ISO week, municipality and team.

Pure. ``available`` counts the counsellor side of the duo, the side a case's team must
provide (the employee comes from a signalling corporation, not from the team): for each
active ``schuldhulpverlener`` of the team who serves the municipality, the visits they could
make in the asked days of that week --

* per day: the parts of day their ``beschikbaar`` names, less absences and the region's
  public holidays, times the visit windows that fit in a part of day (visit duration plus
  travel buffer), at most ``max_per_dag``;
* per week: the sum of those days, at most ``max_per_week``.

A counsellor serving several municipalities counts in each of them: the same slots are
available to all of them, not once each. ``planned`` counts the visits (planned or done, not
cancelled) on the asked days of the week of the team's cases in the municipality.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from eropaf_contracts.events import StaffRole
from eropaf_scheduling.domain.model import Absence, StaffMember
from eropaf_scheduling.domain.time import PartOfDay, Slot

__all__ = ["CapacityRow", "PlannedVisit", "capacity", "iso_week", "weekly_slots"]


@dataclass(frozen=True)
class PlannedVisit:
    gemeentecode: str
    team: str
    datum: date


@dataclass(frozen=True)
class CapacityRow:
    week: str  # ISO week, "2026-W46"
    gemeentecode: str
    team: str
    planned: int
    available: int


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def weekly_slots(
    member: StaffMember,
    days: Iterable[date],
    absences: tuple[Absence, ...],
    holidays: frozenset[date],
    windows_per_part: Mapping[PartOfDay, int],
) -> int:
    """The visits ``member`` could make on ``days`` (one ISO week's worth)."""
    total = 0
    for day in days:
        if day in holidays:
            continue
        fits = sum(
            windows_per_part.get(part, 0)
            for part in PartOfDay
            if member.available(Slot(day, part), absences)
        )
        total += min(member.max_per_dag, fits)
    return min(member.max_per_week, total)


def capacity(
    *,
    first: date,
    last: date,
    gemeenten: Iterable[str],
    staff: Iterable[StaffMember],
    absences: tuple[Absence, ...],
    holidays: frozenset[date],
    windows_per_part: Mapping[PartOfDay, int],
    visits: Iterable[PlannedVisit],
) -> list[CapacityRow]:
    """One row per ISO week touching ``first``..``last``, municipality of ``gemeenten`` and
    team that serves it or has a visit in it; sorted by week, municipality, team."""
    if last < first:
        raise ValueError("last is before first")
    wanted = frozenset(gemeenten)
    weeks: dict[str, list[date]] = {}
    day = first
    while day <= last:
        weeks.setdefault(iso_week(day), []).append(day)
        day += timedelta(days=1)
    counsellors = [
        m for m in staff if m.active and m.rol is StaffRole.SCHULDHULPVERLENER and m.gemeenten
    ]
    planned: Counter[tuple[str, str, str]] = Counter(
        (iso_week(v.datum), v.gemeentecode, v.team)
        for v in visits
        if v.gemeentecode in wanted and first <= v.datum <= last
    )
    rows: list[CapacityRow] = []
    for week, days in weeks.items():
        for gemeente in sorted(wanted):
            serving = [m for m in counsellors if gemeente in m.gemeenten]
            teams = {m.organisatie for m in serving} | {
                team for (w, g, team) in planned if w == week and g == gemeente
            }
            for team in sorted(teams):
                available = sum(
                    weekly_slots(m, days, absences, holidays, windows_per_part)
                    for m in serving
                    if m.organisatie == team
                )
                rows.append(
                    CapacityRow(week, gemeente, team, planned[(week, gemeente, team)], available)
                )
    return rows
