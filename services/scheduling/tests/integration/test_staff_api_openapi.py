"""The staff API against its own OpenAPI document (schemathesis): whatever the document allows
or nearly allows, no 5xx, every answer documented and shaped as documented, 401 without a
known token (or with the internal token for no active staff member), 403 on a case that is
not the caller's and on the coordinators' operations for anyone else. Callers come with
their own staff token or as the portal does (the internal token and X-Staff-Code). Served
over real HTTP (uvicorn in a thread) on the SQL unit of work and PostgreSQL, with a roster
and a planned visit; an absence replans within the request (CP-SAT)."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.transport.prepare import get_exclude_headers

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, OutreachKind, StaffRole, Urgency
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.testing.openapi import fuzz_openapi
from eropaf_platform.testing.serving import serve_in_thread
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.app import MIGRATIONS, SchedulingSettings, planning_config
from eropaf_scheduling.domain.schedule import VisitRecord
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

from ..builders import counsellor, employee, member, ref

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 120
INTERNAL_TOKEN = "internal-token-of-the-fuzz"
CASE_OPERATIONS = ("GET /v1/cases/{case_ref}", "POST /v1/cases/{case_ref}/contact-attempts")
ABSENCES = "POST /v1/staff/{code}/absences"
COORDINATOR_OPERATIONS = ("GET /v1/staff", ABSENCES, "GET /v1/capacity")

# Who may see the case (its counsellor, its corporation's employee, the municipality's
# coordinator; with their own token or through the internal one), who may not (another
# corporation's employee), and no or a wrong token, or the internal one for nobody.
ROLE = {
    "counsellor": "counsellor",
    "employee": "employee",
    "coordinator": "coordinator",
    "as-counsellor": "counsellor",
    "as-coordinator": "coordinator",
    "counsellor-any-case": "counsellor",
    "coordinator-any-staff": "coordinator",
    "other": "other",
}
SEES_THE_CASE = ("counsellor", "employee", "coordinator", "as-counsellor", "as-coordinator")
UNKNOWN = ("none", "garbage", "as-nobody", "as-no-code")
MODES = [*ROLE, *UNKNOWN]
CASE_REF = r"[0-9a-f]{16,128}"
STAFF_CODE = r"[a-z0-9-]{2,32}"
# X-Staff-Code sent with the internal token
ACTS_FOR = {"as-counsellor": "wil-oas", "as-coordinator": "coord-oas", "as-nobody": "nobody-oas"}


@dataclass
class Served:
    base_url: str
    case_ref: str
    visit_id: str
    tokens: dict[str, str]  # mode -> token
    visit_day: str


async def _seed(url: str, config: PlanningConfig) -> tuple[dict[str, str], str, VisitRecord]:
    """The roster, one home-visit case and its planned visit: (tokens by code, case, visit)."""
    await migrate_async(url, MIGRATIONS, service="scheduling")
    engine = make_engine(url, pool_size=1)
    try:
        unit_of_work = sql_units_of_work(make_sessions(engine))
        now = datetime.now(UTC)
        staff = [
            counsellor("wil-oas"),
            employee("mitros-oas"),
            employee("viveste-oas", "viveste"),
            member("coord-oas", StaffRole.COORDINATOR, "wil", beschikbaar=frozenset()),
        ]
        async with unit_of_work() as uow:
            tokens = await services.import_roster(uow, staff, now)
        case_ref = ref(uuid.uuid4().hex)
        event = OutreachDecided(
            case_ref=case_ref,
            household_ref=ref("hh" + case_ref),
            gemeentecode="0356",
            team="wil",
            postcode_area="3431",
            outreach=OutreachKind.HOME_VISIT,
            urgency=Urgency.HIGH,
            deadline=now.date() + timedelta(days=14),
            priority=5,
            rule_ids=["huurachterstand"],
            decided_at=now,
            partner_codes=["mitros"],
        )
        async with unit_of_work() as uow:
            await services.outreach_decided(
                uow, event, Envelope.wrap(event, key=case_ref), config, now
            )
        planner = CpSatPlanner(max_deterministic_time=1.0)
        await services.replan(unit_of_work, planner, config, now)
        async with unit_of_work() as uow:
            visits = await uow.repo.visits_of(case_ref)
        assert [sorted(v.staff) for v in visits] == [["mitros-oas", "wil-oas"]], visits
        return tokens, case_ref, visits[0]
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def served(_database_registry: Any) -> AsyncIterator[Served]:
    url = _database_registry.create("eropaf_scheduling_oas")
    config = planning_config(SchedulingSettings(database_url=url, dev_mode=True))
    tokens, case_ref, visit = await _seed(url, config)
    engine = make_engine(url, pool_size=2)
    units = sql_units_of_work(make_sessions(engine))
    planner = CpSatPlanner(max_deterministic_time=1.0)

    async def replan_now() -> None:
        await services.replan(units, planner, config, datetime.now(UTC))

    app = staff_app(config, units, internal_token=INTERNAL_TOKEN, replan_now=replan_now)
    by_mode = {
        "counsellor": tokens["wil-oas"],
        "counsellor-any-case": tokens["wil-oas"],
        "employee": tokens["mitros-oas"],
        "coordinator": tokens["coord-oas"],
        "other": tokens["viveste-oas"],
        "garbage": "not-a-token",
        "coordinator-any-staff": tokens["coord-oas"],
        **dict.fromkeys([*ACTS_FOR, "as-no-code"], INTERNAL_TOKEN),
    }
    async with serve_in_thread(app, engine.dispose) as base_url:
        yield Served(base_url, case_ref, visit.visit_id, by_mode, visit.datum.isoformat())


def test_an_absence_replans_within_the_request(served: Served) -> None:
    """Before the fuzz, which records absences of its own."""
    headers = {"Authorization": f"Bearer {INTERNAL_TOKEN}", "X-Staff-Code": "coord-oas"}
    day = served.visit_day
    response = httpx.post(
        f"{served.base_url}/v1/staff/wil-oas/absences",
        json={"from": day, "to": day},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"code": "wil-oas", "from": day, "to": day, "visits_moved": 1}
    visits = httpx.get(
        f"{served.base_url}/v1/visits", params={"from": day, "to": day}, headers=headers
    ).json()["visits"]
    assert not [v for v in visits if v["status"] == "planned" and "wil-oas" in v["staff"]]
    staff = httpx.get(f"{served.base_url}/v1/staff", headers=headers).json()["staff"]
    assert {"from": day, "to": day} in next(m for m in staff if m["code"] == "wil-oas")["absences"]


def test_every_operation_conforms_to_the_openapi_document(
    served: Served, request: pytest.FixtureRequest
) -> None:
    def prepare(case: schemathesis.Case, mode: str) -> dict[str, str]:
        # the case's own reference and a counsellor of the coordinator's municipality, except
        # in one mode each that sends whatever was generated
        # (those who may see it send a malformed one as generated too: 422 before all else)
        path = case.path_parameters or {}
        ref = str(path.get("case_ref", ""))
        keep = mode == "counsellor-any-case" or (
            mode in SEES_THE_CASE and not re.fullmatch(CASE_REF, ref)
        )
        if "case_ref" in path and not keep:
            path = {**path, "case_ref": served.case_ref}
        code = str(path.get("code", ""))
        keep = mode == "coordinator-any-staff" or (
            ROLE.get(mode) == "coordinator" and not re.fullmatch(STAFF_CODE, code)
        )
        if "code" in path and not keep:
            path = {**path, "code": "wil-oas"}
        if case.path_parameters:
            case.path_parameters = path
        if case.operation.label == "GET /v1/capacity" and mode == "coordinator":
            _within_weeks(case)
        if case.headers:
            case.headers.pop("authorization", None)  # case-insensitive
            case.headers.pop("x-staff-code", None)
        token = served.tokens.get(mode)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if mode in ACTS_FOR:
            headers["X-Staff-Code"] = ACTS_FOR[mode]
        return headers

    seen: dict[str, set[int]] = defaultdict(set)

    def expect(case: schemathesis.Case, mode: str, status: int) -> None:
        operation = case.operation.label
        seen[operation].add(status)
        # a negative case that leaves out the security scheme's header sends no token at all
        dropped = {name.lower() for name in get_exclude_headers(case)}
        role = ROLE.get(mode)
        if "authorization" in dropped or mode in UNKNOWN:
            assert status == 401, (mode, operation, status)
        elif operation in COORDINATOR_OPERATIONS and role != "coordinator":
            assert status == 403, (mode, operation, status)
        elif mode == "other" and operation in CASE_OPERATIONS:
            assert status == 403, (mode, operation, status)
        elif role == "employee" and operation == "GET /v1/backlog":
            assert status == 403, (mode, operation, status)
        elif mode in SEES_THE_CASE:
            assert status not in (401, 403, 404), (mode, operation, status)
        else:
            assert status != 401, (mode, operation, status)

    tried = fuzz_openapi(
        served.base_url,
        modes=MODES,
        prepare=prepare,
        expect=expect,
        examples_per_operation=EXAMPLES_PER_OPERATION,
    )
    assert set(tried) == {
        "GET /v1/visits",
        "GET /v1/backlog",
        "GET /v1/cases/{case_ref}",
        "POST /v1/cases/{case_ref}/contact-attempts",
        "GET /v1/me",
        "GET /v1/staff",
        ABSENCES,
        "GET /v1/capacity",
        "GET /v1/tasks",
    }, tried
    # the modes reached what they stand for: served, refused, and (case endpoints) forbidden
    for operation, statuses in seen.items():
        assert {401} <= statuses and any(200 <= s < 300 for s in statuses), (operation, statuses)
    for operation in CASE_OPERATIONS:
        assert {403, 404, 422} <= seen[operation], (operation, seen[operation])
    assert {201, 403, 404, 422} <= seen[ABSENCES], seen[ABSENCES]
    for operation, count in sorted(tried.items()):
        request.node.user_properties.append(
            ("openapi_examples", (f"staff API: {operation}", count))
        )


def _within_weeks(case: schemathesis.Case) -> None:
    """Two generated dates become a period of at most 9 weeks (generated ones are mostly
    years apart, refused with 400), so that the coordinator's capacity is also served."""
    query = case.query or {}
    try:
        first = date.fromisoformat(str(query.get("from")))
        last = date.fromisoformat(str(query.get("to")))
    except ValueError:
        return
    span = timedelta(days=abs((last - first).days) % 63)
    if first + span <= date.max:
        case.query = {**query, "to": (first + span).isoformat()}


