"""Household linking from intake's keyed match tokens (no personal data here).

Model
-----
* Signals that share a strong token (``bsn``, ``birth_initials_address``, ``birth_surname``)
  belong to one *person*, whatever their dates: a person who moves stays one person.
* Persons that share an ``address`` token form one *household* only while their signals there
  are close in time (an address link *expires*): persons P and Q are linked through address A
  when a signal of P at A and a signal of Q at A have business dates (``datum``) at most
  ``address_window`` apart (inclusive; default 365 days, the region policy's
  ``adreskoppeling_dagen``). So a later tenant of the same address is a household (and a
  case) of their own, and staff on that case do not see the former tenant's history.
  Households are the transitive closure of these links, and a person is in one household:
  a person who moves carries the household (and its open case) along; a resident signalled
  through the years links each co-resident signalled within the window of one of theirs;
  and successive tenants each signalled within the window of the one before chain into one
  household (only a gap of more than the window between an address's signals breaks it).
* Why pairs of signal dates and not date intervals (first..last signal at A, widened by the
  window): a link then always rests on two signals close in time, never on a presumed stay
  between two signals years apart. Linking wrongly shows a stranger's history to staff;
  not linking costs a second case at one address. So the rule errs on the side of not
  linking. Computed per address over its carriers in canonical order: linking each to the
  next when their dates are within the window gives the same closure as comparing all pairs
  (any pair within the window has every gap between them within the window too), in
  O(carriers) per token.
* Two different ``bsn`` tokens are never one person, not even transitively: the person
  union refuses to join two groups that each carry a different bsn.

Determinism
-----------
The persons and households of a set of signals are a *pure function of that set*
(:func:`link_cluster`): token unions are applied in a canonical order (kind, most specific
first; then token value; members by :attr:`SignalFacts.key`), never in arrival order. Where
a refusal makes a choice (a bsn-less signal whose surname token is shared by two bsn
persons), the choice follows that canonical order too. Ids are derived from canonical
representatives, so any replay order yields the same ids:

* person id: from its bsn token if it has one (stable for life), else its smallest strong
  token (kind, value);
* household id: from its earliest signal by (business date, signal_ref) -- a new signal rarely
  predates the household, so the id rarely changes; on a merge the older household's id wins.

Incremental use and persistence
-------------------------------
A new signal can only affect signals it is connected to through *any* token (its *cluster*).
(The window does not bound the cluster: a cluster is what a signal may reach over tokens, and
its households are computed within it; a household lies within its cluster.) So a service
keeps, in PostgreSQL::

    match_signal(signal_ref PK, datum, tokens JSONB, person_id, household_id)

holds the same as a :class:`LinkIndex` in memory (loaded with :meth:`LinkIndex.put`), and per
batch: finds the clusters it touches (:meth:`LinkIndex.reach`), calls :func:`relink` with the
stored assignments, and writes back ``LinkOutcome.changed`` in the same transaction.
:class:`LinkIndex` is the in-memory reference of exactly that. Because only clusters are
recomputed, a correction (new revision with other tokens) may also split a household;
:attr:`LinkOutcome.changed` carries every row to update.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from eropaf_matching.domain.signals import (
    STRONG_TOKEN_KINDS,
    MatchTokenKind,
    MatchTokens,
    SignalFacts,
    SignalKey,
    day,
    shared,
)

__all__ = [
    "DEFAULT_ADDRESS_WINDOW",
    "Assignment",
    "LinkChange",
    "LinkIndex",
    "LinkInput",
    "LinkOutcome",
    "Token",
    "link_cluster",
    "relink",
]

Token = tuple[MatchTokenKind, str]

# How far apart two persons' signals at one address may be for one household (inclusive).
DEFAULT_ADDRESS_WINDOW = timedelta(days=365)


@functools.lru_cache(maxsize=1 << 14)  # a cluster's ids are derived again on every signal
def _pseudo_id(namespace: str, *parts: str) -> str:
    # Hex of 32 chars fits the contracts' Ref pattern; hashing again keeps ids from being
    # the match tokens themselves (which would let a reader correlate across tables).
    return hashlib.sha256("\x1f".join((namespace, *parts)).encode()).hexdigest()[:32]


_KIND_RANK: dict[MatchTokenKind, int] = {kind: rank for rank, kind in enumerate(STRONG_TOKEN_KINDS)}
_BSN = MatchTokenKind.BSN


class LinkInput:
    """What linking needs of a signal: its ref, business date and tokens. Held for every
    stored signal, so kept small: slots, the date and strings shared, the tokens a
    :class:`MatchTokens` (the very one of the signal's facts where made from them)."""

    __slots__ = ("datum", "signal_ref", "tokens")
    signal_ref: str
    datum: date
    tokens: MatchTokens

    def __init__(
        self,
        signal_ref: str,
        key: SignalKey,
        tokens: Mapping[MatchTokenKind, str] | Mapping[str, str],
    ) -> None:
        datum, ref = key
        if ref != signal_ref:
            raise ValueError(f"LinkInput: key {key!r} is not of signal {signal_ref!r}")
        setattr_ = object.__setattr__
        setattr_(self, "signal_ref", shared(signal_ref))
        setattr_(self, "datum", day(datum))
        setattr_(self, "tokens", MatchTokens(tokens))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LinkInput is immutable: cannot set {name}")

    @classmethod
    def of(cls, signal: SignalFacts) -> LinkInput:
        return cls(signal.signal_ref, signal.key, signal.match_tokens)

    @property
    def key(self) -> SignalKey:
        return (self.datum, self.signal_ref)

    def token_set(self) -> frozenset[Token]:
        return frozenset(self.tokens.pairs())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinkInput):
            return NotImplemented
        return (
            self.signal_ref == other.signal_ref
            and self.datum == other.datum
            and self.tokens == other.tokens
        )

    def __hash__(self) -> int:
        return hash((self.signal_ref, self.datum, self.tokens))

    def __repr__(self) -> str:
        return f"LinkInput({self.signal_ref!r}, {self.key!r}, {self.tokens!r})"


