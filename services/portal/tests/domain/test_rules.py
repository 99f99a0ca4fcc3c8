from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from eropaf_portal.domain import rules
from eropaf_portal.domain.i18n import MESSAGES, translator
from eropaf_portal.domain.model import CapacityWeek, Funnel, Language, Role

from ..service_layer.fakes import CASE_A, CASE_B, TODAY, me, visit

pytestmark = pytest.mark.unit


def test_my_visits_are_mine_planned_and_from_today_split_by_today_week_later() -> None:
    visits = [
        visit("1" * 16, CASE_A, TODAY, "Middag", ("anna", "bram")),
        visit("2" * 16, CASE_A, TODAY, "Ochtend", ("anna", "bram")),
        visit("3" * 16, CASE_B, TODAY + timedelta(days=3), "Avond", ("anna", "bram")),
        visit("4" * 16, CASE_B, TODAY + timedelta(days=8), "Avond", ("anna", "bram")),
        visit("5" * 16, CASE_B, TODAY + timedelta(days=1), "Avond", ("olga", "bram")),
        visit("6" * 16, CASE_B, TODAY - timedelta(days=1), "Avond", ("anna", "bram")),
    ]
    mine = rules.my_visits(visits, "anna", TODAY)
    assert [v.visit_id for v in mine.today] == ["2" * 16, "1" * 16]  # by start time
    assert [v.visit_id for v in mine.this_week] == ["3" * 16]
    assert [v.visit_id for v in mine.later] == ["4" * 16]
    assert visits[0].partners_of("anna") == ("bram",)


def test_a_month_runs_from_its_first_to_its_last_day() -> None:
    assert rules.month_of("2026-02", TODAY) == (date(2026, 2, 1), date(2026, 2, 28))
    assert rules.month_of("2026-12", TODAY) == (date(2026, 12, 1), date(2026, 12, 31))
    assert rules.month_of(None, TODAY) == (date(2026, 11, 1), date(2026, 11, 30))
    with pytest.raises(ValueError):
        rules.month_of("2026-13", TODAY)


def test_the_staff_code_comes_from_the_configured_claim_in_lower_case() -> None:
    assert rules.staff_code_from_claims({"staff_code": " Bram-2 "}, "staff_code") == "bram-2"
    with pytest.raises(rules.NotAStaffCode):
        rules.staff_code_from_claims({"sub": "bram"}, "staff_code")
    with pytest.raises(rules.NotAStaffCode):
        rules.staff_code_from_claims({"staff_code": "not a code!"}, "staff_code")
    with pytest.raises(rules.NotAStaffCode):
        rules.staff_code_from_claims({"staff_code": ["bram"]}, "staff_code")


def test_region_figures_are_for_its_coordinators_only() -> None:
    cora = me("cora", Role.COORDINATOR, "wil", gemeenten=("0356",))
    rules.check_region(cora, "0356")
    with pytest.raises(rules.OutsideRegion):
        rules.check_region(cora, "0344")
    with pytest.raises(rules.OutsideRegion):
        rules.check_region(me("bram", Role.SCHULDHULPVERLENER, "wil"), "0356")


def test_contact_details_show_client_and_contact_fields_only() -> None:
    details = rules.contact_details(
        "s1",
        {
            "ID": "internal",
            "client": {
                "Achternaam": "Jansen",
                "adres": {"Postcode": "3431AB"},
                "Tussenvoegsel": "",
                "Burgerservicenummer": "111222333",
                "Geboortedatum": "1980-01-01",
            },
            "contactgegevens": {"telefoonnummer": "0612345678"},
        },
    )
    assert details.fields == (
        ("Achternaam", "Jansen"),
        ("adres.Postcode", "3431AB"),
        ("telefoonnummer", "0612345678"),
    )


def test_a_visit_calendar_file_has_the_invitation_uid_and_utc_times() -> None:
    v = visit("1" * 16, CASE_A, TODAY, "Ochtend", ("anna", "bram"))
    text = rules.visit_calendar(v, summary="huisbezoek a, b", now=datetime(2026, 11, 1, tzinfo=UTC))
    lines = text.split("\r\n")
    assert "UID:1111111111111111@eropaf" in lines
    assert "DTSTART:20261116T090000Z" in lines
    assert "SUMMARY:huisbezoek a\\, b" in lines
    assert text.endswith("END:VCALENDAR\r\n")


def test_funnel_bars_are_shares_of_the_signals_and_capacity_load_is_capped() -> None:
    f = Funnel("0356", TODAY, TODAY, 200, 100, 50, 20, 0)
    assert [(s.name, s.percent) for s in f.steps()] == [
        ("signals", 100),
        ("cases", 50),
        ("outreach", 25),
        ("reached", 10),
        ("help_accepted", 0),
    ]
    assert Funnel("0356", TODAY, TODAY, 0, 0, 0, 0, 0).steps()[0].percent == 0
    assert CapacityWeek("2026-W47", "0356", "wil", 12, 8).load_percent == 100
    assert CapacityWeek("2026-W47", "0356", "wil", 2, 8).load_percent == 25
    assert CapacityWeek("2026-W47", "0356", "wil", 0, 0).load_percent == 0


def test_every_message_has_both_languages_and_dutch_is_the_default() -> None:
    assert all(nl and en for nl, en in MESSAGES.values())
    assert translator(Language.of(None))("nav.visits") == "Mijn bezoeken"
    assert translator(Language.of("en"))("nav.visits") == "My visits"
    assert translator(Language.of("fr"))("logout") == "Uitloggen"
    assert translator(Language.EN)("staff.recorded", code="x", first=1, last=2, moved=3).startswith(
        "x is absent"
    )
