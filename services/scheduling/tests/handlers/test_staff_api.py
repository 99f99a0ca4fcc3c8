"""The staff API on the in-memory unit of work: every endpoint, 401 for a missing or
unknown token, 403 for another's case, 404, 409 and 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, StaffRole, Urgency
from eropaf_contracts.region import load_region
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig

from ..builders import counsellor, employee, member, ref
from ..service_layer.fakes import FakeSchedulingUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
CONFIG = PlanningConfig(region=load_region())


@pytest.fixture
async def setup() -> AsyncIterator[
    tuple[httpx.AsyncClient, dict[str, str], FakeSchedulingUnitOfWork]
]:
    uow = FakeSchedulingUnitOfWork()
    staff = [
        employee("mitros-a"),
        employee("viveste-a", "viveste"),
        counsellor("wil-a"),
        counsellor("wil-houten", gemeenten=("0321",)),
        member("coord", StaffRole.COORDINATOR, "wil", gemeenten=("0356",), beschikbaar=frozenset()),
    ]
    tokens = await services.import_roster(uow, staff, NOW)
    event = OutreachDecided(
        case_ref=ref("case"),
        household_ref=ref("hh"),
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        outreach="home_visit",
        urgency=Urgency.HIGH,
        deadline=date(2026, 6, 12),
        priority=5,
        rule_ids=["crisis"],
        decided_at=NOW,
        partner_codes=["mitros"],
    )
    await services.outreach_decided(
        uow, event, Envelope.wrap(event, key=event.case_ref), CONFIG, NOW
    )
    await services.replan(uow.factory(), CpSatPlanner(max_deterministic_time=1.0), CONFIG, NOW)
    app = staff_app(CONFIG, uow.factory())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client, tokens, uow


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_visits_of_own_cases_only(setup) -> None:
    client, tokens, _ = setup
    url = "/v1/visits?from=2026-06-01&to=2026-06-30"
    got = await client.get(url, headers=auth(tokens["mitros-a"]))
    assert got.status_code == 200, got.text
    own = got.json()["visits"]
    assert len(own) == 1
    visit = own[0]
    assert visit["case_ref"] == ref("case") and visit["status"] == "planned"
    assert (
        visit["staff"] == ["mitros-a", "wil-a"] and visit["attempt"] == 1 and visit["sequence"] == 0
    )
    assert visit["dagdeel"] in ("Ochtend", "Middag", "Avond") and visit["start"].endswith("+02:00")
    assert (await client.get(url, headers=auth(tokens["viveste-a"]))).json() == {"visits": []}
    assert len((await client.get(url, headers=auth(tokens["coord"]))).json()["visits"]) == 1
    assert (
        await client.get("/v1/visits?from=2026-06-30&to=2026-06-01", headers=auth(tokens["coord"]))
    ).status_code == 400
    assert (
        await client.get("/v1/visits?from=nope&to=2026-06-01", headers=auth(tokens["coord"]))
    ).status_code == 422


async def test_tokens(setup) -> None:
    client, _, _ = setup
    assert (await client.get("/v1/backlog")).status_code == 401
    response = await client.get("/v1/backlog", headers=auth("not-a-token"))
    assert response.status_code == 401 and response.json() == {"detail": "unknown token"}


async def test_case_view_and_foreign_case(setup) -> None:
    client, tokens, _ = setup
    body = (await client.get(f"/v1/cases/{ref('case')}", headers=auth(tokens["wil-a"]))).json()
    assert body["case_ref"] == ref("case") and body["outreach"] == "home_visit"
    assert len(body["visits"]) == 1 and body["contact_attempts"] == []
    assert "naam" not in str(body)
    for other in ("viveste-a", "wil-houten"):
        response = await client.get(f"/v1/cases/{ref('case')}", headers=auth(tokens[other]))
        assert response.status_code == 403
    assert (
        await client.get(f"/v1/cases/{ref('none')}", headers=auth(tokens["coord"]))
    ).status_code == 404


async def test_backlog(setup) -> None:
    client, tokens, _ = setup
    assert (await client.get("/v1/backlog", headers=auth(tokens["coord"]))).json() == {"cases": []}
    assert (await client.get("/v1/backlog", headers=auth(tokens["mitros-a"]))).status_code == 403


async def test_contact_attempts(setup) -> None:
    client, tokens, uow = setup
    url = f"/v1/cases/{ref('case')}/contact-attempts"
    visit = next(iter(uow.repo.visits.values()))
    bad_bodies = [
        {"contactsoort": "Huisbezoek", "datum": "2026-06-02", "bereikt": True},  # no eindresultaat
        {"contactsoort": "Duif", "datum": "2026-06-02", "bereikt": False},
        {"contactsoort": "Huisbezoek", "datum": "2 juni", "bereikt": False},
        {"contactsoort": "Huisbezoek", "datum": "2026-06-02", "bereikt": False, "extra": 1},
    ]
    for body in bad_bodies:
        assert (await client.post(url, json=body, headers=auth(tokens["wil-a"]))).status_code == 422
    foreign = {"contactsoort": "Huisbezoek", "datum": "2026-06-02", "bereikt": False}
    assert (
        await client.post(url, json=foreign, headers=auth(tokens["viveste-a"]))
    ).status_code == 403
    wrong_visit = {**foreign, "visit_id": "ab" * 16}
    response = await client.post(url, json=wrong_visit, headers=auth(tokens["mitros-a"]))
    assert response.status_code == 409
    body = {**foreign, "datum": visit.datum.isoformat(), "visit_id": visit.visit_id}
    response = await client.post(url, json=body, headers=auth(tokens["mitros-a"]))
    assert response.status_code == 201
    assert response.json()["attempt"] == 1 and response.json()["recorded_by"] == "mitros-a"
    assert response.json()["dagdeel"] == visit.part.dagdeel.value
    reached = {
        "contactsoort": "Telefoon",
        "datum": "2026-06-05",
        "dagdeel": "Middag",
        "bereikt": True,
        "eindresultaat": "Inwoner hoeft geen hulp vanuit vroegsignalering",
    }
    response = await client.post(url, json=reached, headers=auth(tokens["wil-a"]))
    assert response.status_code == 201
    case = (await client.get(f"/v1/cases/{ref('case')}", headers=auth(tokens["wil-a"]))).json()
    assert case["state"] == "ended"
    assert case["eindresultaat"] == "Inwoner hoeft geen hulp vanuit vroegsignalering"
    assert [a["contactsoort"] for a in case["contact_attempts"]] == [
        "Huisbezoek",
        "Kaartje",
        "Telefoon",
    ]
    again = await client.post(url, json=reached, headers=auth(tokens["wil-a"]))
    assert again.status_code == 409


async def test_openapi_is_served(setup) -> None:
    client, _, _ = setup
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths) >= {
        "/v1/visits",
        "/v1/backlog",
        "/v1/cases/{case_ref}",
        "/v1/cases/{case_ref}/contact-attempts",
    }
