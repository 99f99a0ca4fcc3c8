"""Matching's internal read API over real HTTP (uvicorn in a thread) on PostgreSQL: a case's
signal refs, the funnel consistent with the DDAS delivery, the delivery itself (valid DDAS,
with client fields from a mocked intake on request), 401 without the internal token, and the
OpenAPI fuzz: no 5xx, every answer documented."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from schemathesis.transport.prepare import get_exclude_headers

from eropaf_contracts.ddas import (
    Contactsoort,
    Dagdeel,
    Eindresultaat,
    Signaalpartner,
    validate_uitwisselmodel,
)
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import SignalAccepted, SignalResolved
from eropaf_contracts.region import load_region
from eropaf_matching.adapters.case_reader import SqlCaseReader
from eropaf_matching.adapters.intake_client import IntakeClient
from eropaf_matching.adapters.tables import case_signal
from eropaf_matching.api import internal_app
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.cases import HELP_ACCEPTED
from eropaf_matching.domain.ddas_export import PersonalRecords
from eropaf_matching.policy import load_policy
from eropaf_matching.scheduling_events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
)
from eropaf_matching.service_layer import services
from eropaf_matching.service_layer.unit_of_work import MatchingUnitOfWork
from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
from eropaf_platform.testing.openapi import fuzz_openapi
from eropaf_platform.testing.serving import serve_in_thread

from ..conftest import Household

pytestmark = pytest.mark.integration

TOKEN = "internal-token-of-matching-tests"
D = date(2026, 10, 5)
REGION = load_region()
POLICY = load_policy(region=REGION)
EXAMPLES_PER_OPERATION = 80


@dataclass
class Served:
    base_url: str
    household: Household
    main_case: str  # huur + zorg, reached, help accepted
    intake_asked: list[tuple[str, list[str]]]  # (accessor, refs)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _seed(url: str, h: Household) -> str:
    """Three households in Houten's neighbour 0356 and one in 0321; one case reached with
    help accepted. Returns that case's ref."""
    await migrate_async(url, MIGRATIONS, service="matching")
    engine = make_engine(url, pool_size=1)
    sessions = make_sessions(engine)
    try:
        signals = [
            h.accepted("huur", bedrag=1400, datum=D, bsn="p", address="x1"),
            h.accepted(
                "zorg",
                partner="cz",
                type=Signaalpartner.ZORG,
                bedrag=250,
                datum=D + timedelta(days=2),
                bsn="p",
                address="x1",
            ),
            h.accepted("letter-only", bedrag=100, datum=D, bsn="q", address="x2"),
            h.accepted("paid", bedrag=300, datum=D, bsn="r", address="x3"),
            h.accepted("elsewhere", pc4="3991", bedrag=900, datum=D, bsn="s", address="x4"),
        ]
        async with transaction(sessions) as session:
            await services.handle_signal_events(
                MatchingUnitOfWork(session, POLICY, REGION),
                [(e, e.payload(SignalAccepted)) for e in signals],
            )
        resolved = h.resolved("paid", D + timedelta(days=3))
        async with transaction(sessions) as session:
            await services.handle_signal_events(
                MatchingUnitOfWork(session, POLICY, REGION),
                [(resolved, resolved.payload(SignalResolved))],
            )
        async with sessions() as session:
            case_id = await session.scalar(
                sa.select(case_signal.c.case_id).where(case_signal.c.signal_ref == h.ref("huur"))
            )
        case = await SqlCaseReader(sessions).case(str(case_id))
        assert case is not None and case.opgepakt_on is not None, case
        reports = [
            OutreachPlanned(case_ref=case.case_id, planned_on=D + timedelta(days=3)),
            ContactAttemptRecorded(
                case_ref=case.case_id,
                soort=Contactsoort.HUISBEZOEK,
                bereikt=False,
                datum=D + timedelta(days=4),
                dagdeel=Dagdeel.MIDDAG,
            ),
            ContactAttemptRecorded(
                case_ref=case.case_id,
                soort=Contactsoort.HUISBEZOEK,
                bereikt=True,
                datum=D + timedelta(days=6),
                dagdeel=Dagdeel.AVOND,
            ),
            CaseOutcomeRecorded(
                case_ref=case.case_id,
                resultaat=Eindresultaat.BUDGETADVIES_OF_QUICK_FIX,
                datum=D + timedelta(days=6),
            ),
        ]
        async with transaction(sessions) as session:
            await services.handle_visit_events(
                MatchingUnitOfWork(session, POLICY, REGION),
                [(Envelope.wrap(r, key=case.household_id), r) for r in reports],  # type: ignore[misc]
            )
        return case.case_id
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def served(_database_registry: Any) -> AsyncIterator[Served]:
    url = _database_registry.create("eropaf_matching_api")
    h = Household(uuid.uuid4().hex)
    main_case = await _seed(url, h)
    asked: list[tuple[str, list[str]]] = []

    def personal_records_for(accessor: str) -> PersonalRecords:
        def intake(request: httpx.Request) -> httpx.Response:
            refs = request.url.params.get_list("signal_ref")
            asked.append((request.headers["X-Accessor"], refs))
            known = {h.ref("huur"): {"ID": "MITROS-1", "client": {"Achternaam": "Dijk"}}}
            return httpx.Response(200, json={"records": {r: known[r] for r in refs if r in known}})

        def read(refs: list[str]) -> Any:
            transport = httpx.MockTransport(intake)
            with IntakeClient(
                "http://intake.test", TOKEN, accessor=accessor, transport=transport
            ) as c:
                return c.ddas_records(refs)

        return read

    engine = make_engine(url, pool_size=2)
    app = internal_app(
        token=TOKEN,
        reader=SqlCaseReader(make_sessions(engine)),
        region=REGION,
        personal_records_for=personal_records_for,
    )
    async with serve_in_thread(app, engine.dispose) as base_url:
        yield Served(base_url, h, main_case, asked)


