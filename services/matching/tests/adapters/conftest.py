"""Shared builders for the repository tests against PostgreSQL (pseudonymous facts only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import load_region
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.policy import load_policy
from eropaf_platform.db import make_engine, make_sessions, migrate_async

REGION = load_region()
POLICY = load_policy(region=REGION)


def stored_signal(ref: str, day: int, **tokens: str) -> SignalFacts:
    """A rent signal of October ``day`` with the given tokens (kind name -> value)."""
    d = date(2026, 10, day)
    return SignalFacts(
        signal_ref=ref,
        partner_code=f"p-{ref}",
        partner_type=Signaalpartner.HUUR,
        gemeentecode="0356",
        postcode_area="3431",
        bedrag=600,
        ontstaansdatum=date(2026, 8, 1),
        signaaldatum=d,
        crisissignaal=False,
        warme_overdracht=True,
        match_tokens={MatchTokenKind(k): v for k, v in tokens.items()},
        received_at=datetime.combine(d, time(9), tzinfo=UTC),
    )


def signal(name: str, day: int, **tokens: str) -> SignalFacts:
    """:func:`stored_signal` with ref and token values the one-letter name or value, 32
    times (pseudonym-sized)."""
    return stored_signal(name * 32, day, **{k: v * 32 for k, v in tokens.items()})


@pytest.fixture
async def sessions(
    fresh_database_url: Callable[[], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of a fresh database with matching's tables."""
    url = fresh_database_url()
    await migrate_async(url, MIGRATIONS, service="matching")
    engine = make_engine(url)
    try:
        yield make_sessions(engine)
    finally:
        await engine.dispose()