@dataclass(frozen=True, slots=True)
class Assignment:
    person_id: str
    household_id: str


def _signal_key(signal: LinkInput) -> SignalKey:
    return signal.key


def _person_id(bsn: str | None, members: Iterable[LinkInput], root: LinkInput) -> str:
    if bsn is not None:
        return _pseudo_id("person", MatchTokenKind.BSN.value, bsn)
    carried = {
        (_KIND_RANK[kind], value)
        for member in members
        for kind, value in member.tokens.pairs()
        if kind in _KIND_RANK
    }
    if carried:
        rank, value = min(carried)
        return _pseudo_id("person", STRONG_TOKEN_KINDS[rank].value, value)
    return _pseudo_id("person-signal", root.signal_ref)  # only an address: a person of its own


def link_cluster(
    signals: Iterable[LinkInput], *, address_window: timedelta = DEFAULT_ADDRESS_WINDOW
) -> dict[str, Assignment]:
    """Persons and households of a set of signals; a pure function of the set (and of
    ``address_window``: the module docstring)."""
    ordered = sorted(signals, key=_signal_key)
    n = len(ordered)
    if n == 1:  # most signals arrive alone: no unions to make
        only = ordered[0]
        person = _person_id(only.tokens.get(_BSN), ordered, only)
        return {only.signal_ref: Assignment(person, _pseudo_id("household", only.signal_ref))}
    if len({s.signal_ref for s in ordered}) != n:
        raise ValueError("link_cluster: duplicate signal_ref in input")

    by_token: dict[Token, list[int]] = {}
    for index, signal in enumerate(ordered):
        for token in signal.tokens.pairs():
            members = by_token.get(token)
            if members is None:
                by_token[token] = [index]
            else:
                members.append(index)  # indexes ascend: members in canonical order

    # Persons: union-find over signal indexes that refuses to join two different bsn tokens
    # (bsn is valid at roots). Run once per signal on a cluster of a few: inline, not a class.
    parent = list(range(n))
    bsn = [s.tokens.get(_BSN) for s in ordered]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kind_rank = _KIND_RANK
    # A token carried by one signal joins nothing: only shared strong tokens, in their order.
    strong = sorted(
        (t for t, members in by_token.items() if len(members) > 1 and t[0] in kind_rank),
        key=lambda t: (kind_rank[t[0]], t[1]),
    )
    for token in strong:
        first, *others = by_token[token]
        for other in others:
            # Join each carrier to the earliest carrier; a refusal leaves it with its own bsn.
            ra, rb = find(first), find(other)
            if ra == rb:
                continue
            if bsn[ra] is not None and bsn[rb] is not None and bsn[ra] != bsn[rb]:
                continue  # two citizen service numbers: never one person
            root, child = (ra, rb) if ra < rb else (rb, ra)  # lower index = earlier: canonical
            parent[child] = root
            bsn[root] = bsn[root] or bsn[child]

    person_members: dict[int, list[int]] = {}
    person_root = [find(i) for i in range(n)]
    for index, root in enumerate(person_root):
        person_members.setdefault(root, []).append(index)

    person_id = {
        root: _person_id(bsn[root], (ordered[i] for i in members), ordered[root])
        for root, members in person_members.items()
    }

    # Households: persons joined by a shared address within the window (plain union-find over
    # person roots, no refusal; roots stay the smallest index).
    household_parent = list(range(n))

    def find_household(root: int) -> int:
        while household_parent[root] != root:
            household_parent[root] = household_parent[household_parent[root]]
            root = household_parent[root]
        return root

    address = MatchTokenKind.ADDRESS
    for token, members in by_token.items():
        if token[0] is not address or len(members) < 2:
            continue
        # Carriers ascend by (datum, ref): linking each to the next one within the window
        # gives the closure of "some pair within the window" (module docstring).
        previous = members[0]
        previous_day = ordered[previous].datum
        for position in range(1, len(members)):
            member = members[position]
            datum = ordered[member].datum
            if datum - previous_day <= address_window:
                ra = find_household(person_root[previous])
                rb = find_household(person_root[member])
                if ra < rb:
                    household_parent[rb] = ra
                elif rb < ra:
                    household_parent[ra] = rb
            previous, previous_day = member, datum

    household_id = {
        # Roots are always the smallest index (unions attach larger roots under smaller
        # ones), i.e. the household's earliest signal: a content-canonical representative.
        root: _pseudo_id("household", ordered[root].signal_ref)
        for root in {find_household(r) for r in person_members}
    }
    return {
        signal.signal_ref: Assignment(
            person_id[person_root[index]], household_id[find_household(person_root[index])]
        )
        for index, signal in enumerate(ordered)
    }