def test_documented_answers(served: Served) -> None:
    document = httpx.get(f"{served.base_url}/openapi.json").json()
    paths = document["paths"]
    assert {"200", "400", "401", "422"} <= set(paths["/v1/visits"]["get"]["responses"])
    assert {"200", "401", "403"} <= set(paths["/v1/backlog"]["get"]["responses"])
    assert {"200", "401", "403", "404", "422"} <= set(
        paths["/v1/cases/{case_ref}"]["get"]["responses"]
    )
    attempts = paths["/v1/cases/{case_ref}/contact-attempts"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "422"} <= set(attempts)
    assert {"200", "401"} <= set(paths["/v1/me"]["get"]["responses"])
    assert {"200", "401"} <= set(paths["/v1/tasks"]["get"]["responses"])
    assert {"200", "401", "403"} <= set(paths["/v1/staff"]["get"]["responses"])
    assert {"200", "400", "401", "403", "422"} <= set(paths["/v1/capacity"]["get"]["responses"])
    absences = paths["/v1/staff/{code}/absences"]["post"]["responses"]
    assert {"201", "401", "403", "404", "422"} <= set(absences)
    assert "bearer" in str(document["components"]["securitySchemes"]).lower()


def test_who_asks_and_whose_case_come_before_what_is_asked(served: Served) -> None:
    url = f"{served.base_url}/v1/cases/{served.case_ref}/contact-attempts"
    not_json = {"Content-Type": "application/json"}
    assert httpx.post(url, content=b"{", headers=not_json).status_code == 401
    other = {**not_json, "Authorization": f"Bearer {served.tokens['other']}"}
    assert httpx.post(url, content=b"{", headers=other).status_code == 403
    assert httpx.post(url, json={"bereikt": "ja"}, headers=other).status_code == 403
    mine = {**not_json, "Authorization": f"Bearer {served.tokens['counsellor']}"}
    assert httpx.post(url, content=b"{", headers=mine).status_code == 422


@pytest.mark.parametrize("case_ref", ["ab%00cd" * 4, "f" * 129, "f" * 20_000, "ABCDEF" * 4])
def test_malformed_case_references_are_422(served: Served, case_ref: str) -> None:
    """A NUL byte reached PostgreSQL (500) before the path had a pattern."""
    auth = {"Authorization": f"Bearer {served.tokens['coordinator']}"}
    response = httpx.get(f"{served.base_url}/v1/cases/{case_ref}", headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "case_ref"]