def get(
    served: Served,
    path: str,
    params: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    return httpx.get(
        f"{served.base_url}{path}", params=params, headers=auth() if headers is None else headers
    )


def test_the_internal_token_is_required(served: Served) -> None:
    path = f"/internal/v1/cases/{served.main_case}/signals"
    for headers in ({}, auth("wrong"), {"Authorization": TOKEN}):
        response = get(served, path, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": "internal token required"}
    # who asks comes first: a malformed query is not even looked at
    assert get(served, "/internal/v1/funnel", {"gemeente": "x"}, headers={}).status_code == 401


def test_the_signal_refs_of_a_case(served: Served) -> None:
    h = served.household
    response = get(served, f"/internal/v1/cases/{served.main_case}/signals")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "case_ref": served.main_case,
        "signal_refs": [h.ref("huur"), h.ref("zorg")],  # in signal order
    }
    assert get(served, f"/internal/v1/cases/{'ab' * 16}/signals").status_code == 404
    malformed = get(served, "/internal/v1/cases/NOT-A-REF/signals")
    assert malformed.status_code == 422 and "detail" in malformed.json()


def test_the_funnel_is_the_ddas_delivery_counted(served: Served) -> None:
    period = {"gemeente": "0356", "from": D.isoformat(), "to": (D + timedelta(days=30)).isoformat()}
    funnel = get(served, "/internal/v1/funnel", period)
    assert funnel.status_code == 200, funnel.text
    delivery = get(served, "/internal/v1/ddas", period)
    assert delivery.status_code == 200, delivery.text
    levering = delivery.json()["leveringen"][0]
    ours = {served.household.ref(n) for n in ("huur", "zorg", "letter-only", "paid")}
    zaken = [
        z for z in levering["vroegsignaalzaken"] if {v["ID"] for v in z["vroegsignalen"]} & ours
    ]
    help_ = {r.value for r in HELP_ACCEPTED}
    reached = [z for z in zaken if any(p["bereikt"] for p in z.get("contactpogingen", []))]
    assert funnel.json() == {
        "gemeentecode": "0356",
        "from": period["from"],
        "to": period["to"],
        "signals": len(levering["vroegsignalen"]),
        "cases": len(levering["vroegsignaalzaken"]),
        "outreach": sum(1 for z in zaken if "datum_opgepakt" in z),
        "reached": len(reached),
        "help_accepted": sum(1 for z in reached if z.get("resultaat") in help_),
    }
    # this database holds only these households: the figures are theirs
    assert (funnel.json()["signals"], funnel.json()["cases"]) == (4, 3)
    assert (funnel.json()["reached"], funnel.json()["help_accepted"]) == (1, 1)
    # later: no signal received, and the reached case was closed before it began
    later = get(
        served,
        "/internal/v1/funnel",
        {"gemeente": "0356", "from": "2026-10-20", "to": "2026-11-30"},
    )
    assert later.json()["signals"] == 0 and later.json()["reached"] == 0
    houten = get(served, "/internal/v1/funnel", {**period, "gemeente": "0321"}).json()
    assert (houten["signals"], houten["cases"]) == (1, 1)


def test_the_ddas_delivery(served: Served) -> None:
    period = {"gemeente": "0356", "from": D.isoformat(), "to": (D + timedelta(days=30)).isoformat()}
    response = get(served, "/internal/v1/ddas", period)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "ddas-0356-" in response.headers["content-disposition"]
    document = response.json()
    assert validate_uitwisselmodel(document) == []
    assert all(s["client"] == {} for s in document["leveringen"][0]["vroegsignalen"])
    assert served.intake_asked == []  # no personal data asked for: intake is not called
    refused = get(served, "/internal/v1/ddas", {"personal_data": "true", **period})
    assert refused.status_code == 400 and "X-Accessor" in refused.json()["detail"]
    personal = get(
        served,
        "/internal/v1/ddas",
        {"personal_data": "true", **period},
        headers={**auth(), "X-Accessor": "portal:coord-a"},
    )
    assert personal.status_code == 200, personal.text
    signals = {s["ID"]: s for s in personal.json()["leveringen"][0]["vroegsignalen"]}
    assert signals["MITROS-1"]["client"] == {"Achternaam": "Dijk"}
    assert validate_uitwisselmodel(personal.json()) == []
    # only the delivery's own signals were read, as the portal's accessor
    ((accessor, refs),) = served.intake_asked
    assert accessor == "portal:coord-a"
    assert set(refs) == {s["ID"] for s in document["leveringen"][0]["vroegsignalen"]}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"gemeente": "9999", "from": "2026-10-01", "to": "2026-10-31"}, 400),  # not served
        ({"gemeente": "0356", "from": "2026-10-31", "to": "2026-10-01"}, 400),
        ({"gemeente": "0356", "from": "2025-01-01", "to": "2026-10-01"}, 400),
        ({"gemeente": "356", "from": "2026-10-01", "to": "2026-10-31"}, 422),
        ({"gemeente": "0356", "from": "oktober", "to": "2026-10-31"}, 422),
        ({"gemeente": "0356", "from": "2026-10-01"}, 422),
    ],
)
def test_bad_queries(served: Served, params: dict[str, str], status: int) -> None:
    for path in ("/internal/v1/funnel", "/internal/v1/ddas"):
        response = get(served, path, params)
        assert response.status_code == status, (path, response.text)
        assert "detail" in response.json()


