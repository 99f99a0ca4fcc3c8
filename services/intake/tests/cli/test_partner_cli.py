"""`eropaf partner ...` against the real broker and PostgreSQL (no intake service needed).

`main()` runs `asyncio.run`, so it is called in a worker thread: the test's own event loop
keeps running and stays untouched.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from eropaf_contracts.cloudevents import SIGNAL_RESOLVED_TYPE, SIGNAL_SUBMITTED_TYPE, decode_headers
from eropaf_contracts.topics import feedback_topic, signals_topic
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.tables import partner, partner_key
from eropaf_intake.http_api import token_hash
from eropaf_platform.db import make_engine

pytestmark = pytest.mark.integration


class Cli:
    """Runs `eropaf ...` in-process with the test's database and broker."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], database_url: str, bootstrap: str
    ) -> None:
        self.capsys = capsys
        self.database_url = database_url
        self.bootstrap = bootstrap

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        from eropaf_cli.main import main

        self.capsys.readouterr()  # drop anything printed before
        code = await asyncio.to_thread(main, list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    async def admin(self, *argv: str, broker: bool = False) -> tuple[int, str, str]:
        extra = ["--database-url", self.database_url]
        if broker:
            extra += ["--bootstrap-servers", self.bootstrap]
        if "--" in argv:  # options go before it: after it, everything is positional
            at = argv.index("--")
            return await self(*argv[:at], *extra, *argv[at:])
        return await self(*argv, *extra)


def lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


async def rows(database_url: str, query: Any) -> list[Any]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def read_back(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expect and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    fresh_database_url: Callable[[], str],
    kafka_bootstrap_servers: str,
) -> Cli:
    return Cli(capsys, fresh_database_url(), kafka_bootstrap_servers)


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def new_code() -> str:
    return f"corp-{uuid.uuid4().hex[:8]}"


async def test_onboard_creates_partner_topics_token_and_private_key(
    cli: Cli, tmp_path: Path
) -> None:
    code = new_code()
    key_file = tmp_path / "partner.pem"
    rc, out, err = await cli.admin(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur,Overige",
        "--generate-key", str(key_file), broker=True,
    )  # fmt: skip
    assert rc == 0, err
    printed = lines(out)
    token, kid = printed["token"], printed["kid"]
    assert out.count(token) == 1  # shown exactly once

    [row] = await rows(cli.database_url, sa.select(partner).where(partner.c.code == code))
    assert (row.name, list(row.types), row.disabled) == ("Corp", ["Huur", "Overige"], False)
    assert row.token_hash == token_hash(token) and token not in row.token_hash

    assert mode_of(key_file) == 0o600
    private = jws.private_key_from_pem(key_file.read_bytes())
    assert jws.jwk_thumbprint(private.public_key()) == kid
    [key_row] = await rows(cli.database_url, sa.select(partner_key))
    assert (key_row.kid, key_row.partner_code) == (kid, code)

    assert {signals_topic(code), feedback_topic(code)} <= await topics(cli.bootstrap)

    rc, out, err = await cli.admin(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(tmp_path / "again.pem"), broker=True,
    )  # fmt: skip
    assert rc == 2
    assert "already registered" in err
    assert not (tmp_path / "again.pem").exists()  # nothing half done


async def test_onboard_with_supplied_key_json_and_from_region(cli: Cli, tmp_path: Path) -> None:
    _, public = jws.generate_key_pair()
    pub_file = tmp_path / "mitros.pub.pem"
    pub_file.write_bytes(jws.public_key_to_pem(public))
    rc, out, err = await cli.admin(
        "partner", "onboard", "mitros", "--from-region", "--public-key", str(pub_file), "--json",
        broker=True,
    )  # fmt: skip
    assert rc == 0, err
    result = json.loads(out)
    assert result["kid"] == jws.jwk_thumbprint(public)
    assert (result["name"], result["types"]) == ("Mitros", ["Huur"])
    assert result["private_key_file"] is None and result["token"]


async def test_bad_requests_exit_2_with_a_message(cli: Cli, tmp_path: Path) -> None:
    rc, _, err = await cli.admin(
        "partner", "onboard", "Bad Code", "--name", "x", "--types", "Huur",
        "--generate-key", str(tmp_path / "k.pem"), broker=True,
    )  # fmt: skip
    assert rc == 2 and "invalid partner code" in err
    rc, _, err = await cli.admin(
        "partner", "onboard", "corp-x", "--name", "x", "--types", "Huurr",
        "--generate-key", str(tmp_path / "k.pem"), broker=True,
    )  # fmt: skip
    assert rc == 2 and "unknown partner types" in err
    rc, _, err = await cli.admin("partner", "new-token", "nobody")
    assert rc == 2 and "not registered" in err
    rc, _, err = await cli("partner", "list", "--data-dir", str(tmp_path))
    assert rc == 2 and "stack.json" in err


async def test_add_key_revoke_key_disable_new_token_and_list(cli: Cli, tmp_path: Path) -> None:
    code = new_code()
    rc, out, err = await cli.admin(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(tmp_path / "old.pem"), broker=True,
    )  # fmt: skip
    assert rc == 0, err
    old_kid, old_token = lines(out)["kid"], lines(out)["token"]

    rc, out, err = await cli.admin(
        "partner", "add-key", code, "--generate-key", str(tmp_path / "new.pem")
    )
    assert rc == 0, err
    new_kid = lines(out)["kid"]
    assert mode_of(tmp_path / "new.pem") == 0o600

    # "--": a thumbprint may start with "-" (one in 64 keys); as the help says.
    rc, out, err = await cli.admin("partner", "revoke-key", code, "--", old_kid)
    assert rc == 0, err
    rc, _, err = await cli.admin("partner", "revoke-key", code, "--", old_kid)
    assert rc == 2 and "no active key" in err

    rc, _, err = await cli.admin("partner", "disable", code)
    assert rc == 0, err
    rc, out, err = await cli.admin("partner", "new-token", code)
    assert rc == 0, err
    new_token = lines(out)["token"]
    assert new_token != old_token
    [row] = await rows(cli.database_url, sa.select(partner.c.token_hash))
    assert row.token_hash == token_hash(new_token)

    rc, out, err = await cli.admin("partner", "list", "--json")
    assert rc == 0, err
    [listed] = json.loads(out)
    assert listed["code"] == code and listed["disabled"] is True
    assert listed["active_keys"] == [new_kid] and listed["revoked_keys"] == [old_kid]

    rc, _, _ = await cli.admin("partner", "enable", code)
    assert rc == 0
    rc, out, _ = await cli.admin("partner", "list")
    assert rc == 0
    assert code in out and "enabled" in out and new_kid in out


async def test_onboard_region_onboards_the_rest_once(cli: Cli, tmp_path: Path) -> None:
    pub = tmp_path / "wil.pub"
    pub.write_bytes(jws.public_key_to_pem(jws.generate_key_pair()[1]))
    rc, _, err = await cli.admin(
        "partner", "onboard", "wil", "--from-region", "--public-key", str(pub), broker=True
    )
    assert rc == 0, err
    keys_dir = tmp_path / "keys"
    rc, out, err = await cli.admin(
        "partner", "onboard-region", "--keys-dir", str(keys_dir), "--json", broker=True
    )
    assert rc == 0, err
    result = json.loads(out)
    assert result["skipped"] == ["wil"]
    onboarded = {o["code"] for o in result["onboarded"]}
    assert "mitros" in onboarded and "wil" not in onboarded
    for o in result["onboarded"]:
        assert mode_of(o["private_key_file"]) == 0o600
    rc, out, err = await cli.admin(
        "partner", "onboard-region", "--keys-dir", str(keys_dir), "--json", broker=True
    )
    assert rc == 0, err
    assert json.loads(out)["onboarded"] == []


async def test_data_dir_reads_stack_json(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {
                "bootstrap_servers": cli.bootstrap,
                "database_urls": {"intake": cli.database_url},
                "intake_url": "http://127.0.0.1:1",
                "mail_dir": str(tmp_path / "mail"),
            }
        )
    )
    code = new_code()
    rc, out, err = await cli(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(tmp_path / "k.pem"), "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert rc == 0, err
    rc, out, err = await cli("partner", "list", "--data-dir", str(tmp_path))
    assert rc == 0 and code in out


async def test_publish_signs_with_the_registered_key(cli: Cli, tmp_path: Path) -> None:
    code = new_code()
    key_file = tmp_path / "p.pem"
    rc, out, err = await cli.admin(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(key_file), broker=True,
    )  # fmt: skip
    assert rc == 0, err
    kid = lines(out)["kid"]
    [key_row] = await rows(cli.database_url, sa.select(partner_key))
    registered = jws.public_key_from_pem(key_row.public_key_pem.encode())

    signals = [
        {"ID": "S-1", "bedrag": 450, "signaalpartner": {"type": "Huur"},
         "client": {"Achternaam": "Dijk", "Postcode": "3431 AB"}},
        {"ID": "S-2", "bedrag": 12, "signaalpartner": {"type": "Huur"},
         "client": {"Achternaam": "Één", "Postcode": "3432 CD"}},
    ]  # fmt: skip
    json_file = tmp_path / "signals.json"
    json_file.write_text(json.dumps(signals, indent=2), encoding="utf-8")
    csv_file = tmp_path / "signals.csv"
    csv_file.write_text(
        "ID;bedrag;signaalpartner.type;Achternaam;Postcode\n"
        "S-1;450;Huur;Dijk;3431 AB\nS-2;12;Huur;Één;3432 CD\n",
        encoding="utf-8",
    )
    resolved_file = tmp_path / "resolved.jsonl"
    resolved_file.write_text('{"ID": "S-1", "datumOpgelost": "2026-11-20"}\n')

    publish = ("partner", "publish", code)
    broker = ("--bootstrap-servers", cli.bootstrap)
    rc, out, err = await cli(*publish, str(json_file), "--key", str(key_file), *broker, "--json")
    assert rc == 0, err
    json_ce_ids = [item["ce_id"] for item in json.loads(out)]
    rc, out, err = await cli(*publish, str(csv_file), "--key", str(key_file), *broker)
    assert rc == 0, err
    assert "published 2 signal(s)" in out
    rc, out, err = await cli(
        *publish, str(resolved_file), "--key", str(key_file), *broker, "--resolved"
    )
    assert rc == 0, err

    records = await read_back(cli.bootstrap, signals_topic(code), expect=5)
    assert len(records) == 5
    values_by_type: dict[str, list[Any]] = {SIGNAL_SUBMITTED_TYPE: [], SIGNAL_RESOLVED_TYPE: []}
    for record in records:
        headers = decode_headers(record.headers)
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_source"] == code
        assert headers["content-type"] == "application/json"
        assert headers["ce_time"].endswith("Z")
        uuid.UUID(headers["ce_id"])
        value = json.loads(record.value.decode("utf-8"))
        assert record.key == value["ID"].encode()
        assert jws.parse_detached(headers["ce_signature"]).kid == kid
        assert jws.verify_detached(headers["ce_signature"], record.value, registered)
        values_by_type[headers["ce_type"]].append((headers["ce_id"], value))
    submitted = values_by_type[SIGNAL_SUBMITTED_TYPE]
    from_json = [v for ce_id, v in submitted if ce_id in json_ce_ids]
    from_csv = [v for ce_id, v in submitted if ce_id not in json_ce_ids]
    by_id = sorted  # partitions may interleave; compare per signal ID
    assert by_id(from_json, key=lambda v: v["ID"]) == signals
    assert by_id(from_csv, key=lambda v: v["ID"]) == signals  # CSV = its JSON equivalent
    assert [v for _, v in values_by_type[SIGNAL_RESOLVED_TYPE]] == [
        {"ID": "S-1", "datumOpgelost": "2026-11-20"}
    ]


async def test_publish_wait_feedback_times_out_without_intake(cli: Cli, tmp_path: Path) -> None:
    code = new_code()
    key_file = tmp_path / "p.pem"
    rc, _, err = await cli.admin(
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--generate-key", str(key_file), broker=True,
    )  # fmt: skip
    assert rc == 0, err
    signals_file = tmp_path / "s.json"
    signals_file.write_text('[{"ID": "S-1"}]')
    rc, out, err = await cli(
        "partner", "publish", code, str(signals_file), "--key", str(key_file),
        "--bootstrap-servers", cli.bootstrap, "--wait-feedback", "--timeout", "1",
    )  # fmt: skip
    assert rc == 3, err
    assert "S-1" in out and "no feedback within 1s" in out

    rc, _, err = await cli(
        "partner", "publish", code, str(tmp_path / "missing.json"), "--key", str(key_file),
        "--bootstrap-servers", cli.bootstrap,
    )  # fmt: skip
    assert rc == 2 and "missing.json" in err
