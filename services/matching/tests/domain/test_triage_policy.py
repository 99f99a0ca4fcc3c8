from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.events import OutreachKind, Urgency
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.triage import (
    PolicyError,
    TriageInput,
    TriagePolicy,
    add_working_days,
    triage,
)
from eropaf_matching.policy import load_policy

pytestmark = pytest.mark.unit

MONDAY = date(2026, 1, 5)


def _facts(*signals, repeats=(), herhaling=False):
    return TriageInput(tuple(signals), frozenset(repeats), herhaling)


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _doc(**changes):
    doc = {"region": "Lekstroom", "defaults": {}, "gemeenten": {}}
    doc.update(changes)
    return doc


def test_packaged_policy_loads_with_overrides(policy):
    assert set(policy.gemeenten) == {"0321", "0353", "0331", "0356", "1961"}
    assert policy.for_gemeente("0321").minimum_bedrag == 75
    assert policy.for_gemeente("1961").minimum_bedrag == 100
    assert policy.for_gemeente("0331").huisbezoek.huurachterstand.min_bedrag == 750
    # Overrides touch only what they name.
    assert policy.for_gemeente("0331").huisbezoek.crisis.enabled
    assert policy.for_gemeente("0356").termijnen.crisis == 3
    with pytest.raises(KeyError, match="9999"):
        policy.for_gemeente("9999")


def test_not_picked_up_wait_has_a_default_and_per_municipality_overrides(tmp_path, region):
    doc = _doc(
        defaults={"niet_opgepakt_sluiten_na_dagen": 60},
        gemeenten={"0331": {"niet_opgepakt_sluiten_na_dagen": 30}},
    )
    policy = load_policy(_write(tmp_path, doc), region=region)
    assert policy.for_gemeente("0331").niet_opgepakt_sluiten_na_dagen == 30
    assert policy.for_gemeente("0356").niet_opgepakt_sluiten_na_dagen == 60
    assert TriagePolicy().niet_opgepakt_sluiten_na_dagen == 90


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(gemeenten={"0344": {}}), r"gemeenten\.0344: unknown municipality"),
        (
            _doc(defaults={"huisbezoek": {"maanstand": {}}}),
            r"unknown huisbezoek rule\(s\) \['maanstand'\]",
        ),
        (
            _doc(gemeenten={"0356": {"telefoon": {"sms": {}}}}),
            r"gemeenten\.0356\.telefoon: unknown telefoon rule",
        ),
        (_doc(defaults={"minimum_bedrag": -5}), r"defaults\.minimum_bedrag"),
        (_doc(defaults={"termijnen": {"crisis": 12, "normaal": 10}}), r"crisis <= hoog <= normaal"),
        (
            _doc(gemeenten={"0321": {"minimum_bedrag": 2000}}),
            r"gemeenten\.0321: .*below minimum_bedrag",
        ),
        (_doc(defaults={"minimum": 75}), r"defaults\.minimum: Extra inputs"),
        (_doc(region="Utrecht"), r"region: policy is for 'Utrecht'"),
        (_doc(feestdagen=["kerst"]), r"feestdagen: 'kerst' is not a date"),
        (
            _doc(gemeenten={"0331": {"niet_opgepakt_sluiten_na_dagen": 0}}),
            r"gemeenten\.0331\.niet_opgepakt_sluiten_na_dagen",
        ),
        (_doc(adreskoppeling_dagen=0), r"adreskoppeling_dagen: expected a whole number"),
        (_doc(adreskoppeling_dagen="1 jaar"), r"adreskoppeling_dagen: expected a whole number"),
        (_doc(adreskoppeling_dagen=True), r"adreskoppeling_dagen: expected a whole number"),
    ],
)
def test_policy_validation_errors(tmp_path, region, doc, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, doc), region=region)


