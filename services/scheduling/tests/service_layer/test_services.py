"""Use cases on the in-memory unit of work: roster, cases from matching, replanning with
its events, contact attempts up to the attempt limit, absences, closures and re-keying."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from eropaf_contracts.ddas import Contactsoort, Eindresultaat, Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseClosed,
    CaseUpdated,
    OutreachDecided,
    OutreachKind,
    StaffRole,
    Urgency,
)
from eropaf_contracts.region import load_region
from eropaf_contracts.topics import STAFF_TOPIC, VISITS_TOPIC
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.app import SchedulingSettings, planning_config
from eropaf_scheduling.domain.model import Plan, PlanningProblem
from eropaf_scheduling.domain.planning import violations
from eropaf_scheduling.domain.schedule import ScheduleError, VisitRecord
from eropaf_scheduling.domain.time import PartOfDay
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig

from ..builders import counsellor, employee, member, ref
from .fakes import FakeSchedulingUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # Monday
CONFIG = PlanningConfig(region=load_region(), horizon_days=10)


class CountingPlanner:
    def __init__(self) -> None:
        self.inner = CpSatPlanner(max_deterministic_time=2.0)
        self.calls = 0

    def plan(self, problem: PlanningProblem) -> Plan:
        self.calls += 1
        plan = self.inner.plan(problem)
        assert violations(problem, plan) == []
        return plan


def decided(
    name: str, outreach: OutreachKind = OutreachKind.HOME_VISIT, **kw: Any
) -> tuple[OutreachDecided, Envelope]:
    fields: dict[str, Any] = {
        "case_ref": ref(name),
        "household_ref": ref("hh-" + name),
        "gemeentecode": "0356",
        "team": "wil",
        "postcode_area": "3431",
        "outreach": outreach,
        "urgency": Urgency.NORMAL,
        "deadline": date(2026, 6, 10),
        "priority": 10,
        "rule_ids": ["huurachterstand"],
        "decided_at": NOW,
        "partner_codes": ["mitros"],
    }
    fields.update(kw)
    event = OutreachDecided(**fields)
    return event, Envelope.wrap(event, key=event.case_ref)


def published(
    uow: FakeSchedulingUnitOfWork, topic: str = VISITS_TOPIC
) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for m in uow.published:
        if m.topic == topic:
            env = Envelope.from_bytes(m.value)
            out.append((env.type.rsplit(".", 2)[-2] + "." + env.type.rsplit(".", 1)[-1], env.data))
    return out


@pytest.fixture
async def uow() -> FakeSchedulingUnitOfWork:
    u = FakeSchedulingUnitOfWork()
    staff = [employee("mitros-a"), employee("mitros-b"), counsellor("wil-a"), counsellor("wil-b")]
    await services.import_roster(u, staff, NOW)
    u.published.clear()
    return u


async def plan_now(
    uow: FakeSchedulingUnitOfWork, planner: CountingPlanner | None = None, now: datetime = NOW
) -> services.ReplanOutcome | None:
    return await services.replan(uow.factory(), planner or CountingPlanner(), CONFIG, now)


async def not_at_home(
    uow: FakeSchedulingUnitOfWork, config: PlanningConfig, visit: VisitRecord, now: datetime
) -> None:
    """The duo of ``visit`` did not reach the household (a card is left)."""
    await services.record_contact_attempt(
        uow,
        config,
        case_ref=visit.case_ref,
        recorded_by=visit.staff[1],
        contactsoort=Contactsoort.HUISBEZOEK,
        datum=visit.datum,
        dagdeel=None,
        bereikt=False,
        eindresultaat=None,
        visit_id=visit.visit_id,
        now=now,
    )


async def test_roster_import_gives_tokens_once_and_publishes_staff_changes() -> None:
    u = FakeSchedulingUnitOfWork()
    staff = [employee("mitros-a"), counsellor("wil-a")]
    tokens = await services.import_roster(u, staff, NOW)
    assert sorted(tokens) == ["mitros-a", "wil-a"]
    assert [d["code"] for _, d in published(u, STAFF_TOPIC)] == ["mitros-a", "wil-a"]
    member = await u.repo.staff_by_token_hash(services.hash_token(tokens["wil-a"]))
    assert member is not None and member.code == "wil-a"
    u.published.clear()
    assert await services.import_roster(u, staff, NOW) == {}
    assert u.published == []
    changed = [employee("mitros-a", max_per_dag=1), counsellor("wil-a")]
    assert await services.import_roster(u, changed, NOW) == {}
    assert [d["code"] for _, d in published(u, STAFF_TOPIC)] == ["mitros-a"]


async def test_home_visit_case_is_planned_with_a_duo(uow: FakeSchedulingUnitOfWork) -> None:
    event, env = decided("a")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    outcome = await plan_now(uow)
    assert outcome is not None
    kinds = [k for k, _ in published(uow)]
    assert kinds == ["visit.planned", "outreach.planned"]
    visit = published(uow)[0][1]
    assert visit["staff"][0].startswith("mitros-") and visit["staff"][1].startswith("wil-")
    assert visit["datum"] >= "2026-06-02" and visit["datum"] <= "2026-06-10"
    assert visit["start"].endswith("+02:00")
    assert await plan_now(uow) is None  # nothing changed: no solve


async def test_burst_of_cases_is_one_solve(uow: FakeSchedulingUnitOfWork) -> None:
    planner = CountingPlanner()
    for i in range(50):
        event, env = decided(f"burst-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
        assert await services.replan(uow.factory(), planner, CONFIG, NOW, quiet_s=5) is None
    await services.replan(uow.factory(), planner, CONFIG, NOW + timedelta(seconds=6), quiet_s=5)
    assert planner.calls == 1


async def test_phone_outreach_is_a_task_without_visit(uow: FakeSchedulingUnitOfWork) -> None:
    event, env = decided("phone", OutreachKind.PHONE)
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    assert [k for k, _ in published(uow)] == ["outreach.planned"]
    await services.record_contact_attempt(
        uow,
        CONFIG,
        case_ref=ref("phone"),
        recorded_by="wil-a",
        contactsoort=Contactsoort.TELEFOON,
        datum=date(2026, 6, 2),
        dagdeel=None,
        bereikt=True,
        eindresultaat=Eindresultaat.GEEN_HULP_NODIG,
        visit_id=None,
        now=NOW,
    )
    kinds = [k for k, _ in published(uow)]
    assert kinds[-2:] == ["contact_attempt.recorded", "case_outcome.recorded"]


async def test_not_reached_three_times_ends_without_contact(uow: FakeSchedulingUnitOfWork) -> None:
    event, env = decided("c", deadline=date(2026, 6, 12))
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    now = NOW
    parts: list[str] = []
    for attempt in (1, 2, 3):
        await plan_now(uow, now=now)
        visit = next(v for v in uow.repo.visits.values() if v.status == "planned")
        assert visit.attempt == attempt
        assert visit.part.value not in parts  # another part of day each time
        parts.append(visit.part.value)
        await not_at_home(uow, CONFIG, visit, now)
        now = datetime.combine(visit.datum, datetime.min.time(), tzinfo=UTC) + timedelta(hours=20)
    kinds = [k for k, _ in published(uow)]
    assert kinds.count("visit.planned") == 3
    assert kinds.count("visit.completed") == 3
    attempts = [d for k, d in published(uow) if k == "contact_attempt.recorded"]
    assert [(a["soort"], a["attempt"]) for a in attempts] == [
        ("Huisbezoek", 1),
        ("Kaartje", 1),
        ("Huisbezoek", 2),
        ("Kaartje", 2),
        ("Huisbezoek", 3),
        ("Kaartje", 3),
    ]
    outcome = [d for k, d in published(uow) if k == "case_outcome.recorded"]
    assert outcome == [
        {
            "case_ref": ref("c"),
            "resultaat": "Definitief geen contact kunnen krijgen",
            "datum": outcome[0]["datum"],
        }
    ]
    with pytest.raises(ScheduleError):
        await services.record_contact_attempt(
            uow,
            CONFIG,
            case_ref=ref("c"),
            recorded_by="wil-a",
            contactsoort=Contactsoort.HUISBEZOEK,
            datum=date(2026, 6, 20),
            dagdeel=PartOfDay.OCHTEND,
            bereikt=False,
            eindresultaat=None,
            visit_id=None,
            now=now,
        )


async def test_reached_needs_an_eindresultaat(uow: FakeSchedulingUnitOfWork) -> None:
    event, env = decided("r")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    with pytest.raises(ScheduleError, match="eindresultaat"):
        await services.record_contact_attempt(
            uow,
            CONFIG,
            case_ref=ref("r"),
            recorded_by="wil-a",
            contactsoort=Contactsoort.HUISBEZOEK,
            datum=date(2026, 6, 2),
            dagdeel=PartOfDay.OCHTEND,
            bereikt=True,
            eindresultaat=None,
            visit_id=None,
            now=NOW,
        )


async def test_absence_moves_only_that_persons_visits(uow: FakeSchedulingUnitOfWork) -> None:
    for i in range(6):
        event, env = decided(f"abs-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    before = {v.case_ref: v for v in uow.repo.visits.values()}
    gone = "wil-a"
    uow.published.clear()
    await services.record_absence(uow, gone, date(2026, 6, 1), date(2026, 6, 30), NOW)
    outcome = await plan_now(uow)
    assert outcome is not None
    theirs = {ref_ for ref_, v in before.items() if gone in v.staff}
    assert outcome.plan.moved == len(theirs)
    changed = {
        d["case_ref"] for k, d in published(uow) if k in ("visit.rescheduled", "visit.cancelled")
    }
    assert changed == theirs
    for k, d in published(uow):
        if k == "visit.rescheduled":
            assert gone in d["previous_staff"] and gone not in d["staff"]
            assert d["sequence"] == 1


async def test_absence_and_replan_counts_the_visits_taken_off_the_member(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    for i in range(6):
        event, env = decided(f"abs-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    theirs = {v.visit_id for v in uow.repo.visits.values() if "wil-a" in v.staff}
    assert theirs
    planner = CountingPlanner()

    async def replan_now() -> None:
        await plan_now(uow, planner)

    first, last = date(2026, 6, 1), date(2026, 6, 30)
    recorded = await services.record_absence_and_replan(
        uow.factory(), "wil-a", first, last, NOW, replan_now
    )
    assert recorded == services.AbsenceRecorded(
        "wil-a", first, last, visits_moved=len(theirs), replanned=True
    )
    assert planner.calls == 1 and not (await uow.repo.replan_state()).due
    assert not [v for v in uow.repo.visits.values() if "wil-a" in v.staff and v.status == "planned"]


async def test_absence_without_a_replan_is_left_to_the_replan_job(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    event, env = decided("abs")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    calls = 0

    async def replan_later() -> None:  # e.g. another change arrived during every solve
        nonlocal calls
        calls += 1

    day = date(2026, 6, 2)
    recorded = await services.record_absence_and_replan(
        uow.factory(), "wil-a", day, day, NOW, replan_later, tries=2
    )
    assert calls == 2 and recorded.replanned is False and recorded.visits_moved == 0
    assert (await uow.repo.replan_state()).due  # the replan job will plan with it
    assert [(a.code, a.first) for a in await uow.repo.absences()] == [("wil-a", day)]
    with pytest.raises(services.UnknownStaff):
        await services.record_absence_and_replan(
            uow.factory(), "nobody", day, day, NOW, replan_later
        )


async def test_closed_case_cancels_its_visit_and_rekeyed_case_keeps_it(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    event, env = decided("old")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    updated = CaseUpdated(
        case_ref=ref("new"),
        household_ref=ref("hh-old"),
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        signal_refs=[ref("s1")],
        partner_types=[Signaalpartner.HUUR],
        change="merged",
        updated_at=NOW,
        previous_case_refs=[ref("old")],
    )
    await services.case_updated(
        uow, updated, Envelope.wrap(updated, key=updated.case_ref), CONFIG, NOW
    )
    assert ref("old") not in uow.repo.cases and ref("new") in uow.repo.cases
    assert {v.case_ref for v in uow.repo.visits.values()} == {ref("new")}
    uow.published.clear()
    assert await plan_now(uow) is not None
    assert published(uow) == []  # same visit, nothing to tell
    closed = CaseClosed(
        case_ref=ref("old"),
        household_ref=ref("hh-old"),
        gemeentecode="0356",
        team="wil",
        signal_refs=[ref("s1")],
        resultaat=Eindresultaat.ZELF_BETAALD_OF_REGELING,
        closed_at=NOW,
    )
    await services.case_closed(uow, closed, Envelope.wrap(closed, key=closed.case_ref), CONFIG, NOW)
    kinds = published(uow)
    assert [(k, d["reason"]) for k, d in kinds] == [("visit.cancelled", "case_closed")]
    assert json.dumps(kinds)  # payloads are plain JSON


async def test_unplannable_case_is_published_with_its_reason(uow: FakeSchedulingUnitOfWork) -> None:
    event, env = decided("far", gemeentecode="0331", postcode_area="3411")  # no staff serve Lopik
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    unplanned = [d for k, d in published(uow) if k == "case.unplanned"]
    assert [(u["case_ref"], u["reason"]) for u in unplanned] == [
        (ref("far"), "no_counsellor_available")
    ]
    assert [e.case_ref for e in uow.repo.backlog_rows] == [ref("far")]


async def test_a_replan_reads_the_cases_it_plans_not_every_open_case(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    for i in range(2):
        event, env = decided(f"home-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    for i in range(20):
        event, env = decided(f"phone-{i}", outreach=OutreachKind.PHONE)
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    assert await plan_now(uow) is not None
    homes = {ref("home-0"), ref("home-1")}
    assert {v.case_ref for v in uow.repo.visits.values()} == homes
    # Visits are read once, together, for the cases that got a new one; none per open case.
    assert sorted(uow.repo.visits_read) == sorted(homes)
    assert uow.repo.cases_read == 1
    uow.repo.visits_read.clear()
    event, env = decided("phone-20", outreach=OutreachKind.PHONE)
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await services.record_absence(uow, "mitros-a", date(2026, 5, 1), date(2026, 5, 29), NOW)
    assert await plan_now(uow) is not None
    assert uow.repo.visits_read == []  # every visit kept: nothing more to read


async def test_a_cancelled_visit_planned_again_keeps_its_id_with_a_higher_sequence(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    event, env = decided("again")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    [first] = [d for k, d in published(uow) if k == "visit.planned"]
    for code in ("wil-a", "wil-b"):
        await services.record_absence(uow, code, date(2026, 6, 1), date(2026, 6, 30), NOW)
    uow.published.clear()
    await plan_now(uow)
    kinds = [(k, d.get("reason")) for k, d in published(uow)]
    assert kinds == [
        ("visit.cancelled", "staff_absent"),
        ("case.unplanned", "no_counsellor_available"),
    ]
    uow.published.clear()
    await services.import_roster(uow, [counsellor("wil-c")], NOW)
    await plan_now(uow)
    [again] = [d for k, d in published(uow) if k == "visit.planned"]
    assert again["visit_id"] == first["visit_id"] and again["attempt"] == first["attempt"] == 1
    assert again["sequence"] == 2 and again["staff"][1] == "wil-c"


async def test_a_steady_trickle_of_changes_is_planned_by_the_maximum_delay(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    planner = CountingPlanner()
    planned_after: list[int] = []
    for second in range(0, 60, 2):  # a change every 2 s: never 5 s of quiet
        at = NOW + timedelta(seconds=second)
        event, env = decided(f"trickle-{second}")
        await services.outreach_decided(uow, event, env, CONFIG, at)
        look = at + timedelta(seconds=1)
        if await services.replan(uow.factory(), planner, CONFIG, look, quiet_s=5, max_delay_s=30):
            planned_after.append(second + 1)
    # The first change came at 0 s: planned at the first look 30 s or more after it; the
    # changes after that plan wait for their own 30 s (from 32 s), past the end of the test.
    assert planned_after == [31]
    assert planner.calls == 1


async def test_the_region_policy_names_the_last_attempt_the_setting_is_the_fallback(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    region = CONFIG.region
    unnamed = region.model_copy(update={"home_visit_attempts": None})
    assert PlanningConfig(region=unnamed, fallback_attempts=2).max_attempts == 2
    settings = SchedulingSettings(
        database_url="postgresql://db/scheduling", max_contact_attempts=5, dev_mode=True
    )
    assert region.home_visit_attempts == 3
    assert planning_config(settings).max_attempts == 3  # the packaged region's policy wins
    once = PlanningConfig(
        region=region.model_copy(update={"home_visit_attempts": 1}), fallback_attempts=5
    )
    event, env = decided("once")
    await services.outreach_decided(uow, event, env, once, NOW)
    await services.replan(uow.factory(), CountingPlanner(), once, NOW)
    [visit] = uow.repo.visits.values()
    await not_at_home(uow, once, visit, NOW)
    outcomes = [d["resultaat"] for k, d in published(uow) if k == "case_outcome.recorded"]
    assert outcomes == ["Definitief geen contact kunnen krijgen"]


async def test_a_visit_whose_day_passed_with_nothing_recorded_is_overdue_in_the_backlog(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    event, env = decided("late")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    [visit] = uow.repo.visits.values()
    uow.published.clear()
    day_after = datetime.combine(visit.datum + timedelta(days=1), time(8), tzinfo=UTC)
    # No change came, but a new day did: planned again, and the visit found overdue.
    assert await plan_now(uow, now=day_after) is not None
    [(kind, unplanned)] = published(uow)
    assert kind == "case.unplanned"
    assert (unplanned["case_ref"], unplanned["reason"], unplanned["attempt"]) == (
        ref("late"),
        "visit_overdue",
        1,
    )
    assert [(e.case_ref, e.reason) for e in uow.repo.backlog_rows] == [
        (ref("late"), "visit_overdue")
    ]
    assert uow.repo.visits[visit.visit_id].status == "planned"  # the duo records what happened
    uow.published.clear()
    assert await plan_now(uow, now=day_after + timedelta(hours=1)) is None  # same day
    await not_at_home(uow, CONFIG, visit, day_after)
    await plan_now(uow, now=day_after)
    assert [e.reason for e in uow.repo.backlog_rows if e.case_ref == ref("late")] == []
    [again] = [d for k, d in published(uow) if k == "visit.planned"]
    assert again["attempt"] == 2  # the next attempt, planned as usual


async def test_visits_shown_are_those_of_visible_cases_read_in_bulk(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    for i in range(6):
        event, env = decided(f"seen-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    first, last = date(2026, 6, 1), date(2026, 6, 30)
    uow.repo.visits_read.clear()
    employee_a = uow.repo.staff_rows["mitros-a"][0]
    mine = await services.visible_visits(uow, employee_a, first, last)
    assert mine and all("mitros-a" in v.staff for _, v in mine)
    everyone = await services.visible_visits(uow, uow.repo.staff_rows["wil-a"][0], first, last)
    assert len(everyone) == 6  # a counsellor of the team sees the team's cases in 0356
    assert uow.repo.visits_read == []  # no lookup per visit
    outsider = counsellor("wil-x", gemeenten=("0344",))
    assert await services.visible_visits(uow, outsider, first, last) == []
    coordinator = member("coord-x", StaffRole.COORDINATOR, "wil")
    assert len(await services.visible_visits(uow, coordinator, first, last)) == 6


async def test_capacity_counts_planned_visits_reading_their_cases_in_bulk(
    uow: FakeSchedulingUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        event, env = decided(f"cap-{i}")
        await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await plan_now(uow)
    first, last = date(2026, 6, 1), date(2026, 6, 30)
    planned = [v for v in uow.repo.visits.values() if first <= v.datum <= last]
    assert planned

    async def one_by_one(case_ref: str) -> None:
        raise AssertionError(f"case {case_ref} read on its own")

    monkeypatch.setattr(uow.repo, "case", one_by_one)  # every ref is a current one here
    rows = await services.capacity(uow, CONFIG, frozenset({"0356"}), first, last)
    assert sum(r.planned for r in rows) == len(planned)
    assert {r.gemeentecode for r in rows} == {"0356"}


def renamed(new: str, *previous: str, household: str = "hh-new", **kw: Any) -> CaseUpdated:
    fields: dict[str, Any] = {
        "case_ref": ref(new),
        "household_ref": ref(household),
        "gemeentecode": "0356",
        "team": "wil",
        "postcode_area": "3431",
        "signal_refs": [ref("s1"), ref("s2")],
        "partner_types": [Signaalpartner.HUUR],
        "change": "signal_added",
        "updated_at": NOW,
        "previous_case_refs": [ref(p) for p in previous],
    }
    fields.update(kw)
    return CaseUpdated(**fields)


async def update(uow: FakeSchedulingUnitOfWork, event: CaseUpdated) -> None:
    await services.case_updated(uow, event, Envelope.wrap(event, key=event.case_ref), CONFIG, NOW)


async def test_a_decision_under_the_old_ref_after_the_rename_changes_nothing(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    """A merge of households gives the case another key: its old household's events (here
    a phone call decided before a second signal made it a home visit) may come after the
    renamed case's own."""
    await update(uow, renamed("new", "old"))
    event, env = decided("new", household_ref=ref("hh-new"), urgency=Urgency.HIGH)
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    stale, stale_env = decided("old", OutreachKind.PHONE)
    await services.outreach_decided(uow, stale, stale_env, CONFIG, NOW)
    assert list(uow.repo.cases) == [ref("new")]
    case = uow.repo.cases[ref("new")]
    assert (case.outreach, case.urgency, case.outreach_planned) == (
        OutreachKind.HOME_VISIT,
        Urgency.HIGH,
        False,
    )
    assert published(uow) == []  # no task told for a case that is a home visit


