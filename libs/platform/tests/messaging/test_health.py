"""Liveness, readiness and metrics of a running service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from .support import settings_for

pytestmark = pytest.mark.integration


async def test_ready_only_when_started_with_database_and_broker(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    service = Service(settings_for("health", kafka_bootstrap_servers, fresh_database_url()))
    app = service.http_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/health/live")).status_code == 200
        before = await client.get("/health/ready")
        assert before.status_code == 503
        assert before.json()["checks"]["started"] is False
        await service.start()
        try:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": True, "broker": True, "started": True}
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert 'eropaf_outbox_backlog{service="health"} 0.0' in metrics.text
        finally:
            await service.stop()


async def test_not_ready_when_the_broker_does_not_answer(
    fresh_database_url: Callable[[], str],
) -> None:
    from eropaf_platform.local.ports import free_port

    service = Service(settings_for("nobroker", f"127.0.0.1:{free_port()}", fresh_database_url()))
    service.started = True  # as if running, to see the broker check itself fail
    checks = await service.readiness()
    assert checks["database"] is True
    assert checks["broker"] is False
    await service.engine.dispose()


async def test_a_periodic_task_runs_while_the_service_runs_and_outlives_a_failure(
    kafka_bootstrap_servers: str, fresh_database_url: Callable[[], str]
) -> None:
    service = Service(settings_for("periodic", kafka_bootstrap_servers, fresh_database_url()))
    runs: list[int] = []

    async def task() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    service.every(0.05, task, name="test-periodic")
    with pytest.raises(ValueError, match="positive"):
        service.every(0, task, name="never")
    await service.start()
    try:
        await wait_until_async(lambda: len(runs) >= 3, timeout=10, interval=0.05)
    finally:
        await service.stop()
    stopped_at = len(runs)
    await asyncio.sleep(0.2)
    assert len(runs) == stopped_at  # stop() ends it
