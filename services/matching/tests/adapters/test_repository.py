"""The repository against PostgreSQL: round trips and the cluster query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time

import pytest

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Signaalpartner
from eropaf_contracts.region import load_region
from eropaf_matching.adapters import repository
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.cases import ContactAttempt
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.policy import load_policy
from eropaf_platform.db import make_engine, make_sessions, migrate_async

pytestmark = pytest.mark.integration

REGION = load_region()
POLICY = load_policy(region=REGION)


def signal(ref: str, day: int, **tokens: str) -> SignalFacts:
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
