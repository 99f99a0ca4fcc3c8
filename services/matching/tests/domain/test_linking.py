from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pytest

from eropaf_matching.domain.linking import (
    DEFAULT_ADDRESS_WINDOW,
    LinkChange,
    LinkIndex,
    LinkInput,
    link_cluster,
)
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts

from .conftest import MakeSignal

pytestmark = pytest.mark.unit


def _index(signals: list[SignalFacts]) -> LinkIndex:
    index = LinkIndex()
    for s in signals:
        index.apply(LinkInput.of(s))
    return index


def _groups(mapping: dict[str, set[str]]) -> set[frozenset[str]]:
    return {frozenset(v) for v in mapping.values()}


def test_shared_bsn_is_one_person_and_household(signal):
    a = signal("a", bsn="X", address="A1")
    b = signal("b", partner="eneco", bsn="X", address="A2")
    index = LinkIndex()
    first = index.apply(LinkInput.of(a))
    second = index.apply(LinkInput.of(b))
    assert first.change is LinkChange.NEW_HOUSEHOLD
    assert second.change is LinkChange.JOINED
    assert second.household_id == first.household_id
    assert _groups(index.persons()) == {frozenset({"a", "b"})}


def test_shared_birth_surname_without_bsn_is_one_person(signal):
    index = _index([signal("a", surname="S"), signal("b", partner="eneco", surname="S")])
    assert _groups(index.persons()) == {frozenset({"a", "b"})}


def test_chained_transitivity(signal):
    # a-b share bsn, b-c share birth_surname, c-d share birth_initials_address.
    signals = [
        signal("a", bsn="X"),
        signal("b", bsn="X", surname="S"),
        signal("c", surname="S", initials="I"),
        signal("d", initials="I"),
    ]
    index = _index(signals)
    assert _groups(index.persons()) == {frozenset("abcd")}
    assert _groups(index.households()) == {frozenset("abcd")}


def test_two_bsns_never_merged_even_via_a_bridge(signal):
    x = signal("x", bsn="X", surname="S")
    y = signal("y", bsn="Y", surname="S")
    bridge = signal("z", surname="S")  # no bsn: could belong to either
    for order in itertools.permutations([x, y, bridge]):
        index = _index(list(order))
        persons = _groups(index.persons())
        assert not any({"x", "y"} <= p for p in persons), order
        # The bridge goes to one of them, the same one in every order.
        assert persons == {frozenset({"x", "z"}), frozenset({"y"})}
        # No shared address: different households as well.
        assert len(index.households()) == 2


def test_bsn_merge_is_refused_transitively(signal):
    # x ~ p by bsn X, p ~ q by surname, q ~ y by bsn Y: X and Y must stay apart.
    signals = [
        signal("x", bsn="X"),
        signal("p", bsn="X", surname="S"),
        signal("q", surname="S", initials="I"),
        signal("y", bsn="Y", initials="I"),
    ]
    for order in itertools.permutations(signals):
        persons = _groups(_index(list(order)).persons())
        assert not any({"x", "y"} <= p for p in persons)


def test_twins_are_two_persons_one_household(signal):
    t1 = signal("t1", bsn="X", surname="S", initials="I1", address="A")
    t2 = signal("t2", partner="eneco", bsn="Y", surname="S", initials="I2", address="A")
    index = _index([t1, t2])
    assert _groups(index.persons()) == {frozenset({"t1"}), frozenset({"t2"})}
    assert _groups(index.households()) == {frozenset({"t1", "t2"})}


def test_different_people_same_address_one_household(signal):
    index = _index(
        [
            signal("a", bsn="X", surname="S1", address="A"),
            signal("b", bsn="Y", surname="S2", address="A"),
        ]
    )
    assert len(index.persons()) == 2
    assert _groups(index.households()) == {frozenset({"a", "b"})}


