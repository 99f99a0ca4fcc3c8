"""The HTTP channel (CONTRACT §3) and the audited personal-data API, against the FastAPI app
from `build()` on a started service (real PostgreSQL and broker)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from eropaf_intake.adapters.tables import personal_data_access
from eropaf_intake.app import IntakeSettings, build

from .support import (
    INTERNAL_TOKEN,
    Observer,
    Partner,
    admin_session,
    intake_settings,
    onboard,
    reasons_of,
    ref_of,
    signal,
    unique_code,
)

pytestmark = pytest.mark.integration

MAX_BODY = 100_000
COLUMNS = [
    "ID",
    "crisissignaal",
    "warmeOverdracht",
    "bedrag",
    "ontstaansdatum",
    "signaaldatum",
    "signaalpartner.type",
    "Burgerservicenummer",
    "Voorletters",
    "Voorvoegsel",
    "Achternaam",
    "Geboortedatum",
    "Straatnaam",
    "Postcode",
    "Huisnummer",
    "Huisnummertoevoeging",
    "Plaatsnaam",
    "telefoonnummer",
    "email",
]


@dataclass
class HttpEnv:
    settings: IntakeSettings
    client: httpx.AsyncClient
    partner: Partner
    other: Partner
    observer: Observer

    def auth(self, partner: Partner | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(partner or self.partner).token}"}

    async def post(
        self, body: bytes, content_type: str, partner: Partner | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/partners/{self.partner.code}/signals",
            content=body,
            headers={**self.auth(partner), "Content-Type": content_type},
        )


@pytest.fixture(scope="module")
async def env(kafka_bootstrap_servers: str, module_database_url: str) -> AsyncIterator[HttpEnv]:
    settings = intake_settings(
        kafka_bootstrap_servers, module_database_url, max_http_body_bytes=MAX_BODY
    )
    partner = await onboard(settings, unique_code("http"))
    other = await onboard(settings, unique_code("other"))
    service, app = build(settings)
    await service.start()
    observer = Observer(kafka_bootstrap_servers)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield HttpEnv(settings, client, partner, other, observer)
    finally:
        await observer.close()
        await service.stop()


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 202, response.text
    body: list[dict[str, Any]] = response.json()["results"]
    return body


def csv_row(s: dict[str, Any]) -> list[str]:
    flat = {**s, **s["client"], **s.get("contactgegevens", {})}
    flat["signaalpartner.type"] = s["signaalpartner"]["type"]

    def cell(value: Any) -> str:
        if value is None:
            return ""
        return str(value).lower() if isinstance(value, bool) else str(value)

    return [cell(flat.get(c)) for c in COLUMNS]


def csv_body(rows: Sequence[dict[str, Any]], delimiter: str, newline: str, bom: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(COLUMNS)
    for s in rows:
        writer.writerow(csv_row(s))
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


# -- authentication and body errors ----------------------------------------------------


async def test_missing_or_unknown_token_is_401_and_another_partners_is_403(env: HttpEnv) -> None:
    url = f"/v1/partners/{env.partner.code}/signals"
    body = json.dumps(signal()).encode()
    json_type = {"Content-Type": "application/json"}
    assert (await env.client.post(url, content=body, headers=json_type)).status_code == 401
    wrong = {**json_type, "Authorization": "Bearer not-a-token"}
    assert (await env.client.post(url, content=body, headers=wrong)).status_code == 401
    basic = {**json_type, "Authorization": "Basic dXNlcjpwYXNz"}
    assert (await env.client.post(url, content=body, headers=basic)).status_code == 401
    foreign = await env.post(body, "application/json", partner=env.other)
    assert foreign.status_code == 403


async def test_body_over_the_limit_is_413_declared_or_streamed(env: HttpEnv) -> None:
    big = json.dumps([signal() for _ in range(400)]).encode()
    assert len(big) > MAX_BODY
    assert (await env.post(big, "application/json")).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await env.client.post(
        f"/v1/partners/{env.partner.code}/signals",
        content=chunks(),
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"ID": ', "application/json", 400, "JSON"),
        (b"[]", "application/json", 400, "no signals"),
        (b"\xff\xfeID;bedrag\n", "text/csv", 400, "UTF-8"),
        (b"ID,bedrag\n", "text/csv", 400, "no rows"),
        (b"<xml/>", "application/xml", 415, "csv"),
    ],
)
async def test_unusable_body_is_answered_with_a_clear_message(
    env: HttpEnv, body: bytes, content_type: str, status: int, says: str
) -> None:
    response = await env.post(body, content_type)
    assert response.status_code == status, response.text
    assert says.lower() in response.json()["detail"].lower()


# -- per-row results -----------------------------------------------------------------------


async def test_json_array_results_in_input_order(env: HttpEnv) -> None:
    first = signal()
    batch = [
        first,
        signal(client={"Postcode": "1011 AB"}),
        signal(bedrag="veel"),
        {**first},  # the same content again
        {**first, "bedrag": 1},  # same ID, other content, same signaaldatum
        "not an object",
    ]
    got = results(await env.post(json.dumps(batch).encode(), "application/json"))
    assert [r["status"] for r in got] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert [r["ID"] for r in got[:5]] == [b["ID"] for b in batch[:5]]  # type: ignore[index]
    assert [reasons_of(r) for r in got[1:]] == [
        {"out_of_region"},
        {"invalid_schema"},
        set(),
        {"conflict"},
        {"invalid_json"},
    ]
    assert all(r["ce_id"] is None for r in got)

    ref = ref_of(env.partner.code, first["ID"])
    events = await env.observer.events(lambda e: e.data.get("signal_ref") == ref, expect=1)
    assert [e.type for e in events] == ["eropaf.intake.signal.accepted"]


async def test_single_json_object(env: HttpEnv) -> None:
    one = signal()
    [result] = results(await env.post(json.dumps(one).encode(), "application/json; charset=utf-8"))
    assert (result["ID"], result["status"]) == (one["ID"], "accepted")


DIALECTS = {
    "comma": (",", "\n", False),
    "semicolon": (";", "\n", False),
    "bom-semicolon-crlf": (";", "\r\n", True),
    "comma-crlf": (",", "\r\n", False),
}


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, bool]]:
    yield DIALECTS[request.param]


async def test_csv_dialects(env: HttpEnv, dialect: tuple[str, str, bool]) -> None:
    delimiter, newline, bom = dialect
    tricky = signal(
        client={"Straatnaam": 'Laan van "Oud", Nieuw; Zuid', "Achternaam": "Jansen"},
        contactgegevens={"telefoonnummer": "06-12345678", "email": "j@example.org"},
    )
    broken_line = signal(client={"Straatnaam": "Dorps\nstraat"})  # a newline in a quoted cell
    plain = signal(crisissignaal=True)
    body = csv_body([tricky, broken_line, plain], delimiter, newline, bom)
    got = results(await env.post(body, "text/csv"))
    assert [r["ID"] for r in got] == [tricky["ID"], broken_line["ID"], plain["ID"]]
    assert [r["status"] for r in got] == ["accepted", "rejected", "accepted"]
    assert {(x["code"], x["field"]) for x in got[1]["reasons"]} == {
        ("invalid_schema", "client.Straatnaam")
    }

    ref = ref_of(env.partner.code, tricky["ID"])
    read = await env.client.get(
        "/internal/v1/personal-data",
        params={"signal_ref": ref, "purpose": "test csv round trip"},
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}", "X-Accessor": "test"},
    )
    assert read.status_code == 200, read.text
    record = read.json()["records"][ref]
    assert record["client"]["Straatnaam"] == 'Laan van "Oud", Nieuw; Zuid'
    assert record["contactgegevens"] == {"telefoonnummer": "06-12345678", "email": "j@example.org"}


# -- the internal personal-data API ----------------------------------------------------


async def test_personal_data_read_needs_the_token_and_is_audited(env: HttpEnv) -> None:
    sent = signal(client={"Achternaam": "Zwanenburg", "Postcode": "3995 XY"})
    [result] = results(await env.post(json.dumps(sent).encode(), "application/json"))
    assert result["status"] == "accepted"
    ref = ref_of(env.partner.code, sent["ID"])
    params = {"signal_ref": ref, "purpose": "outreach planning"}

    assert (await env.client.get("/internal/v1/personal-data", params=params)).status_code == 401
    wrong = {"Authorization": "Bearer nope", "X-Accessor": "matching"}
    response = await env.client.get("/internal/v1/personal-data", params=params, headers=wrong)
    assert response.status_code == 401
    good = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    response = await env.client.get("/internal/v1/personal-data", params=params, headers=good)
    assert response.status_code == 400  # who reads must be named

    async with admin_session(env.settings) as session:
        before = await session.scalar(
            sa.select(sa.func.count())
            .select_from(personal_data_access)
            .where(personal_data_access.c.signal_ref == ref)
        )
    response = await env.client.get(
        "/internal/v1/personal-data", params=params, headers={**good, "X-Accessor": "matching"}
    )
    assert response.status_code == 200, response.text
    record = response.json()["records"][ref]
    assert record["ID"] == sent["ID"]
    client = record["client"]
    assert (client["Achternaam"], client["Postcode"], client["Burgerservicenummer"]) == (
        "Zwanenburg",
        "3995XY",
        "111222333",
    )
    assert client["Geboortedatum"] == "1980-04-01"

    async with admin_session(env.settings) as session:
        audit = (
            (
                await session.execute(
                    sa.select(personal_data_access).where(personal_data_access.c.signal_ref == ref)
                )
            )
            .mappings()
            .all()
        )
    assert before == 0
    assert [(a["accessor"], a["purpose"]) for a in audit] == [("matching", "outreach planning")]
