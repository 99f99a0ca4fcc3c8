from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pytest

from eropaf_contracts.ddas import (
    Contactsoort,
    Dagdeel,
    Eindresultaat,
    Signaalpartner,
    Signaalstatus,
)
from eropaf_contracts.events import OutreachKind, Urgency
from eropaf_matching.domain.cases import (
    CaseState,
    ContactAttempt,
    IllegalTransition,
    PlacementKind,
    UnknownSignal,
    close_case,
    close_not_picked_up,
    herhaalde_meldingen,
    not_picked_up_cutoff,
    not_picked_up_due,
    record_contact_attempt,
)
from eropaf_matching.domain.matcher import Matcher

pytestmark = pytest.mark.unit

D = date(2026, 1, 5)  # a Monday


def _household(signal):
    return [
        signal(
            "huur", partner="mitros", type=Signaalpartner.HUUR, bedrag=900, bsn="X", address="A"
        ),
        signal(
            "energie",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            surname="S",
            initials="I",
            address="A",
            datum=date(2026, 1, 7),
        ),
        signal(
            "zorg",
            partner="zilveren-kruis",
            type=Signaalpartner.ZORG,
            bedrag=400,
            bsn="X",
            surname="S",
            datum=date(2026, 1, 9),
        ),
    ]


def test_rent_energy_insurer_become_one_case_with_home_visit(signal, policy, region):
    matcher = Matcher(policy, region)
    outcomes = [matcher.accept(s) for s in _household(signal)]
    assert outcomes[0].placement is not None
    assert outcomes[0].placement.kind is PlacementKind.OPENED
    assert [o.placement.kind for o in outcomes[1:] if o.placement] == [PlacementKind.JOINED] * 2
    assert len(matcher.cases) == 1
    case = outcomes[-1].case
    assert set(case.signals) == {"huur", "energie", "zorg"}
    decision = case.decision
    assert decision is not None and decision.picked_up
    assert decision.outreach is OutreachKind.HOME_VISIT
    assert "huisbezoek.meerdere_schuldeisers" in decision.rule_ids
    assert decision.urgency is Urgency.HIGH
    assert decision.deadline == date(2026, 1, 12)  # 5 working days after Mon 5 Jan
    assert case.routing is not None
    assert case.routing.gemeentecode == "0356"
    assert case.routing.teams == ("mitros", "wil")
    assert case.opgepakt_on == D
    assert all(case.signal_status(ref) is None for ref in case.signals)  # picked up


def test_first_signal_alone_gets_a_phone_call_then_escalates(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("huur", bedrag=900, bsn="X", address="A"))
    assert first.case.decision is not None
    assert first.case.decision.outreach is OutreachKind.PHONE
    assert first.evaluation is not None and first.evaluation.new_outreach
    second = matcher.accept(
        signal("e", partner="eneco", type=Signaalpartner.ENERGIE, bsn="X", datum=date(2026, 1, 6))
    )
    assert second.evaluation is not None
    assert second.evaluation.decision_changed and not second.evaluation.new_outreach
    assert second.case.decision is not None
    assert second.case.decision.outreach is OutreachKind.HOME_VISIT


def test_repeat_signal_is_not_picked_up_and_triggers_no_new_outreach(signal, policy, region):
    matcher = Matcher(policy, region)
    matcher.accept(signal("r1", bedrag=500, bsn="X", datum=date(2026, 1, 5)))
    repeat = matcher.accept(signal("r2", bedrag=500, bsn="X", datum=date(2026, 2, 5)))
    case = repeat.case
    assert case.signal_status("r2") is Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING
    assert case.signal_status("r1") is None
    assert repeat.evaluation is not None
    assert not repeat.evaluation.new_outreach and not repeat.evaluation.decision_changed


def test_grown_arrears_or_after_window_is_not_a_repeat(signal):
    base = signal("a", bedrag=500, datum=date(2026, 1, 5))
    grown = signal("b", bedrag=800, datum=date(2026, 2, 5))
    late = signal("c", bedrag=500, datum=date(2026, 6, 1))
    other_partner = signal("d", partner="portaal", bedrag=100, datum=date(2026, 1, 6))
    assert herhaalde_meldingen([base, grown, late, other_partner], {}, 90) == frozenset()
    same = signal("e", bedrag=400, datum=date(2026, 3, 1))
    assert herhaalde_meldingen([same, base], {}, 90) == {"e"}
    # Resolved, then fallen behind again: new arrears.
    assert herhaalde_meldingen([same, base], {"a": date(2026, 2, 1)}, 90) == frozenset()


