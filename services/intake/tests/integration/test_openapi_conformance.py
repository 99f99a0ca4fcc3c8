"""Intake's HTTP API against its own OpenAPI document (schemathesis): whatever the document
allows or nearly allows, no 5xx, every answer documented and shaped as documented, and
401/403 where they belong. Intake serves over real HTTP (uvicorn in a thread, PostgreSQL; no
broker needed by these endpoints)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis

from eropaf_intake import partners
from eropaf_intake.app import MIGRATIONS, build
from eropaf_platform.db import migrate_async
from eropaf_platform.testing.openapi import fuzz_openapi
from eropaf_platform.testing.serving import serve_in_thread

from .support import INTERNAL_TOKEN, admin_session, intake_settings

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 60


@dataclass
class Served:
    base_url: str
    code: str
    token: str
    other_token: str


@pytest.fixture(scope="module")
async def served(module_database_url: str) -> AsyncIterator[Served]:
    settings = intake_settings("127.0.0.1:9", module_database_url, http_rate_per_second=0)
    await migrate_async(settings.database_url, MIGRATIONS, service="intake")
    code, other = f"oas-{uuid.uuid4().hex[:6]}", f"oas-{uuid.uuid4().hex[:6]}"
    async with admin_session(settings) as session:
        mine = await partners.onboard(session, code, "OpenAPI", ["Huur"])
        theirs = await partners.onboard(session, other, "Other", ["Huur"])
    service, app = build(settings)
    # No lifespan: the endpoints need only the database, not the running consumers.
    async with serve_in_thread(app, service.engine.dispose) as base_url:
        yield Served(base_url, code, mine.token, theirs.token)


def test_every_operation_conforms_to_the_openapi_document(
    served: Served, request: pytest.FixtureRequest
) -> None:
    def prepare(case: schemathesis.Case, mode: str) -> dict[str, str]:
        internal = case.operation.path.startswith("/internal")
        if "code" in (case.path_parameters or {}) and mode != "garbage":
            case.path_parameters = {**(case.path_parameters or {}), "code": served.code}
        if mode == "none" and case.headers:
            case.headers.pop("authorization", None)  # case-insensitive
        token = {
            "right": INTERNAL_TOKEN if internal else served.token,
            "other": served.other_token,
            "garbage": "not-a-token",
        }.get(mode)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def expect(case: schemathesis.Case, mode: str, status: int) -> None:
        internal = case.operation.path.startswith("/internal")
        if mode in ("none", "garbage"):
            # FastAPI checks declared parameters (422) before the endpoint checks the token.
            assert status == 401 or (internal and status == 422), status
        elif mode == "other" and not internal:
            assert status == 403, status

    tried = fuzz_openapi(
        served.base_url,
        modes=["right", "right", "right", "none", "other", "garbage"],
        prepare=prepare,
        expect=expect,
        examples_per_operation=EXAMPLES_PER_OPERATION,
    )
    assert len(tried) >= 2, tried
    request.node.user_properties.append(
        ("door_examples", ("schemathesis: intake API", sum(tried.values())))
    )


def test_documented_answers_of_the_partners_endpoint(served: Served) -> None:
    document = httpx.get(f"{served.base_url}/openapi.json").json()
    submit = document["paths"]["/v1/partners/{code}/signals"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "429"} <= set(submit["responses"])
    assert {"application/json", "text/csv"} <= set(submit["requestBody"]["content"])
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    internal = document["paths"]["/internal/v1/personal-data"]["get"]
    assert {"200", "400", "401", "422"} <= set(internal["responses"])