def test_move_keeps_household(signal):
    old = signal("old", bsn="X", address="A-old", datum=date(2026, 1, 5))
    partner_at_old = signal("partner", partner="eneco", bsn="P", address="A-old")
    moved = signal("new", partner="vitens", bsn="X", address="A-new", datum=date(2026, 3, 2))
    index = LinkIndex()
    first = index.apply(LinkInput.of(old))
    index.apply(LinkInput.of(partner_at_old))
    outcome = index.apply(LinkInput.of(moved))
    assert outcome.change is LinkChange.JOINED
    assert outcome.household_id == first.household_id
    assert _groups(index.households()) == {frozenset({"old", "partner", "new"})}


def test_bridge_merges_households_and_reports_it(signal):
    a = signal("a", bsn="X", address="A1")
    b = signal("b", bsn="Y", address="A2")
    index = _index([a, b])
    assert len(index.households()) == 2
    bridge = signal("c", bsn="X", address="A2")  # X moved in with Y
    outcome = index.apply(LinkInput.of(bridge))
    assert outcome.change is LinkChange.MERGED
    assert len(outcome.absorbed_household_ids) == 1
    assert _groups(index.households()) == {frozenset("abc")}


def test_ids_are_pseudonymous_hex(signal):
    result = link_cluster([LinkInput.of(signal("a", bsn="123456789"))])
    assignment = result["a"]
    assert "123456789" not in assignment.person_id
    assert len(assignment.household_id) == 32
    int(assignment.household_id, 16)


def test_linking_is_order_independent(signal):
    signals = [
        signal("r1", bsn="X", surname="S", address="A"),
        signal("r2", partner="eneco", surname="S", initials="I", address="A"),
        signal("r3", partner="vitens", bsn="Y", surname="S", address="A"),  # twin
        signal("r4", partner="zk", initials="I", address="B"),  # moved
        signal("r5", partner="portaal", bsn="Z", address="C"),  # unrelated
        signal("r6", partner="eneco", surname="T", address="C"),
        signal("r7", partner="wil", bsn="W", surname="S"),  # namesake elsewhere
    ]
    expected = _index(signals).assignments
    rng = random.Random(20261126)
    for _ in range(200):
        shuffled = signals[:]
        rng.shuffle(shuffled)
        assert _index(shuffled).assignments == expected


def test_revision_with_other_tokens_can_split(signal):
    index = _index([signal("a", bsn="X", address="A"), signal("b", bsn="Y", address="A")])
    assert len(index.households()) == 1
    outcome = index.apply(LinkInput.of(signal("b", bsn="Y", address="B")))  # corrected address
    assert len(index.households()) == 2
    assert "b" in outcome.changed or "a" in outcome.changed


def test_outcome_names_the_household_as_household_of_does(signal):
    # Matcher.accept takes the household from the outcome instead of searching it again.
    signals = [
        signal("r1", bsn="X", surname="S", address="A"),
        signal("r2", partner="eneco", surname="S", initials="I", address="A"),
        signal("r3", partner="vitens", bsn="Y", surname="S", address="A"),
        signal("r4", partner="zk", initials="I", address="B"),
        signal("r5", partner="portaal", bsn="Z", address="C"),
        signal("r6", partner="eneco", surname="T", address="C"),
        signal("r7", partner="wil", bsn="W", surname="S"),
        signal("r2", partner="eneco", surname="S", initials="J", address="D"),  # revised
        signal("r8", partner="wil"),  # no tokens at all
    ]
    rng = random.Random(7)
    for _ in range(50):
        shuffled = signals[:]
        rng.shuffle(shuffled)
        index = LinkIndex()
        for s in shuffled:
            outcome = index.apply(LinkInput.of(s))
            assert outcome.household == index.household_of(s.signal_ref)