def test_grown_arrears_from_same_partner_escalate_to_home_visit(signal, policy, region):
    matcher = Matcher(policy, region)
    matcher.accept(signal("r1", bedrag=300, bsn="X"))
    grown = matcher.accept(signal("r2", bedrag=600, bsn="X", datum=date(2026, 2, 5)))
    assert grown.case.decision is not None
    assert "huisbezoek.herhaling" in grown.case.decision.rule_ids


def test_repeat_after_closed_case_is_not_picked_up(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("r1", bedrag=500, bsn="X"))
    cid = first.case.case_id
    matcher.plan(cid, D)
    matcher.record_attempt(
        cid, ContactAttempt(Contactsoort.TELEFOON, True, date(2026, 1, 8), Dagdeel.MIDDAG)
    )
    matcher.close(cid, Eindresultaat.BUDGETADVIES_OF_QUICK_FIX, date(2026, 1, 20))
    again = matcher.accept(signal("r2", bedrag=500, bsn="X", datum=date(2026, 2, 5)))
    assert again.placement is not None and again.placement.kind is PlacementKind.OPENED
    case = again.case
    assert case.decision is not None and not case.decision.picked_up
    assert case.decision.rule_ids == ("niet_opgepakt.herhaalde_melding",)
    closed = close_not_picked_up(case, date(2026, 5, 6))
    assert closed.resultaat is Eindresultaat.NIET_OPGEPAKT_HERHAALDE_MELDING


def test_below_minimum_is_not_picked_up(signal, policy, region):
    matcher = Matcher(policy, region)
    small = matcher.accept(signal("s", bedrag=60, bsn="X"))
    assert small.case.decision is not None
    assert small.case.decision.rule_ids == ("niet_opgepakt.onder_minimum",)
    assert small.case.signal_status("s") is Signaalstatus.NOG_NIET_OPGEPAKT
    # A further signal tips the balance: the case is picked up after all.
    more = matcher.accept(
        signal("t", partner="eneco", type=Signaalpartner.ENERGIE, bedrag=60, bsn="X")
    )
    assert more.case.decision is not None and more.case.decision.picked_up
    closed = close_not_picked_up(small.case, date(2026, 2, 1))
    assert closed.resultaat is Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN
    assert closed.signal_status("s") is Signaalstatus.NIET_OPGEPAKT_ANDERE_REDEN


def test_resolution_before_contact_closes_as_self_paid(signal, policy, region):
    matcher = Matcher(policy, region)
    for s in _household(signal)[:2]:
        matcher.accept(s)
    case = matcher.case_of("huur")
    matcher.plan(case.case_id, D)
    matcher.record_attempt(
        case.case_id,
        ContactAttempt(Contactsoort.HUISBEZOEK, False, date(2026, 1, 8), Dagdeel.OCHTEND),
    )
    assert matcher.resolve("huur", date(2026, 1, 9)).state is CaseState.OUTREACH_PLANNED
    closed = matcher.resolve("energie", date(2026, 1, 10))
    assert closed.state is CaseState.CLOSED
    assert closed.resultaat is Eindresultaat.ZELF_BETAALD_OF_REGELING
    assert closed.closed_on == date(2026, 1, 10)
    assert len(closed.contactpogingen) == 1


def test_resolution_after_contact_does_not_close(signal, policy, region):
    matcher = Matcher(policy, region)
    case = matcher.accept(signal("a", bsn="X")).case
    matcher.record_attempt(
        case.case_id, ContactAttempt(Contactsoort.HUISBEZOEK, True, date(2026, 1, 8))
    )
    resolved = matcher.resolve("a", date(2026, 1, 9))
    assert resolved.state is CaseState.CONTACTED
    assert resolved.resultaat is None


def test_illegal_transitions_have_clear_errors(signal, policy, region):
    matcher = Matcher(policy, region)
    case = matcher.accept(signal("a", bsn="X")).case
    with pytest.raises(IllegalTransition, match="needs a contact attempt"):
        close_case(case, Eindresultaat.VERVOLGHULP_FINANCIEEL, D)
    with pytest.raises(IllegalTransition, match="predates"):
        record_contact_attempt(case, ContactAttempt(Contactsoort.BRIEF, False, date(2025, 12, 1)))
    with pytest.raises(UnknownSignal):
        matcher.resolve("nope", D)
    contacted = record_contact_attempt(case, ContactAttempt(Contactsoort.TELEFOON, True, D))
    with pytest.raises(IllegalTransition, match="contradicts"):
        close_case(contacted, Eindresultaat.DEFINITIEF_GEEN_CONTACT, D)
    closed = close_case(contacted, Eindresultaat.VERVOLGHULP_FINANCIEEL, D)
    with pytest.raises(IllegalTransition, match="is closed"):
        record_contact_attempt(closed, ContactAttempt(Contactsoort.TELEFOON, True, D))
    with pytest.raises(IllegalTransition, match="is closed"):
        close_case(closed, Eindresultaat.GEEN_HULP_NODIG, D)


