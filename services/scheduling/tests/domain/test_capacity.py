"""Capacity: slots of the team's counsellors per ISO week against visits planned."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from eropaf_scheduling.domain.capacity import PlannedVisit, capacity, iso_week
from eropaf_scheduling.domain.model import Absence
from eropaf_scheduling.domain.time import PartOfDay

from ..builders import counsellor, employee

pytestmark = pytest.mark.unit

WINDOWS = {PartOfDay.OCHTEND: 2, PartOfDay.MIDDAG: 3, PartOfDay.AVOND: 2}
MONDAY = date(2026, 11, 9)  # 2026-W46


def rows(**kw: object) -> list[tuple[str, str, str, int, int]]:
    args: dict[str, object] = {
        "first": MONDAY,
        "last": date(2026, 11, 15),
        "gemeenten": ["0356"],
        "staff": [],
        "absences": (),
        "holidays": frozenset(),
        "windows_per_part": WINDOWS,
        "visits": [],
    }
    args.update(kw)
    return [
        (r.week, r.gemeentecode, r.team, r.planned, r.available)
        for r in capacity(**args)  # type: ignore[arg-type]
    ]


def test_iso_week() -> None:
    assert iso_week(MONDAY) == "2026-W46"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"


def test_days_parts_and_limits() -> None:
    mornings = frozenset((d, PartOfDay.OCHTEND) for d in ("ma", "di", "wo", "do", "vr"))
    staff = [
        counsellor("a", beschikbaar=mornings, max_per_dag=5, max_per_week=50),  # 2 a day: 10
        counsellor("b", max_per_dag=3, max_per_week=8),  # 3 a day: 15, at most 8
        employee("e"),  # the employee side is not the team's capacity
        replace(counsellor("gone"), active=False),
        counsellor("other-team", team="plangroep"),
    ]
    assert rows(staff=staff) == [
        ("2026-W46", "0356", "plangroep", 0, 10),  # 15, at most 10 (default)
        ("2026-W46", "0356", "wil", 0, 18),
    ]


def test_absences_holidays_and_the_asked_days() -> None:
    staff = [counsellor("a", max_per_dag=3, max_per_week=50)]
    absent = (Absence("a", MONDAY, MONDAY), Absence("someone-else", MONDAY, date(2026, 11, 13)))
    holiday = frozenset({date(2026, 11, 10)})
    assert rows(staff=staff, absences=absent, holidays=holiday) == [
        ("2026-W46", "0356", "wil", 0, 9)
    ]
    # Wednesday to the next Tuesday: two weeks, three days and two days
    assert rows(staff=staff, first=date(2026, 11, 11), last=date(2026, 11, 17)) == [
        ("2026-W46", "0356", "wil", 0, 9),
        ("2026-W47", "0356", "wil", 0, 6),
    ]


def test_planned_visits_and_municipalities() -> None:
    both = counsellor("a", gemeenten=("0356", "0321"), max_per_dag=1, max_per_week=50)
    visits = [
        PlannedVisit("0356", "wil", MONDAY),
        PlannedVisit("0356", "wil", date(2026, 11, 12)),
        PlannedVisit("0321", "wil", MONDAY),
        PlannedVisit("0356", "plangroep", MONDAY),  # a team with no counsellor here any more
        PlannedVisit("0356", "wil", date(2026, 11, 16)),  # after the asked days
        PlannedVisit("0340", "wil", MONDAY),  # not asked for
    ]
    # one counsellor serving two municipalities counts in each
    assert rows(staff=[both], visits=visits, gemeenten=["0356", "0321"]) == [
        ("2026-W46", "0321", "wil", 1, 5),
        ("2026-W46", "0356", "plangroep", 1, 0),
        ("2026-W46", "0356", "wil", 2, 5),
    ]


def test_backwards_period() -> None:
    with pytest.raises(ValueError):
        rows(first=date(2026, 11, 15), last=MONDAY)
