"""Throughput of the signal handler with full batches (slow; prints the measured rate)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_contracts.ddas import Signaalpartner
from eropaf_matching.adapters.tables import case_signal
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import Household, publish


@pytest.fixture(scope="module")
def matching_options() -> dict[str, Any]:
    return {"consume_visits": False}  # only intake's events here: one group join less


pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUSEHOLDS = 1000  # two signals each (rent + energy, one person)


async def test_two_thousand_signals(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    envelopes = []
    for i in range(HOUSEHOLDS):
        d = date(2026, 10, 1) + timedelta(days=i % 28)
        envelopes.append(h.accepted(f"r{i}", bedrag=900, datum=d, bsn=f"b{i}", address=f"a{i}"))
        envelopes.append(
            h.accepted(
                f"e{i}",
                partner="eneco",
                type=Signaalpartner.ENERGIE,
                bedrag=200,
                datum=d + timedelta(days=1),
                bsn=f"b{i}",
                address=f"a{i}",
            )
        )
    refs = [e.key for e in envelopes]
    started = time.perf_counter()
    await publish(kafka_bootstrap_servers, *envelopes)
    published = time.perf_counter()

    async def all_placed() -> bool:
        async with matching.sessions() as s:
            n = await s.scalar(
                sa.select(sa.func.count())
                .select_from(case_signal)
                .where(case_signal.c.signal_ref.in_(refs))
            )
        return n == len(refs)

    await wait_until_async(all_placed, timeout=180, interval=0.25)
    done = time.perf_counter()
    async with matching.sessions() as s:
        cases = await s.scalar(
            sa.select(sa.func.count(sa.distinct(case_signal.c.case_id))).where(
                case_signal.c.signal_ref.in_(refs)
            )
        )
    assert cases == HOUSEHOLDS
    print(
        f"\n{len(refs)} signals: published in {published - started:.1f}s, "
        f"all placed after {done - started:.1f}s "
        f"({len(refs) / (done - started):.0f} signals/s end to end)"
    )
