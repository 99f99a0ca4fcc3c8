"""Parts of day, visit windows and working days, planned in Europe/Amsterdam.

Times are planned as local wall-clock times and stored as UTC instants. Parts of day lie
well away from the night-time daylight-saving changes, but every local time goes through
:func:`local_instant`, which refuses a local time that does not exist or exists twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from eropaf_contracts.ddas import Dagdeel

__all__ = [
    "AMSTERDAM",
    "WEEKDAYS",
    "PartOfDay",
    "Slot",
    "local_instant",
    "visit_windows",
    "working_days",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEKDAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")  # index = date.weekday()


class PartOfDay(StrEnum):
    """The roster's lower-case ``EnumDagdeel`` (CONTRACT §4.1)."""

    OCHTEND = "ochtend"
    MIDDAG = "middag"
    AVOND = "avond"

    @property
    def dagdeel(self) -> Dagdeel:
        return Dagdeel(self.value.capitalize())

    @classmethod
    def of(cls, dagdeel: Dagdeel | str) -> PartOfDay:
        return cls(str(dagdeel).lower())

    @property
    def hours(self) -> tuple[time, time]:
        return _HOURS[self]

    @property
    def order(self) -> int:
        return _ORDER[self]


_HOURS = {
    PartOfDay.OCHTEND: (time(9, 0), time(12, 0)),
    PartOfDay.MIDDAG: (time(13, 0), time(17, 0)),
    PartOfDay.AVOND: (time(18, 0), time(21, 0)),
}
_ORDER = {PartOfDay.OCHTEND: 0, PartOfDay.MIDDAG: 1, PartOfDay.AVOND: 2}


@dataclass(frozen=True, order=True)
class Slot:
    """One part of one local date."""

    datum: date
    part: PartOfDay

    def sort_key(self) -> tuple[date, int]:
        return (self.datum, self.part.order)

    @property
    def weekday(self) -> str:
        return WEEKDAYS[self.datum.weekday()]


def local_instant(day: date, at: time) -> datetime:
    """The aware instant of a local wall-clock time in Amsterdam.

    Raises ValueError for a local time that does not exist (spring forward) or that exists
    twice (fall back): a visit is never planned at such an hour.
    """
    first = datetime.combine(day, at, tzinfo=AMSTERDAM)
    second = datetime.combine(day, at, tzinfo=AMSTERDAM).replace(fold=1)
    round_trip = first.astimezone(UTC).astimezone(AMSTERDAM)
    if round_trip.replace(tzinfo=None) != first.replace(tzinfo=None):
        raise ValueError(f"{day} {at} does not exist in Europe/Amsterdam")
    if first.utcoffset() != second.utcoffset():
        raise ValueError(f"{day} {at} occurs twice in Europe/Amsterdam")
    return first


def visit_windows(
    part: PartOfDay, visit_minutes: int, travel_minutes: int
) -> list[tuple[time, time]]:
    """Start and end (local) of the visits that fit in a part of day, travel time between."""
    start, end = part.hours
    day = date(2000, 1, 3)
    cursor = datetime.combine(day, start)
    limit = datetime.combine(day, end)
    windows: list[tuple[time, time]] = []
    while cursor + timedelta(minutes=visit_minutes) <= limit:
        stop = cursor + timedelta(minutes=visit_minutes)
        windows.append((cursor.time(), stop.time()))
        cursor = stop + timedelta(minutes=travel_minutes)
    return windows


def working_days(
    first: date, count: int, holidays: frozenset[date], weekend: bool = False
) -> list[date]:
    """``count`` working days from ``first`` on (Mon-Fri, or every day with ``weekend``),
    skipping holidays."""
    days: list[date] = []
    day = first
    while len(days) < count:
        if day not in holidays and (weekend or day.weekday() < 5):
            days.append(day)
        day += timedelta(days=1)
    return days
