"""The month generator: realistic, in the region, and deterministic for a seed."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from eropaf_contracts.region import load_region
from eropaf_demo.simulate import (
    HTTP_PARTNER,
    BadKind,
    Month,
    csv_text,
    is_valid_bsn,
    simulate_month,
    write_files,
)
from eropaf_intake.domain.csv_rows import parse_csv
from eropaf_intake.domain.validation import PartnerPolicy, Rejected, ValidSignal, validate_signal

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 3)


@pytest.fixture(scope="module")
def month() -> Month:
    return simulate_month(seed=11, signals=700, today=TODAY)


def test_is_valid_bsn_applies_the_11_test() -> None:
    assert is_valid_bsn("111222333")
    assert is_valid_bsn("123456782")
    assert not is_valid_bsn("123456789")
    assert not is_valid_bsn("12345678")
    assert not is_valid_bsn("000000000")


def test_same_seed_same_month_other_seed_other_month() -> None:
    a = simulate_month(seed=5, signals=120, today=TODAY)
    b = simulate_month(seed=5, signals=120, today=TODAY)
    c = simulate_month(seed=6, signals=120, today=TODAY)
    assert a.messages == b.messages
    assert a.ground_truth() == b.ground_truth()
    assert [m.body for m in a.messages] != [m.body for m in c.messages]


def test_about_the_asked_number_of_messages(month: Month) -> None:
    assert 690 <= len(month.messages) <= 710
    assert [m.seq for m in month.messages] == list(range(1, len(month.messages) + 1))


def test_every_citizen_service_number_passes_the_11_test_and_some_signals_have_none(
    month: Month,
) -> None:
    clients = [m.body["client"] for m in month.messages if m.kind == "signal" and m.body]
    bsns = [c["Burgerservicenummer"] for c in clients if "Burgerservicenummer" in c]
    assert bsns and all(is_valid_bsn(b) for b in bsns)
    assert 0.3 < len(bsns) / len(clients) < 0.8


def test_good_signals_are_valid_for_intake_in_the_region(month: Month) -> None:
    region = load_region(None)
    policies = {p.code: PartnerPolicy.from_region(p) for p in region.partners}
    for m in month.messages:
        if m.kind != "signal" or m.expected_status == "rejected":
            continue
        result = validate_signal(dict(m.body or {}), policies[m.partner], region, TODAY)
        assert isinstance(result, ValidSignal), (m.signal_id, result)
        household = next(h for h in month.households if h.ref == m.household)
        if household.moved_to is None:
            assert result.gemeentecode == household.gemeentecode


def test_bad_postcode_and_out_of_region_are_rejected_by_validation(month: Month) -> None:
    region = load_region(None)
    policies = {p.code: PartnerPolicy.from_region(p) for p in region.partners}
    for m in month.messages:
        if m.bad in (BadKind.BAD_POSTCODE, BadKind.OUT_OF_REGION):
            result = validate_signal(dict(m.body or {}), policies[m.partner], region, TODAY)
            assert isinstance(result, Rejected)
            assert m.expected_reason in {r.code.value for r in result.reasons}


def test_every_kind_of_bad_input_is_there_at_a_small_size() -> None:
    small = simulate_month(seed=2, signals=100, today=TODAY)
    assert {m.bad for m in small.messages if m.bad} == set(BadKind)
    assert all(m.expected_status == "rejected" for m in small.messages if m.bad)


def test_realistic_shares(month: Month) -> None:
    signals = [m for m in month.messages if m.kind == "signal" and m.expected_status == "accepted"]
    by_type = Counter(m.body["signaalpartner"]["type"] for m in signals if m.body)
    assert by_type["Huur"] / len(signals) > 0.3
    assert {"Energie", "Water", "Zorg", "Overige"} <= by_type.keys()
    hh = month.households
    triple = [
        h for h in hh if {"eneco", "zilveren-kruis"} <= set(h.partners) and len(h.partners) >= 3
    ]
    assert triple, "households with rent + energy + health-insurance arrears"
    assert any(h.repeat for h in hh) and any(h.moved_to for h in hh)
    assert any(h.crisis for h in hh) and any(h.warm_handover for h in hh)
    assert any(len(h.persons) == 2 for h in hh)
    assert 0.02 < sum(m.kind == "resolution" for m in month.messages) / len(month.messages) < 0.1
    assert 0.03 < sum(m.bad is not None for m in month.messages) / len(month.messages) < 0.08
    names = [m.body["client"] for m in signals if m.body]
    assert any("Voorvoegsel" in c for c in names)
    assert any(not c["Achternaam"].isascii() for c in names)
    assert any("Huisnummertoevoeging" in c or not c["Huisnummer"].isdigit() for c in names)


def test_amounts_and_dates_fit_the_partner_type(month: Month) -> None:
    for m in month.messages:
        if m.kind != "signal" or m.bad or not m.body:
            continue
        kind, bedrag = m.body["signaalpartner"]["type"], m.body["bedrag"]
        low, high = {"Huur": (1000, 3600), "Water": (40, 320), "Zorg": (270, 650)}.get(
            kind, (1, 3200)
        )
        assert low <= bedrag <= high, (kind, bedrag)
        signaaldatum = date.fromisoformat(m.body["signaaldatum"])
        assert month.start <= signaaldatum <= TODAY
        assert date.fromisoformat(m.body["ontstaansdatum"]) < signaaldatum


def test_postcodes_are_in_the_region_pc4_areas(month: Month) -> None:
    region = load_region(None)
    for m in month.messages:
        if m.kind == "signal" and m.bad is None and m.body:
            postcode = m.body["client"]["Postcode"].replace(" ", "").upper()
            assert region.municipality_for_postcode(postcode[:4]) is not None
            assert postcode[4:] not in {"SA", "SD", "SS"}


def test_households_are_distinct_and_every_accepted_signal_has_one(month: Month) -> None:
    addresses = [(h.postcode, h.number, h.addition) for h in month.households]
    assert len(set(addresses)) == len(addresses)
    ids = [(m.partner, m.signal_id) for m in month.messages if m.expected_status == "accepted"]
    owned = {s for h in month.households for s in h.signal_ids}
    assert {i for i, m in zip(ids, month.messages, strict=False) if m.kind == "signal"} <= owned
    assert month.expected_cases == len(month.households)


def test_the_http_partner_sends_csv_that_intake_parses(month: Month) -> None:
    signals = [
        m.body
        for m in month.messages
        if m.partner == HTTP_PARTNER and m.body and m.expected_status == "accepted"
    ]
    rows = parse_csv(csv_text(signals).encode("utf-8"))
    assert len(rows) == len(signals)
    assert rows[0].values["client"]["Achternaam"] == signals[0]["client"]["Achternaam"]
    assert rows[0].values["bedrag"] == signals[0]["bedrag"]


def test_write_files_per_partner_and_ground_truth(tmp_path: Path) -> None:
    month = simulate_month(seed=3, signals=100, today=TODAY)
    written = {p.name for p in write_files(month, tmp_path)}
    assert f"{HTTP_PARTNER}.csv" in written and "ground-truth.json" in written
    truth = json.loads((tmp_path / "ground-truth.json").read_text())
    assert truth["expected_cases"] == month.expected_cases
    mitros = json.loads((tmp_path / "mitros.json").read_text())
    assert all(s["signaalpartner"]["type"] == "Huur" for s in mitros)


def test_eropaf_simulate_command_writes_the_files(tmp_path: Path) -> None:
    from eropaf_demo.stack import eropaf_here

    done = eropaf_here(
        "simulate", "--seed", "3", "--signals", "100", "--today", TODAY.isoformat(),
        "-o", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    month = simulate_month(seed=3, signals=100, today=TODAY)
    assert f"{len(month.messages)} messages" in done.stdout
    truth = json.loads((tmp_path / "ground-truth.json").read_text())
    assert truth == json.loads(json.dumps(month.ground_truth()))
