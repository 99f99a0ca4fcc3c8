"""The shared pytest fixtures and helpers from eropaf_platform.testing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from eropaf_platform.db import libpq_url
from eropaf_platform.local.broker import create_topics, probe_metadata
from eropaf_platform.testing import WaitTimeout, wait_until, wait_until_async
from eropaf_platform.testing.fixtures import (
    docker_engine_answers,
    to_sqlalchemy_url,
    unavailable,
    with_database,
)


@pytest.mark.unit
def test_wait_until_returns_first_truthy_value() -> None:
    calls = iter([0, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == "ready"


@pytest.mark.unit
def test_wait_until_times_out() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="never"):
        wait_until(lambda: False, timeout=0.1, interval=0.01, message="never")
    assert time.monotonic() - started < 2


@pytest.mark.unit
async def test_wait_until_async_accepts_async_and_sync_predicates() -> None:
    state = {"n": 0}

    async def bump() -> bool:
        state["n"] += 1
        return state["n"] >= 3

    assert await wait_until_async(bump, timeout=5, interval=0.001) is True
    assert await wait_until_async(lambda: 7, timeout=1) == 7
    with pytest.raises(WaitTimeout):
        await wait_until_async(lambda: asyncio.sleep(0, result=False), timeout=0.05)


@pytest.mark.unit
def test_missing_infrastructure_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        unavailable("Kafka broker", "nothing answers")


@pytest.mark.unit
def test_missing_infrastructure_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nothing answers"):
        unavailable("Kafka broker", "nothing answers")


@pytest.mark.unit
def test_docker_check_is_false_without_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert docker_engine_answers() is False


@pytest.mark.unit
def test_url_conversions() -> None:
    assert to_sqlalchemy_url("postgresql://u:p@h:5433/db") == "postgresql+psycopg://u:p@h:5433/db"
    socket_url = "postgresql+psycopg://postgres@/db?host=/tmp/s"
    libpq = make_url(libpq_url(socket_url))
    assert (libpq.drivername, libpq.database, libpq.query["host"]) == ("postgresql", "db", "/tmp/s")
    other = make_url(with_database(socket_url, "other"))
    assert (other.drivername, other.database, other.query["host"]) == (
        "postgresql+psycopg",
        "other",
        "/tmp/s",
    )
    with pytest.raises(ValueError):
        to_sqlalchemy_url("mysql://h/db")


@pytest.mark.integration
async def test_kafka_fixture_yields_a_working_broker(kafka_bootstrap_servers: str) -> None:
    host, _, port = kafka_bootstrap_servers.rpartition(":")
    assert probe_metadata(host, int(port))
    await create_topics(kafka_bootstrap_servers, ["fixture.check"], partitions=1)


@pytest.mark.integration
def test_database_url_is_a_private_working_database(database_url: str) -> None:
    assert database_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x int)"))
    engine.dispose()
    assert name.startswith("eropaf_test_")


@pytest.mark.integration
def test_fresh_database_url_creates_distinct_databases(
    fresh_database_url: Callable[..., str], database_url: str
) -> None:
    first, second = fresh_database_url(), fresh_database_url()
    assert len({first, second, database_url}) == 3
    with psycopg.connect(libpq_url(first)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
