"""The staff API against its own OpenAPI document (schemathesis): whatever the document allows
or nearly allows, no 5xx, every answer documented and shaped as documented, 401 without a
known token and 403 on a case that is not the caller's. Served over real HTTP (uvicorn in a
thread) on the SQL unit of work and PostgreSQL, with a roster and a planned visit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from schemathesis.transport.prepare import get_exclude_headers
from sqlalchemy.ext.asyncio import AsyncEngine

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, OutreachKind, StaffRole, Urgency
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.testing.openapi import fuzz_openapi
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.api import staff_app
from eropaf_scheduling.app import MIGRATIONS, SchedulingSettings, planning_config
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import PlanningConfig
from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

from ..builders import counsellor, employee, member, ref

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 120
CASE_OPERATIONS = ("GET /v1/cases/{case_ref}", "POST /v1/cases/{case_ref}/contact-attempts")

# Who may see the case (its counsellor, its corporation's employee, the municipality's
# coordinator), who may not (another corporation's employee), and no or a wrong token.
SEES_THE_CASE = ("counsellor", "employee", "coordinator")
MODES = [*SEES_THE_CASE, "counsellor-any-case", "other", "none", "garbage"]


@dataclass
class Served:
    base_url: str
    case_ref: str
    visit_id: str
    tokens: dict[str, str]  # mode -> token


async def _seed(url: str, config: PlanningConfig) -> tuple[dict[str, str], str, str]:
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
        return tokens, case_ref, visits[0].visit_id
    finally:
        await engine.dispose()


def _serve(server: uvicorn.Server, engine: AsyncEngine) -> None:
    """On the thread's own event loop, the only one that ever uses the engine's connections."""

    async def run() -> None:
        try:
            await server.serve()
        finally:
            await engine.dispose()

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def served(_database_registry: Any) -> AsyncIterator[Served]:
    url = _database_registry.create("eropaf_scheduling_oas")
    config = planning_config(SchedulingSettings(database_url=url, dev_mode=True))
    tokens, case_ref, visit_id = await _seed(url, config)
    port = _free_port()
    engine = make_engine(url, pool_size=2)
    app = staff_app(config, sql_units_of_work(make_sessions(engine)))
    server = uvicorn.Server(uvicorn.Config(app, port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=_serve, args=(server, engine), daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the staff API did not start"
        await asyncio.sleep(0.05)
    by_mode = {
        "counsellor": tokens["wil-oas"],
        "counsellor-any-case": tokens["wil-oas"],
        "employee": tokens["mitros-oas"],
        "coordinator": tokens["coord-oas"],
        "other": tokens["viveste-oas"],
        "garbage": "not-a-token",
    }
    try:
        yield Served(base_url, case_ref, visit_id, by_mode)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 30)


def test_every_operation_conforms_to_the_openapi_document(
    served: Served, request: pytest.FixtureRequest
) -> None:
    def prepare(case: schemathesis.Case, mode: str) -> dict[str, str]:
        # the case's own reference, except in one mode that sends whatever was generated
        if "case_ref" in (case.path_parameters or {}) and mode != "counsellor-any-case":
            case.path_parameters = {**(case.path_parameters or {}), "case_ref": served.case_ref}
        if case.headers:
            case.headers.pop("authorization", None)  # case-insensitive
        token = served.tokens.get(mode)
        return {"Authorization": f"Bearer {token}"} if token else {}

    seen: dict[str, set[int]] = defaultdict(set)

    def expect(case: schemathesis.Case, mode: str, status: int) -> None:
        operation = case.operation.label
        seen[operation].add(status)
        # a negative case that leaves out the security scheme's header sends no token at all
        dropped = {name.lower() for name in get_exclude_headers(case)}
        if "authorization" in dropped or mode in ("none", "garbage"):
            assert status == 401, (mode, operation, status)
        elif mode == "other" and operation in CASE_OPERATIONS:
            assert status == 403, (mode, operation, status)
        elif mode == "employee" and operation == "GET /v1/backlog":
            assert status == 403, (mode, operation, status)
        elif mode in SEES_THE_CASE:
            assert status not in (401, 403, 404), (mode, operation, status)

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
    }, tried
    # the modes reached what they stand for: served, refused, and (case endpoints) forbidden
    for operation, statuses in seen.items():
        assert {401} <= statuses and any(200 <= s < 300 for s in statuses), (operation, statuses)
    for operation in CASE_OPERATIONS:
        assert {403, 404, 422} <= seen[operation], (operation, seen[operation])
    for operation, count in sorted(tried.items()):
        request.node.user_properties.append(
            ("openapi_examples", (f"staff API: {operation}", count))
        )


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