def test_new_signal_after_close_opens_new_case(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("a", bsn="X", bedrag=500)).case
    matcher.record_attempt(first.case_id, ContactAttempt(Contactsoort.TELEFOON, True, D))
    matcher.close(first.case_id, Eindresultaat.GEEN_HULP_NODIG, D)
    second = matcher.accept(
        signal("b", partner="eneco", type=Signaalpartner.ENERGIE, bsn="X", datum=date(2026, 3, 2))
    )
    assert second.case.case_id != first.case_id
    assert len(matcher.cases) == 2


def test_moved_household_keeps_open_case_and_is_rerouted(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("a", bsn="X", address="A", pc4="3431")).case
    moved = matcher.accept(
        signal(
            "b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="X",
            address="B",
            pc4="3991",
            datum=date(2026, 2, 2),
        )
    )
    assert moved.placement is not None and moved.placement.kind is PlacementKind.JOINED
    assert moved.case.case_id == first.case_id
    assert moved.case.routing is not None and moved.case.routing.gemeentecode == "0321"


def test_bridge_merges_open_cases(signal, policy, region):
    matcher = Matcher(policy, region)
    matcher.accept(signal("a", bsn="X", address="A1"))
    matcher.accept(
        signal(
            "b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="Y",
            address="A2",
            datum=date(2026, 1, 6),
        )
    )
    assert len(matcher.cases) == 2
    bridged = matcher.accept(
        signal(
            "c",
            partner="vitens",
            type=Signaalpartner.WATER,
            bsn="X",
            address="A2",
            datum=date(2026, 1, 7),
        )
    )
    assert bridged.placement is not None and bridged.placement.kind is PlacementKind.MERGED
    assert len(bridged.placement.absorbed_case_ids) == 1
    assert matcher.case_partition() == {bridged.case.case_id: frozenset("abc")}


def _replay(signals, policy, region):
    matcher = Matcher(policy, region)
    for s in signals:
        matcher.accept(s)
    cases = {
        cid: (
            frozenset(c.signals),
            c.household_id,
            c.decision.outreach if c.decision else None,
            c.decision.rule_ids if c.decision else None,
            tuple(sorted((r, c.signal_status(r)) for r in c.signals)),
        )
        for cid, c in matcher.cases.items()
    }
    return cases, matcher.links.assignments


def test_case_assignment_is_order_independent(signal, policy, region):
    signals = [
        *_household(signal),
        signal(
            "twin",
            partner="vitens",
            type=Signaalpartner.WATER,
            bsn="Y",
            surname="S",
            address="A",
            datum=date(2026, 1, 8),
        ),
        signal("rep", partner="mitros", bedrag=900, bsn="X", datum=date(2026, 2, 2)),
        signal("other", partner="portaal", bsn="Z", address="C", pc4="3401"),
        signal(
            "other2",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            surname="T",
            address="C",
            pc4="3401",
            crisis=True,
        ),
    ]
    expected = _replay(signals, policy, region)
    assert len(expected[0]) == 2
    for order in itertools.islice(itertools.permutations(signals), 0, None, 97):
        assert _replay(list(order), policy, region) == expected
    rng = random.Random(7)
    for _ in range(50):
        shuffled = signals[:]
        rng.shuffle(shuffled)
        assert _replay(shuffled, policy, region) == expected


def test_twin_joins_the_household_case_as_another_person(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("t1", bsn="X", surname="S", initials="I1", address="A"))
    twin = matcher.accept(
        signal(
            "t2",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="Y",
            surname="S",
            initials="I2",
            address="A",
            datum=date(2026, 1, 6),
        )
    )
    assert twin.link.person_id != first.link.person_id
    assert twin.case.case_id == first.case.case_id


