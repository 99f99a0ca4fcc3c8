"""Matching end to end on the real broker and PostgreSQL: intake's events in, scheduling's
reports in, and the DDAS delivery of what was processed validates with the official schema."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from eropaf_contracts.ddas import (
    Contactsoort,
    Dagdeel,
    Eindresultaat,
    Signaalpartner,
    validate_uitwisselmodel,
)
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.topics import VISITS_TOPIC
from eropaf_matching import cli
from eropaf_matching.adapters.intake_client import IntakeClient
from eropaf_matching.domain.cases import CaseState
from eropaf_matching.scheduling_events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
)
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import Household, case_of, closure_told, publish

pytestmark = pytest.mark.integration

D = date(2026, 10, 5)


async def report(bootstrap: str, household_ref: str, *payloads: BaseModel) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for payload in payloads:
            e = Envelope.wrap(payload, key=household_ref)
            await producer.send_and_wait(
                VISITS_TOPIC, e.to_bytes(), key=e.key.encode(), headers=e.headers()
            )
    finally:
        await producer.stop()


async def test_visit_reports_close_the_case_and_the_ddas_export_validates(
    matching: Service,
    kafka_bootstrap_servers: str,
    household: Household,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = household
    await publish(
        kafka_bootstrap_servers,
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
    )
    await publish(kafka_bootstrap_servers, h.resolved("paid", D + timedelta(days=3)))

    async def settled() -> bool:
        main = await case_of(matching, h.ref("huur"))
        paid = await case_of(matching, h.ref("paid"))
        return bool(main and len(main.signals) == 2 and paid and not paid.is_open)

    await wait_until_async(settled, timeout=30, interval=0.1)
    case = await case_of(matching, h.ref("huur"))
    assert case is not None and case.opgepakt_on is not None

    # Scheduling reports: planned, a missed visit, a visit that reached them, the outcome.
    await report(
        kafka_bootstrap_servers,
        case.household_id,
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
    )

    async def closed() -> bool:
        c = await case_of(matching, h.ref("huur"))
        return c is not None and c.state is CaseState.CLOSED

    await wait_until_async(closed, timeout=30, interval=0.1)
    case = await case_of(matching, h.ref("huur"))
    assert case is not None
    assert case.resultaat is Eindresultaat.BUDGETADVIES_OF_QUICK_FIX
    assert [a.bereikt for a in case.contactpogingen] == [False, True]
    told = await closure_told(matching, case.case_id)  # downstream and intake
    assert told.resultaat is Eindresultaat.BUDGETADVIES_OF_QUICK_FIX

    # The export without personal data: no call to intake at all.
    def no_intake(_: cli.Connection) -> IntakeClient:
        raise AssertionError("--no-personal-data must not call intake")

    monkeypatch.setattr(cli, "make_intake_client", no_intake)
    out = tmp_path / "ddas.json"
    code = await asyncio.to_thread(
        cli.ddas_export,
        export_args(matching, out, no_personal_data=True, start=D, end=D + timedelta(days=30)),
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert validate_uitwisselmodel(document) == []
    levering = document["leveringen"][0]
    ours = {h.ref(n) for n in ("huur", "zorg", "letter-only", "paid")}
    exported = {s["ID"]: s for s in levering["vroegsignalen"] if s["ID"] in ours}
    assert set(exported) == ours
    assert all(s["client"] == {} for s in exported.values())
    zaken = [
        z for z in levering["vroegsignaalzaken"] if {v["ID"] for v in z["vroegsignalen"]} & ours
    ]
    results = sorted(z.get("resultaat", "") for z in zaken)
    assert Eindresultaat.BUDGETADVIES_OF_QUICK_FIX.value in results
    assert Eindresultaat.ZELF_BETAALD_OF_REGELING.value in results
    main = next(z for z in zaken if z.get("resultaat") == Eindresultaat.BUDGETADVIES_OF_QUICK_FIX)
    assert [p["bereikt"] for p in main["contactpogingen"]] == [False, True]

    # With personal data: asked from (mocked) intake per exported signal, IDs mapped.
    asked: list[str] = []

    def intake(request: httpx.Request) -> httpx.Response:
        refs = request.url.params.get_list("signal_ref")
        asked.extend(refs)
        known = {
            h.ref("huur"): {
                "ID": "MITROS-1",
                "client": {"Achternaam": "Dijk", "Postcode": "3431AB"},
            }
        }
        return httpx.Response(200, json={"records": {r: known[r] for r in refs if r in known}})

    def mocked(_: cli.Connection) -> IntakeClient:
        return IntakeClient(
            "http://intake.test", "t", accessor="test", transport=httpx.MockTransport(intake)
        )

    monkeypatch.setattr(cli, "make_intake_client", mocked)
    out2 = tmp_path / "ddas-personal.json"
    code = await asyncio.to_thread(
        cli.ddas_export,
        export_args(matching, out2, no_personal_data=False, start=D, end=D + timedelta(days=30)),
    )
    assert code == 0
    document = json.loads(out2.read_text())
    assert validate_uitwisselmodel(document) == []
    signals = {s["ID"]: s for s in document["leveringen"][0]["vroegsignalen"]}
    assert signals["MITROS-1"]["client"] == {"Achternaam": "Dijk", "Postcode": "3431AB"}
    # Only the signals in the delivery are asked for (every read is audited at intake).
    first_delivery = json.loads(out.read_text())["leveringen"][0]["vroegsignalen"]
    assert set(asked) == {item["ID"] for item in first_delivery}

    # Monitoring over the same data prints and writes CSV.
    csv_file = tmp_path / "monitoring.csv"
    args = argparse.Namespace(
        gemeente="0356",
        start=D,
        end=D,
        csv=str(csv_file),
        data_dir=None,
        database_url=matching.settings.database_url,
        region_file=None,
    )
    assert await asyncio.to_thread(cli.monitoring, args) == 0
    assert csv_file.read_text().startswith("gemeentecode,maand,metric")
    assert ",zaken_geopend," in csv_file.read_text()


def export_args(
    service: Service, out: Path, *, no_personal_data: bool, start: date, end: date
) -> argparse.Namespace:
    return argparse.Namespace(
        gemeente="0356",
        start=start,
        end=end,
        output=str(out),
        no_personal_data=no_personal_data,
        intake_url=None,
        organisatie=None,
        leverancier="eropaf-test",
        data_dir=None,
        database_url=service.settings.database_url,
        region_file=None,
    )


def test_data_dir_gives_database_intake_and_token(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {
                "database_urls": {"matching": "postgresql://x/matching"},
                "intake_url": "http://127.0.0.1:8001",
            }
        )
    )
    (tmp_path / "secrets.json").write_text(json.dumps({"internal_api_token": "tok"}))
    args = argparse.Namespace(data_dir=str(tmp_path), database_url=None, intake_url=None)
    assert cli.resolve_connection(args) == cli.Connection(
        "postgresql://x/matching", "http://127.0.0.1:8001", "tok"
    )
