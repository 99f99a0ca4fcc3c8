"""The CP-SAT planner on pure data: every hard rule, the objective's orderings, backlog
reasons, pinned visits, minimal change, determinism and daylight-saving weeks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from eropaf_contracts.events import BacklogReason, Urgency
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.domain.model import Absence, Plan, PlanningProblem, StaffMember
from eropaf_scheduling.domain.planning import violations
from eropaf_scheduling.domain.time import AMSTERDAM, PartOfDay, Slot, local_instant, visit_windows

from ..builders import ALL_WEEK, case, counsellor, employee, problem, ref

pytestmark = pytest.mark.unit

MONDAY = date(2026, 6, 1)
PLANNER = CpSatPlanner(max_deterministic_time=5.0)


def solve(p: PlanningProblem) -> Plan:
    plan = PLANNER.plan(p)
    assert violations(p, plan) == []
    return plan


def team(n_emp: int = 3, n_couns: int = 3, **kw: object) -> list[StaffMember]:
    return [employee(f"emp-{i}", **kw) for i in range(n_emp)] + [  # type: ignore[arg-type]
        counsellor(f"shv-{i}", **kw)  # type: ignore[arg-type]
        for i in range(n_couns)
    ]


def test_every_case_gets_a_valid_duo_before_its_deadline() -> None:
    cases = [case(f"c{i}", MONDAY + timedelta(days=4)) for i in range(12)]
    p = problem(MONDAY, team(), cases)
    plan = solve(p)
    assert len(plan.assignments) == 12
    assert plan.backlog == ()
    for a in plan.assignments:
        assert a.staff[0].startswith("emp-") and a.staff[1].startswith("shv-")
        assert a.slot.datum <= MONDAY + timedelta(days=4)


def test_no_one_double_booked_and_capacity_held() -> None:
    staff = [
        employee("emp-a", max_per_dag=2, max_per_week=4),
        counsellor("shv-a", max_per_dag=1, max_per_week=3),
        counsellor("shv-b", max_per_dag=2, max_per_week=3),
    ]
    cases = [case(f"c{i}", MONDAY + timedelta(days=4)) for i in range(8)]
    plan = solve(problem(MONDAY, staff, cases))
    assert len(plan.assignments) == 4  # emp-a's week is the limit
    assert {e.reason for e in plan.backlog} == {BacklogReason.CAPACITY_EXHAUSTED}
    assert len(plan.backlog) == 4
    seen = set()
    for a in plan.assignments:
        for code in a.staff:
            assert (code, a.slot, a.window) not in seen
            seen.add((code, a.slot, a.window))


def test_employee_comes_from_the_signalling_corporation_and_serves_the_municipality() -> None:
    staff = [
        employee("mitros-1", "mitros"),
        employee("viveste-1", "viveste"),
        employee("viveste-far", "viveste", gemeenten=("0321",)),
        counsellor("shv-1"),
        counsellor("shv-houten", gemeenten=("0321",)),
    ]
    cases = [
        case("m", MONDAY + timedelta(days=4), corporations=("mitros",)),
        case("v", MONDAY + timedelta(days=4), corporations=("eneco", "viveste")),
        case("none", MONDAY + timedelta(days=4), corporations=("eneco",)),
    ]
    plan = solve(problem(MONDAY, staff, cases))
    by_case = {a.case_ref: a for a in plan.assignments}
    assert by_case[ref("m")].staff == ("mitros-1", "shv-1")
    assert by_case[ref("v")].staff == ("viveste-1", "shv-1")
    # no corporation signalled: a second counsellor of the team serving the municipality
    assert ref("none") in {e.case_ref for e in plan.backlog}
    assert [e.reason for e in plan.backlog] == [BacklogReason.NO_COUNSELLOR_AVAILABLE]


def test_two_counsellors_when_no_corporation_signalled() -> None:
    staff = [counsellor("shv-1"), counsellor("shv-2")]
    plan = solve(problem(MONDAY, staff, [case("x", MONDAY, corporations=())]))
    assert sorted(plan.assignments[0].staff) == ["shv-1", "shv-2"]


def test_availability_pattern_and_absence_respected() -> None:
    staff = [
        employee(
            "emp", beschikbaar=frozenset({("di", PartOfDay.MIDDAG), ("wo", PartOfDay.OCHTEND)})
        ),
        counsellor(
            "shv", beschikbaar=frozenset({("di", PartOfDay.MIDDAG), ("wo", PartOfDay.OCHTEND)})
        ),
    ]
    absent = (Absence("shv", MONDAY + timedelta(days=1), MONDAY + timedelta(days=1)),)
    plan = solve(problem(MONDAY, staff, [case("x", MONDAY + timedelta(days=4))], absences=absent))
    assert plan.assignments[0].slot == Slot(MONDAY + timedelta(days=2), PartOfDay.OCHTEND)


def test_backlog_reasons_are_explicit() -> None:
    staff = [
        employee("emp", beschikbaar=frozenset({("vr", PartOfDay.OCHTEND)})),
        counsellor("shv", beschikbaar=frozenset({("ma", PartOfDay.OCHTEND)})),
    ]
    cases = [
        case("no-emp", MONDAY + timedelta(days=2)),  # employee only on Friday
        case("passed", MONDAY - timedelta(days=1)),
        case("no-shv", MONDAY + timedelta(days=4), gemeente="0321"),
        case("apart", MONDAY + timedelta(days=4)),  # never together
    ]
    plan = solve(problem(MONDAY, staff, cases))
    reasons = {e.case_ref: e.reason for e in plan.backlog}
    assert reasons == {
        ref("no-emp"): BacklogReason.NO_EMPLOYEE_AVAILABLE,
        ref("passed"): BacklogReason.DEADLINE_PASSED,
        ref("no-shv"): BacklogReason.NO_COUNSELLOR_AVAILABLE,
        ref("apart"): BacklogReason.NO_EMPLOYEE_AVAILABLE,
    }
    assert plan.assignments == ()


def test_crisis_before_high_before_normal_then_priority() -> None:
    staff = [employee("emp", max_per_week=3), counsellor("shv", max_per_week=3)]
    deadline = MONDAY + timedelta(days=4)
    cases = [
        case("normal-low", deadline, priority=1),
        case("normal-high", deadline, priority=40),
        case("high", deadline, Urgency.HIGH),
        case("crisis", deadline, Urgency.CRISIS),
    ]
    plan = solve(problem(MONDAY, staff, cases))
    assert {a.case_ref for a in plan.assignments} == {
        ref("crisis"),
        ref("high"),
        ref("normal-high"),
    }
    assert [e.case_ref for e in plan.backlog] == [ref("normal-low")]
    first = min(plan.assignments, key=lambda a: (a.slot.sort_key(), a.window))
    assert first.case_ref == ref("crisis")


def test_far_municipalities_not_combined_in_one_part_of_day() -> None:
    staff = [
        employee("emp", gemeenten=("0356", "0331"), max_per_dag=2),
        counsellor("shv", gemeenten=("0356", "0331"), max_per_dag=2),
    ]
    cases = [case("n", MONDAY, gemeente="0356"), case("l", MONDAY, gemeente="0331")]
    # deadline Monday: both fit only if one is in the morning and one in the afternoon
    plan = solve(problem(MONDAY, staff, cases, travel={("0356", "0331"): 45}))
    assert len(plan.assignments) == 2
    assert len({a.slot for a in plan.assignments}) == 2


def test_fair_spread_over_staff() -> None:
    cases = [case(f"c{i}", MONDAY + timedelta(days=4)) for i in range(6)]
    plan = solve(problem(MONDAY, team(3, 3), cases))
    loads: dict[str, int] = {}
    for a in plan.assignments:
        for code in a.staff:
            loads[code] = loads.get(code, 0) + 1
    assert sorted(loads.values()) == [2] * 6


def test_same_input_same_plan() -> None:
    cases = [case(f"c{i}", MONDAY + timedelta(days=3 + i % 3), priority=i % 7) for i in range(30)]
    p = problem(MONDAY, team(4, 4), cases)
    assert CpSatPlanner(max_deterministic_time=2.0).plan(p).assignments == (
        CpSatPlanner(max_deterministic_time=2.0).plan(p).assignments
    )


def test_pinned_visits_do_not_move_on_replan() -> None:
    cases = [case(f"c{i}", MONDAY + timedelta(days=4)) for i in range(6)]
    first = solve(problem(MONDAY, team(2, 2), cases))
    pinned = tuple(replace(a, pinned=True) for a in first.assignments)
    urgent = case("crisis", MONDAY, Urgency.CRISIS)
    again = solve(problem(MONDAY, team(2, 2), [*cases, urgent], previous=pinned))
    for before in pinned:
        assert before in again.assignments
    assert again.moved == 0
    assert ref("crisis") in {a.case_ref for a in again.assignments}


def test_pinned_visit_moves_when_its_member_is_absent() -> None:
    cases = [case("c", MONDAY + timedelta(days=4))]
    first = solve(problem(MONDAY, team(1, 2), cases))
    before = replace(first.assignments[0], pinned=True)
    gone = before.staff[1]
    absent = (Absence(gone, MONDAY, MONDAY + timedelta(days=10)),)
    again = solve(problem(MONDAY, team(1, 2), cases, previous=(before,), absences=absent))
    after = again.assignments[0]
    assert gone not in after.staff
    assert (after.slot, after.staff[0]) == (before.slot, before.staff[0])  # only the member changes
    assert again.moved == 1


def test_minimal_change_after_one_absence() -> None:
    staff = team(4, 4, max_per_dag=3, max_per_week=8)
    cases = [case(f"c{i}", MONDAY + timedelta(days=4), priority=i) for i in range(24)]
    first = solve(problem(MONDAY, staff, cases))
    assert len(first.assignments) == 24
    absentee = "shv-0"
    theirs = [a for a in first.assignments if absentee in a.staff]
    absent = (Absence(absentee, MONDAY, MONDAY + timedelta(days=6)),)
    again = solve(problem(MONDAY, staff, cases, previous=first.assignments, absences=absent))
    assert len(again.assignments) == 24
    assert again.moved == len(theirs)
    after = {a.case_ref: a for a in again.assignments}
    for a in first.assignments:
        if absentee not in a.staff:
            assert after[a.case_ref] == a


def test_next_attempt_avoids_the_part_of_day_tried() -> None:
    tried = case(
        "x",
        MONDAY + timedelta(days=4),
        attempt=2,
        avoid_parts=frozenset({PartOfDay.OCHTEND}),
        not_before=MONDAY + timedelta(days=1),
    )
    plan = solve(problem(MONDAY, team(1, 1), [tried]))
    assert plan.assignments[0].slot.part is not PartOfDay.OCHTEND
    assert plan.assignments[0].slot.datum >= MONDAY + timedelta(days=1)


def test_holidays_and_weekends_are_not_planned() -> None:
    holiday = MONDAY + timedelta(days=2)
    p = problem(
        MONDAY,
        team(1, 1),
        [case("x", MONDAY + timedelta(days=7))],
        days=5,
        holidays=frozenset({holiday}),
    )
    assert holiday not in p.days
    assert all(d.weekday() < 5 for d in p.days)


@pytest.mark.parametrize(
    ("monday", "sunday_offsets"),
    [
        (date(2026, 10, 19), ("+02:00", "+01:00")),  # clocks back on Sunday 25 October 2026
        (date(2027, 3, 22), ("+01:00", "+02:00")),  # clocks forward on Sunday 28 March 2027
    ],
)
def test_week_across_a_daylight_saving_change(
    monday: date, sunday_offsets: tuple[str, str]
) -> None:
    weekend = frozenset(ALL_WEEK | {("za", p) for p in PartOfDay} | {("zo", p) for p in PartOfDay})
    staff = [
        employee("emp", beschikbaar=weekend, max_per_dag=1),
        counsellor("shv", beschikbaar=weekend, max_per_dag=1),
    ]
    cases = [case(f"c{i}", monday + timedelta(days=9)) for i in range(9)]
    p = problem(monday, staff, cases, days=7)
    plan = solve(p)
    days = sorted(a.slot.datum for a in plan.assignments)
    assert days == [monday + timedelta(days=i) for i in range(9)]  # Sunday included
    before, after = sunday_offsets
    for a in plan.assignments:
        start_t, end_t = visit_windows(a.slot.part, 60, 30)[a.window]
        start = local_instant(a.slot.datum, start_t)
        end = local_instant(a.slot.datum, end_t)
        assert (end - start).total_seconds() == 3600
        assert start.tzinfo is AMSTERDAM
        offset = start.isoformat()[-6:]
        assert offset == (before if a.slot.datum < monday + timedelta(days=6) else after)


def test_non_existent_and_doubled_local_hours_are_refused() -> None:
    from datetime import time

    with pytest.raises(ValueError, match="does not exist"):
        local_instant(date(2027, 3, 28), time(2, 30))
    with pytest.raises(ValueError, match="twice"):
        local_instant(date(2026, 10, 25), time(2, 30))
    assert local_instant(date(2026, 10, 25), time(9, 0)).isoformat() == "2026-10-25T09:00:00+01:00"


def test_cases_far_beyond_capacity_give_a_valid_plan_urgent_first() -> None:
    # one duo, 5 days: room for far fewer visits than cases; the surplus is not modelled
    normal = [case(f"n{i}", MONDAY + timedelta(days=4)) for i in range(150)]
    crisis = [case(f"x{i}", MONDAY + timedelta(days=4), Urgency.CRISIS) for i in range(3)]
    p = problem(MONDAY, team(1, 1), [*normal, *crisis])
    plan = solve(p)
    planned = {a.case_ref for a in plan.assignments}
    assert {ref(f"x{i}") for i in range(3)} <= planned
    assert 0 < len(planned) < len(p.cases)
    assert {e.case_ref for e in plan.backlog} == {c.case_ref for c in p.cases} - planned


def test_no_time_left_gives_the_greedy_plan_in_time() -> None:
    cases = [case(f"c{i}", MONDAY + timedelta(days=3 + i % 3), priority=i % 7) for i in range(60)]
    p = problem(MONDAY, team(4, 4), cases)
    plan = CpSatPlanner(max_seconds=0.0).plan(p)
    assert violations(p, plan) == []
    assert plan.stats["greedy_parts"] == plan.stats["components"] >= 1
    assert len(plan.assignments) > 0