def test_address_window_is_region_policy_data(tmp_path, policy, region, signal):
    assert policy.adreskoppeling_dagen == 365
    assert policy.address_window == timedelta(days=365)
    assert load_policy(_write(tmp_path, _doc()), region=region).adreskoppeling_dagen == 365
    tuned = load_policy(_write(tmp_path, _doc(adreskoppeling_dagen=180)), region=region)
    assert tuned.address_window == timedelta(days=180)
    # The matcher links with the policy's window.
    a = signal("a", bsn="X", address="A", datum=date(2026, 1, 5))
    b = signal("b", bsn="Y", address="A", datum=date(2026, 9, 1))  # 239 days later
    for rules, cases in ((policy, 1), (tuned, 2)):
        matcher = Matcher(rules, region)
        assert matcher.links.address_window == rules.address_window
        matcher.accept(a)
        matcher.accept(b)
        assert len(matcher.cases) == cases


def test_working_days_skip_weekends_and_holidays():
    assert add_working_days(MONDAY, 3) == date(2026, 1, 8)
    assert add_working_days(date(2026, 1, 9), 3) == date(2026, 1, 14)  # Friday + 3
    assert add_working_days(
        date(2025, 12, 23), 3, {date(2025, 12, 25), date(2025, 12, 26)}
    ) == date(2025, 12, 30)


def test_crisis_is_home_visit_within_three_working_days(signal):
    energie = signal("e", partner="eneco", type=Signaalpartner.ENERGIE, bedrag=200, crisis=True)
    decision = triage(TriagePolicy(), _facts(energie), start=MONDAY)
    assert decision.outreach is OutreachKind.HOME_VISIT
    assert decision.urgency is Urgency.CRISIS
    assert decision.deadline == date(2026, 1, 8)
    assert decision.rule_ids == (
        "huisbezoek.crisis",
        "huisbezoek.einde_levering",
        "urgentie.crisis",
    )


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"bedrag": 1500}, "huisbezoek.huurachterstand"),
        ({"bedrag": 100, "warm": True}, "huisbezoek.warme_overdracht"),
    ],
)
def test_home_visit_rules(signal, kwargs, rule):
    decision = triage(TriagePolicy(), _facts(signal("h", **kwargs)), start=MONDAY)
    assert decision.outreach is OutreachKind.HOME_VISIT
    assert rule in decision.rule_ids
    assert decision.deadline == date(2026, 1, 12)


def test_phone_letter_and_minimum(signal):
    policy = TriagePolicy()
    phone = triage(policy, _facts(signal("a", bedrag=300)), start=MONDAY)
    assert (phone.outreach, phone.rule_ids) == (
        OutreachKind.PHONE,
        ("telefoon.bedrag", "urgentie.normal"),
    )
    assert phone.deadline == date(2026, 1, 19)  # 10 working days
    letter = triage(policy, _facts(signal("a", bedrag=100)), start=MONDAY)
    assert letter.outreach is OutreachKind.LETTER
    below = triage(policy, _facts(signal("a", bedrag=74)), start=MONDAY)
    assert not below.picked_up and below.outreach is None
    assert below.rule_ids == ("niet_opgepakt.onder_minimum",)


def test_disabled_rule_does_not_fire(signal):
    policy = TriagePolicy.model_validate({"huisbezoek": {"crisis": {"enabled": False}}})
    decision = triage(policy, _facts(signal("a", bedrag=100, crisis=True)), start=MONDAY)
    assert "huisbezoek.crisis" not in decision.rule_ids
    assert decision.outreach is OutreachKind.LETTER
    assert decision.urgency is Urgency.CRISIS  # the flag still sets the deadline


def test_priority_orders_crisis_and_creditors_first(signal):
    policy = TriagePolicy()
    crisis = triage(policy, _facts(signal("a", bedrag=100, crisis=True)), start=MONDAY)
    many = triage(
        policy,
        _facts(signal("a", bedrag=300), signal("b", partner="eneco", bedrag=300)),
        start=MONDAY,
    )
    one = triage(policy, _facts(signal("a", bedrag=300)), start=MONDAY)
    assert crisis.priority > many.priority > one.priority