class LinkChange(StrEnum):
    NEW_HOUSEHOLD = "new_household"  # no other signal of this household was known
    JOINED = "joined"  # joined one existing household
    MERGED = "merged"  # bridged two or more existing households into one


@dataclass(frozen=True)
class LinkOutcome:
    signal_ref: str
    person_id: str
    household_id: str
    change: LinkChange
    # Household ids that existed before and now are (part of) this household, other than
    # ``household_id`` itself: merged away or renamed. Cases keyed by them must follow.
    absorbed_household_ids: tuple[str, ...]
    # Every signal whose assignment is new or different: the rows to write back.
    changed: Mapping[str, Assignment] = field(default_factory=dict)
    # The signal refs of its household (a household lies within its cluster).
    household: frozenset[str] = frozenset()


def relink(
    cluster: Iterable[LinkInput],
    previous: Mapping[str, Assignment],
    signal_ref: str,
    *,
    address_window: timedelta = DEFAULT_ADDRESS_WINDOW,
) -> LinkOutcome:
    """Recompute one cluster after ``signal_ref`` was added or revised.

    ``cluster`` holds every signal connected to the signal by any token (including itself,
    with its current tokens); ``previous`` the stored assignments of those signals (the new
    signal has none). Pure: the caller persists :attr:`LinkOutcome.changed`.
    """
    assignments = link_cluster(cluster, address_window=address_window)
    if signal_ref not in assignments:
        raise ValueError(f"relink: signal {signal_ref!r} is not in its own cluster")
    mine = assignments[signal_ref]
    household = frozenset(
        [ref for ref, a in assignments.items() if a.household_id == mine.household_id]
    )
    before = {previous[ref].household_id for ref in household if ref in previous}
    if not before:
        change = LinkChange.NEW_HOUSEHOLD
    elif len(before) == 1:
        change = LinkChange.JOINED
    else:
        change = LinkChange.MERGED
    return LinkOutcome(
        signal_ref=signal_ref,
        person_id=mine.person_id,
        household_id=mine.household_id,
        change=change,
        absorbed_household_ids=tuple(sorted(before - {mine.household_id})),
        changed={ref: a for ref, a in assignments.items() if previous.get(ref) != a},
        household=household,
    )