MODES = ["internal", "internal-0356", "none", "garbage"]


def test_every_operation_conforms_to_the_openapi_document(
    served: Served, request: pytest.FixtureRequest
) -> None:
    def prepare(case: schemathesis.Case, mode: str) -> dict[str, str]:
        path = case.path_parameters or {}
        if mode == "internal-0356" and re.fullmatch(r"[0-9a-f]{16,128}", str(path.get("case_ref"))):
            case.path_parameters = {**path, "case_ref": served.main_case}
        query = case.query or {}
        if mode == "internal-0356" and re.fullmatch(r"[0-9]{4}", str(query.get("gemeente"))):
            query = {**query, "gemeente": "0356"}
            try:  # a period the API serves (generated ones are mostly years apart)
                first = date.fromisoformat(str(query.get("from")))
                last = date.fromisoformat(str(query.get("to")))
                span = timedelta(days=abs((last - first).days) % 120)
                if first + span <= date.max:
                    query = {**query, "to": (first + span).isoformat()}
            except ValueError:
                pass
            case.query = query
        if case.headers:
            case.headers.pop("authorization", None)
        token = {"internal": TOKEN, "internal-0356": TOKEN, "garbage": "not-the-token"}.get(mode)
        return auth(token) if token else {}

    seen: dict[str, set[int]] = defaultdict(set)

    def expect(case: schemathesis.Case, mode: str, status: int) -> None:
        operation = case.operation.label
        seen[operation].add(status)
        dropped = {name.lower() for name in get_exclude_headers(case)}
        if "authorization" in dropped or mode in ("none", "garbage"):
            assert status == 401, (mode, operation, status)
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
        "GET /internal/v1/cases/{case_ref}/signals",
        "GET /internal/v1/funnel",
        "GET /internal/v1/ddas",
    }, tried
    for operation, statuses in seen.items():
        assert {200, 401, 422} <= statuses, (operation, statuses)
    for operation in ("GET /internal/v1/funnel", "GET /internal/v1/ddas"):
        assert 400 in seen[operation], (operation, seen[operation])
    for operation, count in sorted(tried.items()):
        request.node.user_properties.append(
            ("openapi_examples", (f"matching internal API: {operation}", count))
        )
