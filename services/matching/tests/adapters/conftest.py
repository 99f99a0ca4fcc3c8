"""Shared builders for the repository tests against PostgreSQL (pseudonymous facts only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import load_region
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.policy import load_policy

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
