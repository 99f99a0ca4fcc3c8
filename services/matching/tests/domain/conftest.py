"""Shared builders for matching's domain tests (pseudonymous facts only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time

import pytest

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import Region, load_region
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.domain.triage import RegionPolicy
from eropaf_matching.policy import load_policy

MakeSignal = Callable[..., SignalFacts]

_GEMEENTE_BY_PC4 = {"3431": "0356", "3432": "0356", "3401": "0353", "3991": "0321", "4131": "1961"}


def make_signal(
    ref: str,
    *,
    partner: str = "mitros",
    type: Signaalpartner = Signaalpartner.HUUR,
    pc4: str = "3431",
    bedrag: int | None = 500,
    datum: date = date(2026, 1, 5),
    crisis: bool = False,
    warm: bool = False,
    bsn: str | None = None,
    surname: str | None = None,
    initials: str | None = None,
    address: str | None = None,
) -> SignalFacts:
    tokens = {
        kind: value
        for kind, value in (
            (MatchTokenKind.BSN, bsn),
            (MatchTokenKind.BIRTH_SURNAME, surname),
            (MatchTokenKind.BIRTH_INITIALS_ADDRESS, initials),
            (MatchTokenKind.ADDRESS, address),
        )
        if value is not None
    }
    return SignalFacts(
        signal_ref=ref,
        partner_code=partner,
        partner_type=type,
        gemeentecode=_GEMEENTE_BY_PC4.get(pc4, "0356"),
        postcode_area=pc4,
        bedrag=bedrag,
        ontstaansdatum=None,
        signaaldatum=datum,
        crisissignaal=crisis,
        warme_overdracht=warm,
        match_tokens=tokens,
        received_at=datetime.combine(datum, time(9, 0), tzinfo=UTC),
    )


@pytest.fixture
def signal() -> MakeSignal:
    return make_signal


@pytest.fixture(scope="session")
def region() -> Region:
    return load_region()


@pytest.fixture(scope="session")
def policy(region: Region) -> RegionPolicy:
    return load_policy(region=region)
