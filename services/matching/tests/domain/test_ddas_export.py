from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from eropaf_contracts.ddas import (
    Contactsoort,
    Dagdeel,
    Eindresultaat,
    Signaalpartner,
    validate_uitwisselmodel,
)
from eropaf_matching.domain.cases import ContactAttempt
from eropaf_matching.domain.ddas_export import Organisatie, build_uitwisselmodel
from eropaf_matching.domain.matcher import Matcher

pytestmark = pytest.mark.unit

ORG = Organisatie(
    naam="WIL Werk en Inkomen Lekstroom",
    kvk_nummer="12345678",
    contactpersonen=({"naam": "A. Coördinator", "email": "vroegsignalering@example.org"},),
)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def matcher(signal, policy, region) -> Matcher:
    m = Matcher(policy, region)
    m.accept(signal("huur", bedrag=1500, bsn="X", address="A"))
    m.accept(
        signal(
            "energie",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=None,
            bsn="X",
            datum=date(2026, 1, 9),
        )
    )
    m.accept(signal("rep", bedrag=1500, bsn="X", datum=date(2026, 2, 3)))
    case = m.case_of("huur")
    m.plan(case.case_id, date(2026, 1, 6))
    m.record_attempt(
        case.case_id,
        ContactAttempt(Contactsoort.HUISBEZOEK, False, date(2026, 1, 8), Dagdeel.AVOND),
    )
    m.record_attempt(
        case.case_id,
        ContactAttempt(Contactsoort.HUISBEZOEK, True, date(2026, 1, 12), Dagdeel.OCHTEND),
    )
    m.close(case.case_id, Eindresultaat.VERVOLGHULP_FINANCIEEL, date(2026, 2, 20))
    m.accept(
        signal(
            "small",
            partner="vitens",
            type=Signaalpartner.WATER,
            bedrag=40,
            bsn="Q",
            address="B",
            pc4="3432",
        )
    )
    m.accept(signal("elsewhere", partner="portaal", bsn="Z", address="C", pc4="3401"))
    return m


def _export(matcher, **kwargs):
    return build_uitwisselmodel(
        matcher.cases.values(),
        gemeentecode="0356",
        start=date(2026, 1, 1),
        end=date(2026, 2, 28),
        organisatie=ORG,
        code_gegevensleverancier="EROPAF",
        aangeleverd_op=NOW,
        **kwargs,
    )


def test_export_without_personal_data_validates(matcher):
    doc = _export(matcher)
    assert validate_uitwisselmodel(doc) == []
    levering = doc["leveringen"][0]
    assert levering["gemeentecode"] == "0356"
    ids = [s["ID"] for s in levering["vroegsignalen"]]
    assert sorted(ids) == ["energie", "huur", "rep", "small"]  # not the IJsselstein one
    assert all(s["client"] == {} for s in levering["vroegsignalen"])
    by_id = {s["ID"]: s for s in levering["vroegsignalen"]}
    assert "bedrag" not in by_id["energie"]
    assert by_id["rep"]["status"] == "Niet opgepakt: herhaalde melding"
    assert by_id["small"]["status"] == "Nog niet opgepakt"
    assert "status" not in by_id["huur"]
    zaak = next(z for z in levering["vroegsignaalzaken"] if len(z["vroegsignalen"]) == 3)
    assert zaak["resultaat"] == "Vervolghulp en/of verwijzing financieel"
    assert zaak["datum_opgepakt"] == "2026-01-05"
    assert zaak["contactpogingen"][1] == {
        "soort": "Huisbezoek",
        "bereikt": True,
        "datum": "2026-01-12",
        "dagdeel": "Ochtend",
    }


def test_export_with_personal_data_from_callback_validates(matcher):
    people = {
        "huur": {
            "Burgerservicenummer": "999993653",
            "Voorletters": "J.",
            "Achternaam": "Jansen",
            "Geboortedatum": "1980-02-01",
            "Postcode": "3431AB",
            "Huisnummer": "1",
            "Huisnummertoevoeging": "",
        },
    }
    seen: list[str] = []

    def lookup(ref: str):
        seen.append(ref)
        return people.get(ref)

    doc = _export(matcher, personal_data=lookup, signal_ids={"huur": "MIT-2026-001"})
    assert validate_uitwisselmodel(doc) == []
    signals = {s["ID"]: s for s in doc["leveringen"][0]["vroegsignalen"]}
    assert signals["MIT-2026-001"]["client"]["Achternaam"] == "Jansen"
    assert "Huisnummertoevoeging" not in signals["MIT-2026-001"]["client"]
    assert sorted(seen) == ["energie", "huur", "rep", "small"]


def test_export_refuses_non_ddas_personal_fields(matcher):
    with pytest.raises(ValueError, match="telefoonnummer"):
        _export(matcher, personal_data={"huur": {"telefoonnummer": "0612345678"}})


def test_empty_period_still_validates(matcher):
    doc = build_uitwisselmodel(
        matcher.cases.values(),
        gemeentecode="0331",
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        organisatie=Organisatie(naam="Gemeente Lopik"),
        code_gegevensleverancier="EROPAF",
        aangeleverd_op=NOW,
    )
    assert validate_uitwisselmodel(doc) == []
    assert doc["leveringen"][0]["vroegsignaalzaken"] == []
