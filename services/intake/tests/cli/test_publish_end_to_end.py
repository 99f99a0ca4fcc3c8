"""The reference client against a running intake, and the personal-data commands after it."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from asyncio.subprocess import PIPE
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_intake.adapters.tables import household_key, personal_record, signal
from eropaf_intake.app import IntakeSettings, build
from eropaf_platform.db import make_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def intake_settings(bootstrap: str, database_url: str) -> IntakeSettings:
    return IntakeSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        pseudonym_key="cli-test-pseudonym-key-" + "x" * 32,
        master_keys="t1:" + base64.b64encode(b"k" * 32).decode(),
        internal_api_token="cli-test-internal-token",
        # New partner topics are found by pattern subscription at a metadata refresh.
        kafka_metadata_max_age_ms=1000,
        kafka_topic_partitions=2,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
    )


def a_signal(signal_id: str, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "ID": signal_id,
        "crisissignaal": False,
        "warmeOverdracht": False,
        "bedrag": 450,
        "ontstaansdatum": "2026-08-01",
        "signaaldatum": date.today().isoformat(),
        "signaalpartner": {"type": "Huur"},
        "client": {
            "Burgerservicenummer": "111222333",
            "Voorletters": "J.",
            "Achternaam": "Dijk",
            "Geboortedatum": "1980-04-01",
            "Straatnaam": "Dorpsstraat",
            "Postcode": "3431 AB",
            "Huisnummer": "12",
            "Plaatsnaam": "Nieuwegein",
        },
    }
    value.update(overrides)
    return value


async def eropaf(*argv: str) -> tuple[int, str, str]:
    # A separate process: the in-process intake service logs to this process's stdout.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eropaf_cli", *argv, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def scalar(database_url: str, query: Any) -> Any:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(query)
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def test_publish_wait_feedback_then_purge_and_shred(
    kafka_bootstrap_servers: str,
    fresh_database_url: Callable[[], str],
    tmp_path: Path,
) -> None:
    database_url = fresh_database_url()
    settings = intake_settings(kafka_bootstrap_servers, database_url)
    code = f"corp-{uuid.uuid4().hex[:8]}"
    key_file = tmp_path / f"{code}.pem"
    admin = ("--database-url", database_url, "--bootstrap-servers", kafka_bootstrap_servers)
    rc, _, err = await eropaf(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(key_file), *admin,
    )  # fmt: skip
    assert rc == 0, err

    good, neighbour, outside = (f"S-{uuid.uuid4().hex[:8]}" for _ in range(3))
    other_address = {**a_signal(neighbour)["client"], "Huisnummer": "14"}  # another household
    signals_file = tmp_path / "signals.json"
    signals_file.write_text(json.dumps([a_signal(good), a_signal(neighbour, client=other_address)]))
    mixed_file = tmp_path / "mixed.json"
    mixed_file.write_text(
        json.dumps(
            [
                a_signal(good),  # same content again: duplicate
                a_signal(outside, client={**a_signal(outside)["client"], "Postcode": "9999 ZZ"}),
            ]
        )
    )
    publish = ("partner", "publish", code)
    options = ("--key", str(key_file), "--bootstrap-servers", kafka_bootstrap_servers)

    service, _app = build(settings)
    await service.start()
    try:
        rc, out, err = await eropaf(
            *publish, str(signals_file), *options, "--wait-feedback", "--timeout", "60"
        )
        assert rc == 0, (out, err)
        assert sorted(out.splitlines()) == sorted([f"{good}\taccepted", f"{neighbour}\taccepted"])

        rc, out, err = await eropaf(
            *publish, str(mixed_file), *options, "--wait-feedback", "--json"
        )
        assert rc == 1, (out, err)
        results = {r["ID"]: r for r in json.loads(out)}
        assert results[good]["status"] == "duplicate"
        assert results[outside]["status"] == "rejected"
        assert results[outside]["reasons"][0]["code"] == "out_of_region"
    finally:
        await service.stop()

    db = ("--database-url", database_url)
    records = sa.select(sa.func.count()).select_from(personal_record)
    assert await scalar(database_url, records) == 2

    # Nothing closed yet: purge keeps everything. `good`'s case closed a year and a day ago.
    rc, out, err = await eropaf("intake", "purge", *db, "--retention-days", "0")
    assert rc == 0 and "of 0 signal(s)" in out, err
    closed = datetime.now(UTC) - timedelta(days=366)
    await scalar(
        database_url,
        sa.update(signal).where(signal.c.signal_id == good).values(case_closed_at=closed),
    )
    rc, out, err = await eropaf("intake", "purge", *db)
    assert rc == 0 and "of 1 signal(s)" in out, err
    assert await scalar(database_url, records) == 1
    assert await scalar(database_url, sa.select(sa.func.count()).select_from(household_key)) == 1

    ref = await scalar(
        database_url, sa.select(signal.c.signal_ref).where(signal.c.signal_id == neighbour)
    )
    rc, out, err = await eropaf("intake", "shred", *db, "--signal-ref", ref)
    assert rc == 2 and "--yes" in err and "1 record(s)" in err
    assert await scalar(database_url, records) == 1
    rc, out, err = await eropaf("intake", "shred", *db, "--signal-ref", ref, "--yes")
    assert rc == 0 and "1 personal record(s)" in out, err
    assert await scalar(database_url, records) == 0
    assert await scalar(database_url, sa.select(sa.func.count()).select_from(household_key)) == 0
    rc, _, err = await eropaf("intake", "shred", *db, "--signal-ref", "nope", "--yes")
    assert rc == 2 and "no signal" in err
