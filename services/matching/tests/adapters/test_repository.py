"""The repository against PostgreSQL: round trips and the cluster query."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time

import pytest

from eropaf_contracts.ddas import Contactsoort, Dagdeel
from eropaf_matching.adapters import repository
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.cases import ContactAttempt
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_platform.db import make_engine, make_sessions, migrate_async

from .conftest import POLICY, REGION
from .conftest import stored_signal as signal

pytestmark = pytest.mark.integration


async def test_state_round_trips_and_clusters_load_transitively(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    await migrate_async(url, MIGRATIONS, service="matching")
    engine = make_engine(url)
    sessions = make_sessions(engine)
    try:
        # a - b share a bsn, b - c share an address; d stands alone.
        chain = [
            signal("a" * 32, 1, bsn="1" * 32),
            signal("b" * 32, 2, bsn="1" * 32, address="2" * 32),
            signal("c" * 32, 3, address="2" * 32),
            signal("d" * 32, 4, bsn="9" * 32),
        ]
        async with sessions() as s, s.begin():
            state = await repository.load_state(s, POLICY, REGION, tokens=set(), signal_refs=set())
            for sig in chain:
                state.matcher.accept(sig)
            case_id = state.matcher.case_of("c" * 32).case_id
            state.matcher.record_attempt(
                case_id,
                ContactAttempt(Contactsoort.HUISBEZOEK, False, date(2026, 10, 6), Dagdeel.AVOND),
            )
            await state.save(s)
            expected = dict(state.matcher.cases)

        # Starting from the address token alone reaches a over b's bsn.
        async with sessions() as s:
            state = await repository.load_state(
                s, POLICY, REGION, tokens={(MatchTokenKind.ADDRESS, "2" * 32)}, signal_refs=set()
            )
        assert set(state.matcher.links.signals) == {"a" * 32, "b" * 32, "c" * 32}
        assert state.loaded_cases == {k: v for k, v in expected.items() if k == case_id}

        # Loading by ref alone finds the stored tokens of that signal.
        async with sessions() as s:
            state = await repository.load_state(
                s, POLICY, REGION, tokens=set(), signal_refs={"d" * 32}
            )
        assert set(state.matcher.links.signals) == {"d" * 32}

        reference = Matcher(POLICY, REGION)
        for sig in chain:
            reference.accept(sig)
        assert {c.case_id for c in expected.values()} == set(reference.cases)
    finally:
        await engine.dispose()


async def test_persisted_linking_with_expiring_address_links_agrees_with_the_reference(
    fresh_database_url: Callable[[], str],
) -> None:
    """Signals applied in random orders and batches through PostgreSQL (one transaction per
    batch, as the handler does) end in the households and cases of the in-memory reference."""
    url = fresh_database_url()
    await migrate_async(url, MIGRATIONS, service="matching")
    engine = make_engine(url)
    sessions = make_sessions(engine)

    def scenario(run: int) -> list[SignalFacts]:
        def at(name: str, datum: date, **tokens: str) -> SignalFacts:
            ref = hashlib.sha256(f"{run}:{name}".encode()).hexdigest()[:32]
            salted = {k: f"{run}:{v}" for k, v in tokens.items()}
            return replace(
                signal(ref, 1, **salted),
                signaaldatum=datum,
                received_at=datetime.combine(datum, time(9), tzinfo=UTC),
            )

        return [
            at("p", date(2024, 1, 8), bsn="P", address="A"),
            at("q", date(2024, 10, 7), bsn="Q", address="A"),  # within a year of p and r
            at("r", date(2025, 7, 7), bsn="R", address="A"),  # 18 months after p
            at("s", date(2026, 9, 7), bsn="S", address="A"),  # the next tenant
            at("p2", date(2026, 9, 14), bsn="P", address="B"),  # P moved
            at("b", date(2026, 12, 1), birth_surname="T", address="B"),  # lives with P now
            at("t", date(2023, 1, 2), birth_surname="T", address="C"),  # T, earlier, elsewhere
        ]

    rng = random.Random(20261201)
    try:
        for run in range(6):
            signals = scenario(run)
            reference = Matcher(POLICY, REGION)
            for sig in signals:
                reference.accept(sig)
            order = signals[:]
            rng.shuffle(order)
            while order:
                size = rng.randint(1, 3)
                batch, order = order[:size], order[size:]
                async with sessions() as s, s.begin():
                    state = await repository.load_state(
                        s,
                        POLICY,
                        REGION,
                        tokens={t for sig in batch for t in sig.match_tokens.items()},
                        signal_refs={sig.signal_ref for sig in batch},
                    )
                    for sig in sorted(batch, key=lambda x: x.key):  # as the handler does
                        state.matcher.accept(sig)
                    await state.save(s)
            async with sessions() as s:
                stored = await repository.load_state(
                    s,
                    POLICY,
                    REGION,
                    tokens={t for sig in signals for t in sig.match_tokens.items()},
                    signal_refs={sig.signal_ref for sig in signals},
                )
            assert stored.matcher.links.assignments == reference.links.assignments
            assert stored.matcher.case_partition() == reference.case_partition()
            households = {a.household_id for a in reference.links.assignments.values()}
            assert len(households) == 2  # {p, q, r, p2, b, t} and the next tenant {s}
    finally:
        await engine.dispose()