def test_scope_asked_before_applying_is_the_cluster_searched_after(signal):
    # The handler asks for the scope first (for the creditor statuses) and hands it to apply.
    signals = [
        signal("r1", bsn="X", surname="S", address="A"),
        signal("r2", partner="eneco", surname="S", initials="I", address="A"),
        signal("r3", partner="vitens", bsn="Y", surname="S", address="A"),
        signal("r4", partner="zk", initials="I", address="B"),
        signal("r2", partner="eneco", surname="T", address="D"),  # revised: other tokens
        signal("r5", partner="portaal", bsn="Z", address="D"),
        signal("r6", partner="wil"),  # no tokens at all
        signal("r3", partner="vitens", bsn="Y", surname="S", address="A"),  # unchanged again
    ]
    rng = random.Random(11)
    for _ in range(50):
        shuffled = signals[:]
        rng.shuffle(shuffled)
        index, reference = LinkIndex(), LinkIndex()
        for s in shuffled:
            link = LinkInput.of(s)
            old = index.signals.get(s.signal_ref)
            scope = index.scope(s.signal_ref, s.match_tokens.items())
            assert index.apply(link, scope=scope) == reference.apply(link)
            old_tokens = old.token_set() if old else frozenset()
            assert scope == index.cluster(link.token_set() | old_tokens) | {s.signal_ref}
        assert index.assignments == reference.assignments


def test_a_copy_made_with_put_links_as_the_original(signal):
    # The service loads stored signals with put (no relinking) and goes on from there.
    signals = [
        signal("r1", bsn="X", surname="S", address="A"),
        signal("r2", partner="eneco", surname="S", initials="I", address="A"),
        signal("r3", partner="vitens", bsn="Y", address="B"),
        signal("r2", partner="eneco", surname="T", address="B"),  # revised: other tokens
    ]
    original = _index(signals[:3])
    copy = LinkIndex()
    for ref, link in original.signals.items():
        copy.put(link, original.assignments[ref])
    for s in signals[:3]:
        assert copy.cluster(LinkInput.of(s).token_set()) == original.cluster(
            LinkInput.of(s).token_set()
        )
    revised = LinkInput.of(signals[3])
    assert copy.apply(revised) == original.apply(revised)
    assert copy.assignments == original.assignments
    # put of a revision takes the old tokens out of the token index
    copy.put(LinkInput.of(signals[1]), copy.assignments["r2"])
    assert "r2" not in copy.carriers((MatchTokenKind.BIRTH_SURNAME, "T"))


def test_reach_is_the_cluster_of_the_tokens_and_of_the_held_signals(signal):
    index = _index(
        [
            signal("a", bsn="X", address="A"),
            signal("b", bsn="Y", address="A"),
            signal("c", bsn="Z", address="C"),
            signal("d", partner="wil"),  # no tokens
        ]
    )
    assert index.reach([(MatchTokenKind.BSN, "X")], []) == {"a", "b"}
    assert index.reach([], ["c"]) == {"c"}
    assert index.reach([], ["d", "unknown"]) == {"d"}  # held without tokens; unknown: not held
    # a revision of c that moves to A: its old cluster and the new one
    assert index.reach([(MatchTokenKind.ADDRESS, "A")], ["c"]) == {"a", "b", "c"}


# --- address links expire (module docstring: "Model") ----------------------------------


def test_new_tenant_two_years_later_is_another_household(signal):
    old = signal("old", bsn="X", address="A", datum=date(2024, 3, 1))
    new = signal("new", partner="eneco", bsn="Y", address="A", datum=date(2026, 3, 1))
    for order in ([old, new], [new, old]):
        index = _index(order)
        assert _groups(index.households()) == {frozenset({"old"}), frozenset({"new"})}
        assert index.assignments["new"].household_id != index.assignments["old"].household_id


def test_residents_with_signals_within_the_window_are_one_household(signal):
    a = signal("a", bsn="X", address="A", datum=date(2026, 1, 5))
    b = signal("b", partner="eneco", bsn="Y", address="A", datum=date(2026, 9, 30))
    index = LinkIndex()
    index.apply(LinkInput.of(a))
    outcome = index.apply(LinkInput.of(b))
    assert outcome.change is LinkChange.JOINED
    assert _groups(index.persons()) == {frozenset({"a"}), frozenset({"b"})}
    assert _groups(index.households()) == {frozenset({"a", "b"})}


