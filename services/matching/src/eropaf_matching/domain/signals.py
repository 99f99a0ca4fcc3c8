"""The facts matching knows about one signal: pseudonymous, no personal data.

A plain domain type on purpose: handlers translate ``SignalAccepted``/``SignalUpdated`` into
this, so that the rules here do not depend on the transport models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.events import MatchTokenKind

__all__ = ["STRONG_TOKEN_KINDS", "MatchTokenKind", "SignalFacts", "SignalKey"]

# Kinds that identify one person; ordered most specific first (linking relies on the order).
STRONG_TOKEN_KINDS: tuple[MatchTokenKind, ...] = (
    MatchTokenKind.BSN,
    MatchTokenKind.BIRTH_INITIALS_ADDRESS,
    MatchTokenKind.BIRTH_SURNAME,
)

SignalKey = tuple[date, str]
"""Canonical order of signals: business date, then reference. Content-based, so it does not
depend on arrival order (which differs between replays)."""


@dataclass(frozen=True)
class SignalFacts:
    signal_ref: str
    partner_code: str
    partner_type: Signaalpartner
    gemeentecode: str
    postcode_area: str
    bedrag: int | None
    ontstaansdatum: date | None
    signaaldatum: date | None
    crisissignaal: bool
    warme_overdracht: bool
    match_tokens: Mapping[MatchTokenKind, str]
    received_at: datetime
    revision: int = 1

    @property
    def datum(self) -> date:
        """The business date of the signal: signaaldatum, else the day intake received it."""
        return self.signaaldatum or self.received_at.date()

    @property
    def key(self) -> SignalKey:
        return (self.datum, self.signal_ref)
