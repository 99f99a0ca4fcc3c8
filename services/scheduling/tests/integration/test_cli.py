"""``eropaf staff import`` and ``eropaf staff absent`` on PostgreSQL."""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_cli.main import main
from eropaf_platform.db import make_engine

pytestmark = pytest.mark.integration


async def scalar(url: str, sql: str) -> Any:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(sql))).scalar_one()
    finally:
        await engine.dispose()


def test_import_is_idempotent_and_absence_is_recorded(
    _database_registry: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _database_registry.create("eropaf_scheduling_cli")
    roster = files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_text("utf-8")
    path = tmp_path / "roster.csv"
    path.write_text(roster, encoding="utf-8")
    assert main(["staff", "import", str(path), "--database-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    staff_rows = len(roster.strip().splitlines()) - 1
    assert len(lines) == staff_rows and all(line.startswith("token ") for line in lines)
    assert main(["staff", "import", str(path), "--database-url", url]) == 0
    assert capsys.readouterr().out == ""  # the same file again changes nothing
    outbox = asyncio.run(scalar(url, "SELECT count(*) FROM outbox_message"))
    assert outbox == staff_rows  # one StaffChanged each
    assert (
        main(
            [
                "staff",
                "absent",
                "wil-pieter",
                "--from",
                "2026-06-01",
                "--to",
                "2026-06-05",
                "--database-url",
                url,
            ]
        )
        == 0
    )
    assert asyncio.run(scalar(url, "SELECT count(*) FROM sched_absence")) == 1
    assert (
        main(
            [
                "staff",
                "absent",
                "nobody",
                "--from",
                "2026-06-01",
                "--to",
                "2026-06-05",
                "--database-url",
                url,
            ]
        )
        == 2
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(roster.replace("medewerker", "baas", 1), encoding="utf-8")
    assert main(["staff", "import", str(bad), "--database-url", url]) == 2
    assert "column rol" in capsys.readouterr().err