class LinkIndex:
    """In-memory linking state; the reference for the PostgreSQL tables (module docstring).

    Held for every stored signal: the carriers of a token are kept per kind and token, as
    the one signal ref where only one signal carries it (most tokens) and as a set where
    more do (a set per token was the largest part of the state)."""

    def __init__(self, *, address_window: timedelta = DEFAULT_ADDRESS_WINDOW) -> None:
        self.address_window = address_window
        self.signals: dict[str, LinkInput] = {}
        self.assignments: dict[str, Assignment] = {}
        self._carriers: dict[MatchTokenKind, dict[str, str | set[str]]] = {
            kind: {} for kind in MatchTokenKind
        }

    def carriers(self, token: Token) -> set[str]:
        """The held signals that carry ``token``."""
        by_value = self._carriers.get(token[0])
        held = None if by_value is None else by_value.get(token[1])
        if held is None:
            return set()
        return {held} if isinstance(held, str) else set(held)

    def cluster(self, tokens: Iterable[Token]) -> set[str]:
        """Signals reachable from ``tokens`` over shared tokens of any kind."""
        carriers = self._carriers
        signals = self.signals
        seen_tokens: set[Token] = set()
        found: set[str] = set()
        frontier = list(tokens)
        while frontier:
            token = frontier.pop()
            if token in seen_tokens:
                continue
            seen_tokens.add(token)
            by_value = carriers.get(token[0])
            held = None if by_value is None else by_value.get(token[1])
            if held is None:
                continue
            for ref in (held,) if isinstance(held, str) else held:
                if ref not in found:
                    found.add(ref)
                    frontier.extend(signals[ref].tokens.pairs())
        return found

    def scope(self, signal_ref: str, tokens: Iterable[Token]) -> set[str]:
        """The signals that adding (or revising) a signal with these ``tokens`` may relink,
        itself included: the cluster of its tokens and, for a revision, of its old tokens
        too (a revision may split what they used to join). Asked before the signal is
        applied (it needs the old tokens); the search finds the same signals then as after
        the update, as both start from all of those tokens and the signal itself joins no
        others."""
        old = self.signals.get(signal_ref)
        if old is not None:
            tokens = [*old.tokens.pairs(), *tokens]
        return self.cluster(tokens) | {signal_ref}

    def _hold(self, signal: LinkInput) -> None:
        """Keep ``signal`` (new or revised) and index its tokens instead of its old ones."""
        ref = signal.signal_ref
        carriers = self._carriers
        old = self.signals.get(ref)
        if old is not None:
            for kind, value in old.tokens.pairs():
                by_value = carriers[kind]
                held = by_value.get(value)
                if held is None:
                    continue
                if isinstance(held, str):
                    if held == ref:
                        del by_value[value]
                    continue
                held.discard(ref)
                if len(held) == 1:
                    by_value[value] = next(iter(held))
        self.signals[ref] = signal
        for kind, value in signal.tokens.pairs():
            by_value = carriers[kind]
            held = by_value.get(value)
            if held is None:
                by_value[value] = ref
            elif isinstance(held, str):
                if held != ref:
                    by_value[value] = {held, ref}
            else:
                held.add(ref)

    def put(self, signal: LinkInput, assignment: Assignment) -> None:
        """Hold a signal as it was linked before (loading stored state): no relinking."""
        self._hold(signal)
        self.assignments[signal.signal_ref] = assignment

    def reach(self, tokens: Iterable[Token], signal_refs: Iterable[str]) -> set[str]:
        """The held signals a batch with these ``tokens`` and (possibly revised) signals may
        relink: the cluster of the tokens and of the held tokens of ``signal_refs``, and the
        held ones of ``signal_refs`` themselves."""
        start = list(tokens)
        held = {ref for ref in signal_refs if ref in self.signals}
        for ref in held:
            start += self.signals[ref].tokens.pairs()
        return self.cluster(start) | held

    def apply(self, signal: LinkInput, *, scope: set[str] | None = None) -> LinkOutcome:
        """Add (or revise) one signal; returns what changed. ``scope``: :meth:`scope` of the
        signal, if the caller has it already."""
        if scope is None:
            scope = self.scope(signal.signal_ref, signal.tokens.pairs())
        self._hold(signal)
        previous = {ref: self.assignments[ref] for ref in scope if ref in self.assignments}
        outcome = relink(
            (self.signals[ref] for ref in scope),
            previous,
            signal.signal_ref,
            address_window=self.address_window,
        )
        self.assignments.update(outcome.changed)
        return outcome

    def household_of(self, signal_ref: str) -> set[str]:
        """The signal refs of the signal's household (a household lies within a cluster, so
        only the cluster is searched, not every assignment)."""
        household_id = self.assignments[signal_ref].household_id
        scope = self.cluster(self.signals[signal_ref].tokens.pairs()) | {signal_ref}
        return {r for r in scope if self.assignments[r].household_id == household_id}

    def households(self) -> dict[str, set[str]]:
        """household id -> its signal refs."""
        out: dict[str, set[str]] = defaultdict(set)
        for ref, assignment in self.assignments.items():
            out[assignment.household_id].add(ref)
        return dict(out)

    def persons(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for ref, assignment in self.assignments.items():
            out[assignment.person_id].add(ref)
        return dict(out)