@pytest.mark.parametrize(
    ("window_days", "gap_days", "one_household"),
    [
        (365, 364, True),
        (365, 365, True),  # inclusive: exactly the window apart still links
        (365, 366, False),
        (30, 30, True),
        (30, 31, False),
        (1, 0, True),  # the same day
    ],
)
def test_window_boundary(signal, window_days, gap_days, one_household):
    start = date(2026, 1, 5)
    a = signal("a", bsn="X", address="A", datum=start)
    b = signal("b", bsn="Y", address="A", datum=start + timedelta(days=gap_days))
    window = timedelta(days=window_days)
    households = {
        a.household_id
        for a in link_cluster([LinkInput.of(a), LinkInput.of(b)], address_window=window).values()
    }
    assert (len(households) == 1) is one_household
    index = LinkIndex(address_window=window)
    for s in (b, a):
        index.apply(LinkInput.of(s))
    assert (len(index.households()) == 1) is one_household


def test_window_boundary_across_a_leap_day(signal):
    # 2028 is a leap year: 1 Feb 2028 -> 1 Feb 2029 is 366 days, one day too many.
    a = signal("a", bsn="X", address="A", datum=date(2028, 2, 1))
    b = signal("b", bsn="Y", address="A", datum=date(2029, 2, 1))
    c = signal("c", bsn="Z", address="A", datum=date(2029, 1, 31))
    assert len(_index([a, b]).households()) == 2
    assert len(_index([a, c]).households()) == 1


def test_mover_keeps_person_and_household_and_the_old_address_expires(signal):
    at_old = signal("x-old", bsn="X", address="A-old", datum=date(2024, 1, 8))
    partner_at_old = signal(
        "p-old", partner="eneco", bsn="P", address="A-old", datum=date(2024, 2, 1)
    )
    # Two years later at the new address: the bsn still makes X one person.
    at_new = signal("x-new", partner="vitens", bsn="X", address="A-new", datum=date(2026, 1, 12))
    roommate = signal("r-new", partner="zk", bsn="R", address="A-new", datum=date(2026, 4, 1))
    next_tenant = signal(
        "n-old", partner="portaal", bsn="N", address="A-old", datum=date(2026, 2, 2)
    )
    signals = [at_old, partner_at_old, at_new, roommate, next_tenant]
    for order in itertools.permutations(signals):
        index = _index(list(order))
        persons = _groups(index.persons())
        assert frozenset({"x-old", "x-new"}) in persons
        assert _groups(index.households()) == {
            frozenset({"x-old", "p-old", "x-new", "r-new"}),  # the household follows X
            frozenset({"n-old"}),  # who lives at the old address now is not in it
        }


def test_a_resident_links_co_residents_signalled_within_the_window_of_one_of_theirs(signal):
    # R stays at A and is signalled in 2024 and 2025; S is signalled in 2026: within the
    # window of R's 2025 signal (not of the 2024 one), so S is in R's household.
    r1 = signal("r1", bsn="R", address="A", datum=date(2024, 1, 8))
    r2 = signal("r2", partner="eneco", bsn="R", address="A", datum=date(2025, 6, 2))
    s = signal("s", partner="vitens", bsn="S", address="A", datum=date(2026, 5, 4))
    assert _groups(_index([s, r1, r2]).households()) == {frozenset({"r1", "r2", "s"})}
    # Without R's 2025 signal nothing vouches for them living there together.
    assert len(_index([s, r1]).households()) == 2
    # Pairs, not intervals: R signalled in 2024 and 2027 does not link T signalled in 2025-2026
    # (each of T's signals is more than the window from each of R's).
    r3 = signal("r3", bsn="R", address="A", datum=date(2027, 7, 5))
    t = signal("t", partner="zk", bsn="T", address="A", datum=date(2025, 10, 6))
    assert _groups(_index([r1, r3, t]).households()) == {frozenset({"r1", "r3"}), frozenset({"t"})}


