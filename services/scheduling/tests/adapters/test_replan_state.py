"""The replan counters on PostgreSQL: the first change since the last plan is remembered
(the maximum delay of a replan runs from it), later ones only count; and when the last plan
was made (a new day plans again)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_scheduling.app import MIGRATIONS
from eropaf_scheduling.service_layer.unit_of_work import sql_units_of_work

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


async def test_pending_since_is_the_first_change_not_planned_yet(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    await migrate_async(url, MIGRATIONS, service="scheduling")
    engine = make_engine(url)
    units = sql_units_of_work(make_sessions(engine))
    try:
        for seconds in (0, 5, 9):
            async with units() as uow:
                await uow.repo.request_replan(T0 + timedelta(seconds=seconds))
                await uow.commit()
        async with units() as uow:
            state = await uow.repo.replan_state()
            assert (state.requested, state.planned) == (3, 0)
            assert state.requested_at == T0 + timedelta(seconds=9)
            assert state.pending_since == T0
            await uow.repo.mark_planned(state.requested, T0 + timedelta(seconds=15))
            await uow.repo.request_replan(T0 + timedelta(seconds=20))
            await uow.commit()
        async with units() as uow:
            state = await uow.repo.replan_state()
            assert state.due and state.pending_since == T0 + timedelta(seconds=20)
            assert state.planned_at == T0 + timedelta(seconds=15)
    finally:
        await engine.dispose()
