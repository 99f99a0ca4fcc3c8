"""The facts matching knows about one signal: pseudonymous, no personal data.

A plain domain type on purpose: handlers translate ``SignalAccepted``/``SignalUpdated`` into
this, so that the rules here do not depend on the transport models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.events import MatchTokenKind

__all__ = [
    "STRONG_TOKEN_KINDS",
    "TOKEN_KINDS",
    "MatchTokenKind",
    "SignalFacts",
    "SignalKey",
    "canonical_order",
    "computed_once",
    "token_kind",
]

# Kinds that identify one person; ordered most specific first (linking relies on the order).
STRONG_TOKEN_KINDS: tuple[MatchTokenKind, ...] = (
    MatchTokenKind.BSN,
    MatchTokenKind.BIRTH_INITIALS_ADDRESS,
    MatchTokenKind.BIRTH_SURNAME,
)

# Kinds by value: a dict lookup instead of an enum call per token (stored rows and events
# carry thousands); an unknown value still fails as the enum call would (``token_kind``).
TOKEN_KINDS: dict[str, MatchTokenKind] = {kind.value: kind for kind in MatchTokenKind}


def token_kind(value: str) -> MatchTokenKind:
    return TOKEN_KINDS.get(value) or MatchTokenKind(value)


T = TypeVar("T")

if TYPE_CHECKING:
    from functools import cached_property as computed_once
else:

    class computed_once(Generic[T]):
        """``functools.cached_property`` without its lock (Python 3.11 takes one per first
        access, which cost more than the values it cached). For immutable objects only: the
        value is stored in the instance's ``__dict__``, which a frozen dataclass's fields,
        equality and repr ignore."""

        def __init__(self, function: Any) -> None:
            self.function = function
            self.name = function.__name__
            self.__doc__ = function.__doc__

        def __get__(self, instance: Any, owner: Any = None) -> Any:
            if instance is None:
                return self
            value = instance.__dict__[self.name] = self.function(instance)
            return value


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

    # Linking, placing and triage sort by the key many times per signal.
    @computed_once
    def datum(self) -> date:
        """The business date of the signal: signaaldatum, else the day intake received it."""
        return self.signaaldatum or self.received_at.date()

    @computed_once
    def key(self) -> SignalKey:
        return (self.datum, self.signal_ref)


Item = TypeVar("Item")


def canonical_order(items: Sequence[Item], key: Callable[[Item], SignalKey | None]) -> list[Item]:
    """Within each run of new or revised signals (between resolutions, whose ``key`` is
    None), the signals by business date rather than by arrival.

    Signals of one household are keyed by their own refs, so they arrive over different
    partitions in no particular order; applying the earliest first means a case is opened
    with the id it keeps (ids derive from the earliest signal) instead of being renamed
    within the same batch. Each signal's own items keep their order (by the first one's
    key), and resolutions stay where they were.
    """
    out: list[Item] = []
    run: dict[str, list[tuple[SignalKey, Item]]] = {}

    def flush() -> None:
        for keyed in sorted(run.values(), key=lambda entries: entries[0][0]):
            out.extend(item for _, item in keyed)
        run.clear()

    for item in items:
        signal_key = key(item)
        if signal_key is None:
            flush()
            out.append(item)
        else:
            run.setdefault(signal_key[1], []).append((signal_key, item))
    flush()
    return out
