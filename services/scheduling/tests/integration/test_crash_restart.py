"""A kill -9 of scheduling while it plans, and a restart: no visit lost, none doubled, and
the same plan as an undisturbed run of the same input (the solve is deterministic and its
result is written in one transaction with its events)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import OutreachDecided, OutreachKind, Urgency
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.tables import outbox_message
from eropaf_platform.testing.wait import wait_until_async
from eropaf_scheduling.adapters.cpsat_planner import CpSatPlanner
from eropaf_scheduling.adapters.tables import VisitRow
from eropaf_scheduling.app import MIGRATIONS, SchedulingSettings, planning_config
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

from ..builders import counsellor, employee

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DETERMINISTIC_TIME = 6.0
# No wall-time cap in either run: the plans must be the deterministic ones to compare.
MAX_SECONDS = 3600.0
CASES = 120


def ref(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def staff() -> list[Any]:
    people = []
    for g, gemeente in enumerate(("0356", "0321", "0353")):
        people += [employee(f"mitros-{g}{k}", gemeenten=(gemeente,)) for k in range(4)]
        # three visits a week each: more cases than room, so the solver cannot prove its plan
        # optimal early and spends its whole budget (the kill lands inside the solve)
        people += [
            counsellor(f"wil-{g}{k}", gemeenten=(gemeente,), max_per_week=3) for k in range(4)
        ]
    return people


async def seed(url: str, run: str) -> None:
    """The same roster and cases in a fresh database."""
    await migrate_async(url, MIGRATIONS, service="scheduling")
    engine = make_engine(url, pool_size=1)
    config = planning_config(SchedulingSettings(database_url=url, dev_mode=True))
    now = datetime.now(UTC)
    today = now.date()
    try:
        sessions = make_sessions(engine)
        async with sql_units_of_work(sessions)() as uow:
            await services.import_roster(uow, staff(), now)
        for i in range(CASES):
            event = OutreachDecided(
                case_ref=ref(f"{run}-{i}"),
                household_ref=ref(f"{run}-hh-{i}"),
                gemeentecode=("0356", "0321", "0353")[i % 3],
                team="wil",
                postcode_area="3431",
                outreach=OutreachKind.HOME_VISIT,
                urgency=(Urgency.CRISIS, Urgency.HIGH, Urgency.NORMAL, Urgency.NORMAL)[i % 4],
                deadline=today + timedelta(days=5 + i % 9),
                priority=i % 37,
                rule_ids=["huurachterstand"],
                decided_at=now,
                partner_codes=["mitros"],
            )
            async with sql_units_of_work(sessions)() as uow:
                await services.outreach_decided(
                    uow, event, Envelope.wrap(event, key=event.case_ref), config, now
                )
    finally:
        await engine.dispose()


async def plan_rows(url: str) -> tuple[list[tuple[Any, ...]], dict[str, int], bool]:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            visits = (
                await conn.execute(
                    sa.select(VisitRow.__table__).order_by(  # type: ignore[attr-defined]
                        sa.text("case_ref")
                    )
                )
            ).all()
            planned: dict[str, int] = {}
            for (value,) in await conn.execute(sa.select(outbox_message.c.value)):
                body = json.loads(value)
                if body["type"] == "eropaf.scheduling.visit.planned":
                    planned[body["data"]["case_ref"]] = planned.get(body["data"]["case_ref"], 0) + 1
            due = (
                await conn.execute(sa.text("SELECT requested <> planned FROM sched_replan"))
            ).scalar_one()
        return [tuple(r) for r in visits], planned, bool(due)
    finally:
        await engine.dispose()


def start(url: str, bootstrap: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        EROPAF_DATABASE_URL=url,
        EROPAF_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        EROPAF_DEV_MODE="true",
        EROPAF_HTTP_HOST="127.0.0.1",
        EROPAF_HTTP_PORT=str(port),
        EROPAF_SOLVER_DETERMINISTIC_TIME=str(DETERMINISTIC_TIME),
        EROPAF_SOLVER_MAX_SECONDS=str(MAX_SECONDS),
        EROPAF_REPLAN_INTERVAL_S="0.2",
        EROPAF_REPLAN_QUIET_S="0",
        EROPAF_CONSUMER_GROUP_PREFIX=f"crash-{uuid.uuid4().hex[:8]}",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "eropaf_scheduling"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/health/live")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_kill_while_planning_then_restart_gives_the_undisturbed_plan(
    kafka_bootstrap_servers: str, _database_registry: Any
) -> None:
    crashed = _database_registry.create("eropaf_scheduling_crash")
    undisturbed = _database_registry.create("eropaf_scheduling_calm")
    run = uuid.uuid4().hex
    await seed(crashed, run)
    await seed(undisturbed, run)

    # the undisturbed run: the same planner and input, in this process
    engine = make_engine(undisturbed, pool_size=1)
    try:
        config = planning_config(SchedulingSettings(database_url=undisturbed, dev_mode=True))
        planner = CpSatPlanner(max_deterministic_time=DETERMINISTIC_TIME, max_seconds=MAX_SECONDS)
        outcome = await services.replan(
            sql_units_of_work(make_sessions(engine)), planner, config, datetime.now(UTC)
        )
        assert outcome is not None
    finally:
        await engine.dispose()
    expected, expected_events, _ = await plan_rows(undisturbed)
    assert len(expected) > CASES // 2

    port = free_port()
    process = start(crashed, kafka_bootstrap_servers, port)
    try:
        await wait_until_async(lambda: ready(port), timeout=120, interval=0.1)
        await asyncio.sleep(0.5)  # the replan job has started solving
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        _, _, due = await plan_rows(crashed)
        assert due, "the plan was written before the kill: nothing was interrupted"
        process = start(crashed, kafka_bootstrap_servers, port)

        async def planned() -> bool:
            return not (await plan_rows(crashed))[2]

        await wait_until_async(planned, timeout=300, interval=0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    visits, events, _ = await plan_rows(crashed)
    assert visits == expected
    assert events == expected_events
    assert set(events.values()) == {1}  # one VisitPlanned per case: none doubled, none lost