async def test_a_decision_under_the_old_ref_opens_the_case_under_its_new_ref(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    await update(uow, renamed("new", "old"))
    event, env = decided("old")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    assert list(uow.repo.cases) == [ref("new")]
    await plan_now(uow)
    assert {v.case_ref for v in uow.repo.visits.values()} == {ref("new")}


async def test_an_update_under_the_old_ref_after_the_rename_keeps_the_routing(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    event, env = decided("old")
    await services.outreach_decided(uow, event, env, CONFIG, NOW)
    await update(uow, renamed("new", "old", team="mitros"))
    await update(uow, renamed("old", team="wil", household="hh-old"))
    assert list(uow.repo.cases) == [ref("new")]
    assert uow.repo.cases[ref("new")].team == "mitros"


async def test_a_merge_keeps_the_outreach_planned_of_the_absorbed_case(
    uow: FakeSchedulingUnitOfWork,
) -> None:
    """Matching's merged case is as far along as the furthest of the two: the letter's task
    was told, so a visit planned later tells no first contact again."""
    letter, env = decided("letter", OutreachKind.LETTER)
    await services.outreach_decided(uow, letter, env, CONFIG, NOW)
    home, env = decided("home")
    await services.outreach_decided(uow, home, env, CONFIG, NOW)
    await update(uow, renamed("home", "letter", change="merged"))
    assert list(uow.repo.cases) == [ref("home")]
    assert uow.repo.cases[ref("home")].outreach_planned
    uow.published.clear()
    await plan_now(uow)
    assert [k for k, _ in published(uow)] == ["visit.planned"]
