"""The demo's month at a small size against the real stack, checked against the generator's
ground truth: every message answered as expected, every household one case, every home-visit
case a visit or a backlog reason (once scheduling plans), schema-valid DDAS exports, staff mail
without personal data, and the report folder complete."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from eropaf_demo.runner import DemoOptions, _Display, run_month
from eropaf_demo.stack import Stack
from eropaf_platform.db import libpq_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_small_month_matches_the_ground_truth(tmp_path: Path, postgres_server_url: str) -> None:
    options = DemoOptions(
        seed=4,
        signals=100,
        replay_seconds=0,
        quiet=True,
        data_dir=tmp_path / "data",
        report_dir=tmp_path / "report",
        settle_timeout=60,
        up_args=("--database-url", postgres_server_url),
    )
    assert options.data_dir is not None
    stack = Stack(options.data_dir, tmp_path / "up.log", up_args=options.up_args)
    stack.start()
    try:
        summary = run_month(options, stack, _Display(quiet=True))
        assert stack.stop() == 0, stack.tail()
    finally:
        stack.stop()
        urls = (stack.info or {}).get("database_urls", {})
        with psycopg.connect(libpq_url(postgres_server_url), autocommit=True) as conn:
            for url in urls.values():
                name = make_url(url).database
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    failed = [f"{c.name}: {c.detail}" for c in summary.checks if not c.ok]
    assert not failed, failed
    names = {c.name for c in summary.checks}
    assert {
        "every message answered as expected",
        "every household one case",
        "DDAS export per municipality valid",
        "staff mail without personal data",
    } <= names
    assert sum(p["sent"] for p in summary.partners) == len(summary.month.messages)
    assert sum(g["cases"] for g in summary.municipalities) == summary.month.expected_cases
    report = tmp_path / "report"
    for name in ("index.html", "summary.json", "charts/funnel.png",
                 "charts/signals-per-week.png", "charts/visits-per-week.png"):  # fmt: skip
        assert (report / name).is_file(), name
    assert len(list((report / "ddas").glob("*.json"))) == 5
    assert "data:image/png;base64," in (report / "index.html").read_text()