def test_a_revised_date_can_expire_a_link(signal):
    index = _index(
        [
            signal("a", bsn="X", address="A", datum=date(2026, 1, 5)),
            signal("b", bsn="Y", address="A", datum=date(2026, 2, 5)),
        ]
    )
    assert len(index.households()) == 1
    outcome = index.apply(LinkInput.of(signal("b", bsn="Y", address="A", datum=date(2028, 2, 5))))
    assert len(index.households()) == 2
    assert {"b"} <= outcome.household and "a" not in outcome.household
    assert index.assignments["a"].household_id != index.assignments["b"].household_id


def _households_by_all_pairs(signals: list[SignalFacts], window: timedelta) -> set[frozenset[str]]:
    """The rule as written (module docstring), the slow way: persons as link_cluster finds
    them; two persons linked when ANY signal of one and ANY of the other at one address are
    at most the window apart; households the transitive closure."""
    person_of = {ref: a.person_id for ref, a in link_cluster(map(LinkInput.of, signals)).items()}
    group = {p: {p} for p in person_of.values()}
    for s, t in itertools.combinations(signals, 2):
        address = s.match_tokens.get(MatchTokenKind.ADDRESS)
        if address is None or address != t.match_tokens.get(MatchTokenKind.ADDRESS):
            continue
        if abs(s.datum - t.datum) <= window:
            merged = group[person_of[s.signal_ref]] | group[person_of[t.signal_ref]]
            for p in merged:
                group[p] = merged
    return {
        frozenset(ref for ref, p in person_of.items() if p in members)
        for members in map(frozenset, group.values())
    }


def _random_signals(rng: random.Random, signal: MakeSignal, n: int) -> list[SignalFacts]:
    # Few persons and addresses over four years: persons move, share addresses, return.
    out = []
    for i in range(n):
        person = rng.randrange(8)
        out.append(
            signal(
                f"s{i:02d}",
                datum=date(2024, 1, 1) + timedelta(days=rng.randrange(4 * 365)),
                bsn=f"b{person}" if rng.random() < 0.6 else None,
                surname=f"n{person}" if rng.random() < 0.7 else None,
                address=f"a{rng.randrange(4)}" if rng.random() < 0.9 else None,
            )
        )
    return out


@pytest.mark.parametrize("window_days", [30, 365, 700])
def test_consecutive_carriers_give_the_closure_of_all_pairs(signal, window_days):
    window = timedelta(days=window_days)
    rng = random.Random(window_days)
    for _ in range(200):
        signals = _random_signals(rng, signal, rng.randrange(2, 16))
        households: dict[str, set[str]] = {}
        for ref, a in link_cluster(map(LinkInput.of, signals), address_window=window).items():
            households.setdefault(a.household_id, set()).add(ref)
        assert _groups(households) == _households_by_all_pairs(signals, window)


def test_expiring_links_are_order_independent(signal):
    rng = random.Random(20261201)
    expired = 0
    for _ in range(40):
        signals = _random_signals(rng, signal, 12)
        expected = link_cluster(map(LinkInput.of, signals))
        forever = link_cluster(map(LinkInput.of, signals), address_window=timedelta.max)
        expired += len({a.household_id for a in expected.values()}) > len(
            {a.household_id for a in forever.values()}
        )
        for _ in range(10):
            shuffled = signals[:]
            rng.shuffle(shuffled)
            index = _index(shuffled)
            # Incremental (one cluster at a time, in arrival order) = the whole set at once.
            assert index.assignments == expected
    assert expired > 10  # the scenarios do exercise expired links


def test_default_window_is_a_year():
    assert DEFAULT_ADDRESS_WINDOW == timedelta(days=365)
    assert LinkIndex().address_window == DEFAULT_ADDRESS_WINDOW
