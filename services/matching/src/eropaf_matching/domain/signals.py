"""The facts matching knows about one signal: pseudonymous, no personal data.

A plain domain type on purpose: handlers translate ``SignalAccepted``/``SignalUpdated`` into
this, so that the rules here do not depend on the transport models.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.events import MatchTokenKind

__all__ = [
    "STRONG_TOKEN_KINDS",
    "TOKEN_KINDS",
    "MatchTokenKind",
    "MatchTokens",
    "SignalFacts",
    "SignalKey",
    "canonical_order",
    "computed_once",
    "day",
    "shared",
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


# --- compact values -------------------------------------------------------------------------
# Matching holds every stored signal twice (linking state and cases) for the life of the
# process: the same refs, tokens, codes and days recur across rows and across both copies, so
# each is kept once (docs/performance.md, "Memory").

_DAYS: dict[date, date] = {}


def shared(value: str) -> str:
    """The one copy of a string this process keeps (``sys.intern``; freed with its last
    user). Refs, tokens, ids and codes arrive as new strings with every row and event."""
    return sys.intern(value) if type(value) is str else value


def day(value: date) -> date:
    """The one ``date`` object of a day (a few hundred days recur over every row)."""
    return _DAYS.setdefault(value, value) if type(value) is date else value


_KINDS: tuple[MatchTokenKind, ...] = tuple(MatchTokenKind)
_POSITION: dict[str, int] = {kind: i for i, kind in enumerate(_KINDS)}  # by member and value


class MatchTokens(Mapping[MatchTokenKind, str]):
    """A signal's match tokens by kind: a read-only mapping that holds only the token of
    each kind in a fixed kind order (``None`` where the signal has none), the strings
    :func:`shared`. A ``dict`` of four tokens takes twice the memory and is held per signal.
    Equal to any mapping with the same kinds and tokens, as a ``dict`` is."""

    __slots__ = ("_values",)
    _values: tuple[str | None, ...]

    def __init__(
        self, tokens: Mapping[MatchTokenKind, str] | Mapping[str, str] | Iterable[Any] = ()
    ) -> None:
        if isinstance(tokens, MatchTokens):
            self._values = tokens._values
            return
        values: list[str | None] = [None] * len(_KINDS)
        items: Iterable[Any] = tokens.items() if isinstance(tokens, Mapping) else tokens
        for kind, value in items:
            position = _POSITION.get(kind)
            if position is None:
                position = _POSITION[token_kind(kind)]  # raises for an unknown kind
            values[position] = shared(value)
        self._values = tuple(values)

    def pairs(self) -> list[tuple[MatchTokenKind, str]]:
        """(kind, token) of each token, in kind order."""
        return [(k, v) for k, v in zip(_KINDS, self._values, strict=True) if v is not None]

    def __getitem__(self, kind: MatchTokenKind | str) -> str:
        position = _POSITION.get(kind)
        value = None if position is None else self._values[position]
        if value is None:
            raise KeyError(kind)
        return value

    def get(self, kind: Any, default: Any = None) -> Any:
        position = _POSITION.get(kind)
        value = None if position is None else self._values[position]
        return default if value is None else value

    def __contains__(self, kind: object) -> bool:
        position = _POSITION.get(kind)  # type: ignore[call-overload]
        return position is not None and self._values[position] is not None

    def __iter__(self) -> Iterator[MatchTokenKind]:
        return (k for k, v in zip(_KINDS, self._values, strict=True) if v is not None)

    def __len__(self) -> int:
        return len(self._values) - self._values.count(None)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MatchTokens):
            return self._values == other._values
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return repr({k.value: v for k, v in self.pairs()})


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


@dataclass(frozen=True, slots=True)
class SignalFacts:
    """What matching keeps of a signal. Held for every stored signal: slots, and its refs,
    codes, days and tokens shared (:func:`shared`, :func:`day`, :class:`MatchTokens`)."""

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

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "signal_ref", shared(self.signal_ref))
        setattr_(self, "partner_code", shared(self.partner_code))
        setattr_(self, "gemeentecode", shared(self.gemeentecode))
        setattr_(self, "postcode_area", shared(self.postcode_area))
        if self.ontstaansdatum is not None:
            setattr_(self, "ontstaansdatum", day(self.ontstaansdatum))
        if self.signaaldatum is not None:
            setattr_(self, "signaaldatum", day(self.signaaldatum))
        if not isinstance(self.match_tokens, MatchTokens):
            setattr_(self, "match_tokens", MatchTokens(self.match_tokens))

    @property
    def datum(self) -> date:
        """The business date of the signal: signaaldatum, else the day intake received it."""
        return self.signaaldatum or self.received_at.date()

    @property
    def key(self) -> SignalKey:
        return (self.signaaldatum or self.received_at.date(), self.signal_ref)


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
