"""The staff API's portal endpoints on the in-memory unit of work: acting for a staff member
with the internal token, who am I, the team and its absences (recorded and replanned within
the request), capacity, and phone/letter tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, OutreachKind, StaffRole, Urgency
from eropaf_contracts.region import load_region
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig

from ..builders import counsellor, employee, member, ref
from ..service_layer.fakes import FakeSchedulingUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # Monday
CONFIG = PlanningConfig(region=load_region())
INTERNAL = "internal-token-for-tests"


def decided(name: str, outreach: OutreachKind, gemeente: str = "0356") -> OutreachDecided:
    return OutreachDecided(
        case_ref=ref(name),
        household_ref=ref("hh" + name),
        gemeentecode=gemeente,
        team="wil",
        postcode_area="3431",
        outreach=outreach,
        urgency=Urgency.HIGH,
        deadline=date(2026, 6, 12),
        priority=5,
        rule_ids=["crisis"],
        decided_at=NOW,
        partner_codes=["mitros"],
    )


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Any]]:
    uow = FakeSchedulingUnitOfWork()
    staff = [
        employee("mitros-a"),
        counsellor("wil-a"),
        counsellor("wil-houten", gemeenten=("0321",)),
        member("coord", StaffRole.COORDINATOR, "wil", gemeenten=("0356",), beschikbaar=frozenset()),
        member("coord-houten", StaffRole.COORDINATOR, "wil", gemeenten=("0321",)),
        replace(counsellor("gone"), active=False),
    ]
    tokens = await services.import_roster(uow, staff, NOW)
    for event in (
        decided("visit", OutreachKind.HOME_VISIT),
        decided("phone", OutreachKind.PHONE),
        decided("letter", OutreachKind.LETTER, gemeente="0321"),
    ):
        await services.outreach_decided(
            uow, event, Envelope.wrap(event, key=event.case_ref), CONFIG, NOW
        )
    planner = CpSatPlanner(max_deterministic_time=1.0)
    await services.replan(uow.factory(), planner, CONFIG, NOW)

    async def replan_now() -> None:
        await services.replan(uow.factory(), planner, CONFIG, NOW)

    app = staff_app(CONFIG, uow.factory(), internal_token=INTERNAL, replan_now=replan_now)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client, tokens, uow


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def acting(code: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {INTERNAL}", "X-Staff-Code": code}


async def test_the_internal_token_acts_for_an_active_staff_member(setup) -> None:
    client, tokens, _ = setup
    me = await client.get("/v1/me", headers=acting("wil-a"))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "code": "wil-a",
        "naam": "Wil-A",
        "email": "wil-a@example.org",
        "organisatie": "wil",
        "rol": "schuldhulpverlener",
        "gemeenten": ["0356"],
        "taal": "nl",
        "bericht": "direct",
    }
    for headers in (
        acting("nobody"),
        acting("gone"),  # inactive
        acting("NOT A CODE"),
        auth(INTERNAL),  # no X-Staff-Code
        {"Authorization": "Bearer wrong", "X-Staff-Code": "wil-a"},
    ):
        response = await client.get("/v1/me", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    # with a staff token, X-Staff-Code changes nothing: one acts only as oneself
    own = await client.get("/v1/me", headers={**auth(tokens["mitros-a"]), "X-Staff-Code": "coord"})
    assert own.json()["code"] == "mitros-a"


async def test_same_rules_when_acting_for_a_member(setup) -> None:
    client, _, _ = setup
    url = f"/v1/cases/{ref('visit')}"
    assert (await client.get(url, headers=acting("wil-a"))).status_code == 200
    assert (await client.get(url, headers=acting("wil-houten"))).status_code == 403
    assert (await client.get("/v1/backlog", headers=acting("mitros-a"))).status_code == 403
    assert (await client.get("/v1/staff", headers=acting("wil-a"))).status_code == 403


async def test_staff_of_the_coordinators_municipalities(setup) -> None:
    client, tokens, _ = setup
    response = await client.get("/v1/staff", headers=auth(tokens["coord"]))
    assert response.status_code == 200, response.text
    staff = response.json()["staff"]
    assert [m["code"] for m in staff] == ["coord", "mitros-a", "wil-a"]  # not inactive "gone"
    assert staff[2] == {
        "code": "wil-a",
        "naam": "Wil-A",
        "organisatie": "wil",
        "rol": "schuldhulpverlener",
        "gemeenten": ["0356"],
        "absences": [],
    }
    houten = (await client.get("/v1/staff", headers=acting("coord-houten"))).json()["staff"]
    assert [m["code"] for m in houten] == ["coord-houten", "wil-houten"]
    for code in ("mitros-a", "wil-a"):
        assert (await client.get("/v1/staff", headers=auth(tokens[code]))).status_code == 403


async def test_an_absence_moves_the_visits_within_the_request(setup) -> None:
    client, tokens, uow = setup
    (visit,) = [v for v in uow.repo.visits.values() if v.status == "planned"]
    assert "wil-a" in visit.staff
    day = visit.datum.isoformat()
    response = await client.post(
        "/v1/staff/wil-a/absences", json={"from": day, "to": day}, headers=acting("coord")
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"code": "wil-a", "from": day, "to": day, "visits_moved": 1}
    # recorded as `eropaf staff absent` does, and replanned: no visit of wil-a that day
    assert [(a.code, a.first, a.last) for a in await uow.repo.absences()] == [
        ("wil-a", visit.datum, visit.datum)
    ]
    assert not (await uow.repo.replan_state()).due
    assert not [
        v
        for v in uow.repo.visits.values()
        if v.status == "planned" and v.datum == visit.datum and "wil-a" in v.staff
    ]
    staff = (await client.get("/v1/staff", headers=auth(tokens["coord"]))).json()["staff"]
    assert next(m for m in staff if m["code"] == "wil-a")["absences"] == [{"from": day, "to": day}]
    # nothing of wil-a's left in that period: recording it again moves nothing
    again = await client.post(
        "/v1/staff/wil-a/absences", json={"from": day, "to": day}, headers=auth(tokens["coord"])
    )
    assert again.status_code == 201 and again.json()["visits_moved"] == 0


async def test_absence_refusals(setup) -> None:
    client, tokens, uow = setup
    body = {"from": "2026-06-02", "to": "2026-06-03"}
    url = "/v1/staff/wil-a/absences"
    assert (await client.post(url, json=body)).status_code == 401
    assert (await client.post(url, json=body, headers=auth(tokens["wil-a"]))).status_code == 403
    not_theirs = await client.post(url, json=body, headers=acting("coord-houten"))
    assert not_theirs.status_code == 403
    unknown = await client.post("/v1/staff/nobody/absences", json=body, headers=acting("coord"))
    assert unknown.status_code == 404
    backwards = {"from": "2026-06-03", "to": "2026-06-02"}
    response = await client.post(url, json=backwards, headers=acting("coord"))
    assert response.status_code == 422, response.text
    for bad in ({"from": "2026-06-03"}, {"from": "x", "to": "2026-06-02"}, {**body, "extra": 1}):
        assert (await client.post(url, json=bad, headers=acting("coord"))).status_code == 422
    # refused before the body is read: a non-coordinator learns nothing about its shape
    assert (await client.post(url, json=backwards, headers=acting("wil-a"))).status_code == 403
    assert await uow.repo.absences() == []


async def test_capacity(setup) -> None:
    client, tokens, uow = setup
    (visit,) = [v for v in uow.repo.visits.values() if v.status == "planned"]
    assert visit.datum.isocalendar()[1] == 23
    url = "/v1/capacity?from=2026-06-01&to=2026-06-14"
    response = await client.get(url, headers=auth(tokens["coord"]))
    assert response.status_code == 200, response.text
    # wil-a: 3 visits a day (max_per_dag) on 5 days, at most 10 a week (max_per_week)
    row = {"gemeentecode": "0356", "team": "wil"}
    assert response.json() == {
        "weeks": [
            {"week": "2026-W23", **row, "planned": 1, "available": 10},
            {"week": "2026-W24", **row, "planned": 0, "available": 10},
        ]
    }
    # absent Monday to Wednesday of week 24: 2 days of 3
    await client.post(
        "/v1/staff/wil-a/absences",
        json={"from": "2026-06-08", "to": "2026-06-10"},
        headers=auth(tokens["coord"]),
    )
    week24 = (
        await client.get("/v1/capacity?from=2026-06-08&to=2026-06-14", headers=acting("coord"))
    ).json()["weeks"]
    assert [(w["week"], w["available"]) for w in week24] == [("2026-W24", 6)]
    assert (await client.get(url, headers=auth(tokens["wil-a"]))).status_code == 403
    backwards = "/v1/capacity?from=2026-06-14&to=2026-06-01"
    assert (await client.get(backwards, headers=auth(tokens["coord"]))).status_code == 400
    too_long = "/v1/capacity?from=2026-01-01&to=2027-06-01"
    assert (await client.get(too_long, headers=auth(tokens["coord"]))).status_code == 400


async def test_tasks_are_open_phone_and_letter_cases_the_caller_may_see(setup) -> None:
    client, tokens, _ = setup

    async def tasks(headers: dict[str, str]) -> list[dict[str, Any]]:
        response = await client.get("/v1/tasks", headers=headers)
        assert response.status_code == 200, response.text
        return list(response.json()["tasks"])

    phone = {
        "case_ref": ref("phone"),
        "gemeentecode": "0356",
        "outreach": "phone",
        "deadline": "2026-06-12",
    }
    letter = {**phone, "case_ref": ref("letter"), "gemeentecode": "0321", "outreach": "letter"}
    assert await tasks(auth(tokens["coord"])) == [phone]
    assert await tasks(acting("wil-a")) == [phone]
    assert await tasks(acting("wil-houten")) == [letter]
    assert await tasks(acting("coord-houten")) == [letter]
    assert await tasks(auth(tokens["mitros-a"])) == []  # an employee has visits, not tasks
    reached = {
        "contactsoort": "Telefoon",
        "datum": "2026-06-02",
        "dagdeel": "Ochtend",
        "bereikt": True,
        "eindresultaat": "Inwoner hoeft geen hulp vanuit vroegsignalering",
    }
    url = f"/v1/cases/{ref('phone')}/contact-attempts"
    assert (await client.post(url, json=reached, headers=acting("wil-a"))).status_code == 201
    assert await tasks(acting("wil-a")) == []  # done: no longer open