def test_revision_updates_the_case_and_retriages(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("a", bedrag=300, bsn="X"))
    assert first.case.decision is not None
    assert first.case.decision.outreach is OutreachKind.PHONE
    revised = matcher.accept(signal("a", bedrag=300, bsn="X", crisis=True))
    assert revised.placement is not None and revised.placement.kind is PlacementKind.UPDATED
    assert revised.case.decision is not None
    assert revised.case.decision.urgency is Urgency.CRISIS
    assert revised.case.decision.deadline == date(2026, 1, 8)
    assert len(matcher.cases) == 1


def test_evolve_is_replace_and_forgets_computed_values(signal):
    from dataclasses import replace

    from eropaf_matching.domain.cases import Case, _evolve

    a, b = signal("a", bedrag=900), signal("b", partner="eneco", bedrag=300, datum=D)
    case = Case(case_id="c", household_id="h", opened_on=D, signals={"a": a})
    assert case.open_signals == (a,)  # computed and kept on the instance
    signals, resolved_on = {"a": a, "b": b}, {"a": D}
    evolved = _evolve(case, signals=signals, resolved_on=resolved_on)
    assert evolved == replace(case, signals=signals, resolved_on=resolved_on)
    assert evolved.open_signals == (b,)
    assert case.open_signals == (a,)
    with pytest.raises(TypeError):
        _evolve(case, colour="red")
    # Other changes keep what was computed from the signals (it still holds).
    decided = _evolve(evolved, opgepakt_on=D)
    assert decided.__dict__["open_signals"] == (b,)
    assert decided == replace(evolved, opgepakt_on=D)


def test_an_earlier_dated_signal_names_the_id_it_replaced(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("late", bsn="X", datum=date(2026, 1, 20)))
    assert first.placement is not None and first.placement.previous_case_ids == ()
    early = matcher.accept(signal("early", partner="eneco", bsn="X", datum=D))
    assert early.placement is not None and early.placement.kind is PlacementKind.JOINED
    assert early.case.case_id != first.case.case_id
    assert early.placement.previous_case_ids == (first.case.case_id,)
    # A later-dated signal keeps the id: nothing to re-key.
    later = matcher.accept(signal("later", partner="vitens", bsn="X", datum=date(2026, 2, 1)))
    assert later.placement is not None and later.placement.previous_case_ids == ()


def test_a_merge_names_every_case_it_replaced(signal, policy, region):
    matcher = Matcher(policy, region)
    a = matcher.accept(signal("a", bsn="X", address="A1", datum=date(2026, 1, 10)))
    b = matcher.accept(signal("b", partner="eneco", bsn="Y", address="A2", datum=date(2026, 1, 12)))
    # The bridge is dated before both: the survivor is renamed as well as merged.
    bridged = matcher.accept(signal("c", partner="vitens", bsn="X", address="A2", datum=D))
    assert bridged.placement is not None and bridged.placement.kind is PlacementKind.MERGED
    assert bridged.placement.previous_case_ids == tuple(sorted((a.case.case_id, b.case.case_id)))
    assert bridged.case.case_id not in bridged.placement.previous_case_ids


def _not_picked_up_cases(signal, policy, region):
    """A case below the minimum in Nieuwegein, one picked up, one in Lopik below minimum."""
    matcher = Matcher(policy, region)
    small = matcher.accept(signal("small", bedrag=20, bsn="X")).case
    big = matcher.accept(signal("big", bedrag=2000, bsn="Y")).case
    lopik = matcher.accept(signal("lopik", bedrag=20, bsn="Z", pc4="3411")).case
    assert small.opgepakt_on is None and big.opgepakt_on is not None
    return small, big, lopik


def test_sweep_takes_open_cases_never_picked_up_once_their_wait_is_over(signal, policy, region):
    small, big, _ = _not_picked_up_cases(signal, policy, region)
    wait = policy.for_gemeente("0356").niet_opgepakt_sluiten_na_dagen
    day_before = small.opened_on + timedelta(days=wait - 1)
    assert not_picked_up_due([small, big], policy, day_before) == []
    due_on = small.opened_on + timedelta(days=wait)
    assert not_picked_up_due([big, small], policy, due_on) == [small]
    assert not_picked_up_due([small], policy, due_on + timedelta(days=400)) == [small]
    assert not_picked_up_cutoff(policy, due_on) <= small.opened_on
    closed = close_not_picked_up(small, due_on)
    assert closed.closed_on == due_on
    assert closed.resultaat is Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN
    # Closed is final: a second sweep finds nothing to do.
    assert not_picked_up_due([closed, big], policy, due_on + timedelta(days=1)) == []


