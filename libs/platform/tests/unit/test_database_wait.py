"""A starting service waits for its database server, but not for a failing migration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_platform import service as service_module
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings

pytestmark = pytest.mark.unit


def _service(**extra: Any) -> Service:
    settings = ServiceSettings(
        service_name="waiter",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/waiter",
        kafka_bootstrap_servers="127.0.0.1:1",
        **extra,
    )
    return Service(settings)


def _refused() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("connect", {}, Exception("connection refused"))


async def test_migrates_once_the_server_accepts_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[str] = []

    async def migrate(url: str, migrations: Path | None, *, service: str) -> None:
        attempts.append(url)
        if len(attempts) < 3:
            raise _refused()

    monkeypatch.setattr(service_module, "migrate_async", migrate)
    svc = _service()
    await svc._migrate()
    assert len(attempts) == 3
    await svc.engine.dispose()


async def test_gives_up_after_the_database_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    async def migrate(url: str, migrations: Path | None, *, service: str) -> None:
        raise _refused()

    monkeypatch.setattr(service_module, "migrate_async", migrate)
    svc = _service(database_wait_s=0.5)
    begun = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        await svc._migrate()
    assert 0.5 <= time.monotonic() - begun < 5.0
    await svc.engine.dispose()


async def test_a_failing_migration_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    async def migrate(url: str, migrations: Path | None, *, service: str) -> None:
        attempts.append(url)
        raise sa.exc.ProgrammingError("ALTER TABLE", {}, Exception("syntax error"))

    monkeypatch.setattr(service_module, "migrate_async", migrate)
    svc = _service()
    with pytest.raises(sa.exc.ProgrammingError):
        await svc._migrate()
    assert len(attempts) == 1
    await svc.engine.dispose()
