from __future__ import annotations

import itertools
import random
from datetime import date

import pytest

from eropaf_matching.domain.linking import LinkChange, LinkIndex, LinkInput, link_cluster
from eropaf_matching.domain.signals import SignalFacts

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