def test_sweep_waits_as_long_as_each_municipality_says(signal, policy, region):
    small, _, lopik = _not_picked_up_cases(signal, policy, region)
    assert lopik.gemeentecode != small.gemeentecode
    shorter = policy.model_copy(
        update={
            "gemeenten": {
                **policy.gemeenten,
                lopik.gemeentecode: policy.for_gemeente(lopik.gemeentecode).model_copy(
                    update={"niet_opgepakt_sluiten_na_dagen": 10}
                ),
            }
        }
    )
    on = D + timedelta(days=10)
    assert not_picked_up_due([small, lopik], shorter, on) == [lopik]
    assert not_picked_up_cutoff(shorter, on) == D


# --- address links expire (domain.linking) -----------------------------------------------


def test_new_tenant_at_the_address_two_years_later_gets_a_case_of_their_own(signal, policy, region):
    matcher = Matcher(policy, region)
    old = matcher.accept(signal("old", bsn="X", address="A", bedrag=900, datum=date(2024, 1, 8)))
    matcher.record_attempt(
        old.case.case_id, ContactAttempt(Contactsoort.TELEFOON, True, date(2024, 1, 10))
    )
    matcher.close(old.case.case_id, Eindresultaat.GEEN_HULP_NODIG, date(2024, 1, 10))
    new = matcher.accept(
        signal(
            "new",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="Y",
            address="A",
            bedrag=300,
            datum=date(2026, 1, 12),
        )
    )
    assert new.placement is not None and new.placement.kind is PlacementKind.OPENED
    assert new.case.case_id != old.case.case_id
    assert new.case.household_id != old.case.household_id
    assert set(new.case.signals) == {"new"}
    # The former tenant's closed case is not the new tenant's history.
    assert new.case.decision is not None
    assert "huisbezoek.herhaling" not in new.case.decision.rule_ids


def test_two_residents_signalled_within_the_window_share_one_case(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("a", bsn="X", address="A", datum=date(2026, 1, 5)))
    second = matcher.accept(
        signal(
            "b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="Y",
            address="A",
            datum=date(2026, 11, 2),
        )
    )
    assert second.placement is not None and second.placement.kind is PlacementKind.JOINED
    assert second.case.case_id == first.case.case_id
    assert set(second.case.signals) == {"a", "b"}


def test_mover_keeps_the_open_case_beyond_the_window(signal, policy, region):
    matcher = Matcher(policy, region)
    first = matcher.accept(signal("a", bsn="X", address="A", pc4="3431", datum=date(2025, 1, 6)))
    moved = matcher.accept(
        signal(
            "b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="X",
            address="B",
            pc4="3991",
            datum=date(2026, 6, 1),
        )
    )
    assert moved.placement is not None and moved.placement.kind is PlacementKind.JOINED
    assert moved.case.case_id == first.case.case_id
    assert moved.link.person_id == first.link.person_id
    # Who moved into A afterwards is not in it.
    successor = matcher.accept(
        signal(
            "c",
            partner="vitens",
            type=Signaalpartner.WATER,
            bsn="Z",
            address="A",
            datum=date(2026, 6, 1),
        )
    )
    assert successor.case.case_id != first.case.case_id
    assert matcher.case_partition() == {
        first.case.case_id: frozenset("ab"),
        successor.case.case_id: frozenset("c"),
    }


def test_case_assignment_with_expired_address_links_is_order_independent(signal, policy, region):
    # P and R were signalled at A 18 months apart; Q's signal in between is within the window
    # of both, so all three are one household in the end, whatever the order; S came to A
    # later still (more than the window after R).
    signals = [
        signal("p", bsn="P", address="A", datum=date(2024, 1, 8)),
        signal(
            "r",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bsn="R",
            address="A",
            datum=date(2025, 7, 7),
        ),
        signal(
            "q",
            partner="vitens",
            type=Signaalpartner.WATER,
            bsn="Q",
            address="A",
            datum=date(2024, 10, 7),
        ),
        signal("s", partner="portaal", bsn="S", address="A", datum=date(2026, 9, 7)),
        signal(
            "p2",
            partner="zilveren-kruis",
            type=Signaalpartner.ZORG,
            bsn="P",
            address="B",
            datum=date(2026, 9, 14),
        ),
    ]
    expected = _replay(signals, policy, region)
    assert {frozenset(v[0]) for v in expected[0].values()} == {
        frozenset({"p", "q", "r", "p2"}),
        frozenset({"s"}),
    }
    for order in itertools.permutations(signals):
        assert _replay(list(order), policy, region) == expected
