from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import Region, load_region, postcode_area

pytestmark = pytest.mark.unit

LEKSTROOM = load_region()


@pytest.mark.parametrize(
    ("postcode", "gemeente"),
    [
        ("3431AB", "0356"),
        ("3431 ab", "0356"),
        (" 3431 ", "0356"),
        ("3430", "0356"),
        ("3439ZZ", "0356"),
        ("3400", "0353"),
        ("3404", "0353"),
        ("3405", "0331"),
        ("3410", "0331"),
        ("3415", "0331"),
        ("3990", "0321"),
        ("3999", "0321"),
        ("4130", "1961"),
        ("4133", "1961"),
    ],
)
def test_postcode_lookup(postcode: str, gemeente: str) -> None:
    municipality = LEKSTROOM.municipality_for_postcode(postcode)
    assert municipality is not None and municipality.code == gemeente


@pytest.mark.parametrize("postcode", ["3406", "3409", "3416", "3429", "3440", "4134", "1012AB"])
def test_out_of_region(postcode: str) -> None:
    assert LEKSTROOM.municipality_for_postcode(postcode) is None


@pytest.mark.parametrize("postcode", ["", "ABCD", "0123AB", "3431A", "34311", "3431 ABC"])
def test_not_a_postcode(postcode: str) -> None:
    assert postcode_area(postcode) is None
    assert LEKSTROOM.municipality_for_postcode(postcode) is None


def test_lekstroom_content() -> None:
    assert {m.name for m in LEKSTROOM.municipalities} == {
        "Houten",
        "IJsselstein",
        "Lopik",
        "Nieuwegein",
        "Vijfheerenlanden",
    }
    assert all(
        LEKSTROOM.team_for(m.code) == LEKSTROOM.team("wil") for m in LEKSTROOM.municipalities
    )
    corporations = ["mitros", "viveste", "lekstede", "provides", "portaal", "jutphaas", "wbv-lopik"]
    for code in corporations:
        partner = LEKSTROOM.partner(code)
        assert partner is not None and partner.types == [Signaalpartner.HUUR]
    assert LEKSTROOM.partner("wil") is not None
    later = {"eneco": "Energie", "vitens": "Water", "zilveren-kruis": "Zorg"}
    for code, kind in later.items():
        partner = LEKSTROOM.partner(code)
        assert partner is not None and partner.types == [Signaalpartner(kind)]
    assert LEKSTROOM.partner("nope") is None


def _raw() -> dict[str, Any]:
    return LEKSTROOM.model_dump(mode="json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["municipalities"][0]["pc4"].append([3430, 3430]), "overlap"),
        (lambda r: r["municipalities"][1].update(pc4=[[3999, 4000]]), "overlap"),
        (lambda r: r["municipalities"][0].update(pc4=[[3999, 3990]]), "PC4 range"),
        (lambda r: r["municipalities"][0].update(code="321"), "code"),
        (lambda r: r["municipalities"][0].update(team="other"), "unknown team"),
        (lambda r: r["partners"][0].update(code="Mitros"), "invalid partner code"),
        (lambda r: r["partners"][0].update(types=["Kapper"]), "types"),
        (lambda r: r["partners"][0].update(types=[]), "types"),
        (lambda r: r["partners"].append(r["partners"][0]), "duplicate partner code"),
        (lambda r: r["partners"][0].update(kind="x"), "kind"),
    ],
)
def test_region_validation(mutate: Any, message: str) -> None:
    raw = _raw()
    mutate(raw)
    with pytest.raises(ValidationError, match=message):
        Region.model_validate(raw)


def test_load_from_path(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    raw = _raw() | {"name": "Elders"}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load_region(path).name == "Elders"


def test_unquoted_yaml_code_is_rejected(tmp_path: Path) -> None:
    # YAML 1.1 reads 0321 as an octal int; the code must be quoted, and we must notice.
    path = tmp_path / "r.yaml"
    text = yaml.safe_dump(_raw()).replace("code: '0321'", "code: 0321")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError):
        load_region(path)


def test_scheduling_data_holidays_travel_and_corporations() -> None:
    from datetime import date

    assert date(2026, 12, 25) in LEKSTROOM.holidays
    assert LEKSTROOM.travel_time("0321", "0356") == LEKSTROOM.travel_time("0356", "0321") == 15
    assert LEKSTROOM.travel_time("0356", "0356") == LEKSTROOM.travel_within_municipality_minutes
    assert LEKSTROOM.visit_minutes == 60
    assert LEKSTROOM.home_visit_attempts == 3  # the policy's last home-visit attempt
    assert LEKSTROOM.is_corporation("mitros") and not LEKSTROOM.is_corporation("wil")


def test_travel_time_names_known_municipalities() -> None:
    data = yaml.safe_load(
        (Path(__file__).parents[1] / "src/eropaf_contracts/regions/lekstroom.yaml").read_text()
    )
    data["travel_minutes"] = [{"between": ["0356", "9999"], "minutes": 10}]
    with pytest.raises(ValidationError, match="unknown municipality"):
        Region.model_validate(data)
