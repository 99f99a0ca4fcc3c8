from __future__ import annotations

import pytest

from eropaf_intake.domain.bsn import is_valid_bsn, normalise_bsn
from eropaf_intake.domain.normalise import (
    HouseNumber,
    NormalisationError,
    find_control_characters,
    initials_key,
    is_valid_postcode,
    normalise_house_number,
    normalise_postcode,
    normalise_text,
    postcode_area,
    surname_key,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jan   de  Vries ", "Jan de Vries"),
        ("Jose\u0301", "Jos\u00e9"),  # combining accent -> precomposed (NFC)
        ("Dorp\u00a0straat", "Dorp straat"),  # no-break space from spreadsheets
        ("", ""),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


@pytest.mark.parametrize("raw", ["a\x00b", "line\nbreak", "tab\there", "evil\u202etxt", "x\u2028y"])
def test_normalise_text_rejects_control_characters(raw: str) -> None:
    with pytest.raises(NormalisationError, match="control characters"):
        normalise_text(raw)


def test_find_control_characters_lists_code_points_once() -> None:
    assert find_control_characters("a\x00b\x00\x1f") == ["U+0000", "U+001F"]
    assert find_control_characters("Çelik") == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3431 ab", "3431AB"),
        ("3431AB", "3431AB"),
        (" 3431\u00a0aB ", "3431AB"),
        ("1000 aa", "1000AA"),
    ],
)
def test_normalise_postcode(raw: str, expected: str) -> None:
    assert normalise_postcode(raw) == expected
    assert is_valid_postcode(raw)


@pytest.mark.parametrize(
    "raw",
    ["0431AB", "343AB", "34311AB", "3431A", "3431-AB", "3431 SA", "3431sd", "3431SS", "", "ABCD12"],
)
def test_normalise_postcode_rejects(raw: str) -> None:
    with pytest.raises(NormalisationError):
        normalise_postcode(raw)
    assert not is_valid_postcode(raw)


def test_postcode_area() -> None:
    assert postcode_area("3431AB") == "3431"


@pytest.mark.parametrize(
    ("number", "addition", "expected"),
    [
        ("12", None, HouseNumber(12, "")),
        ("12-a", None, HouseNumber(12, "A")),
        ("12 A", None, HouseNumber(12, "A")),
        ("12a", None, HouseNumber(12, "A")),
        ("12", "a", HouseNumber(12, "A")),
        ("12", "-A", HouseNumber(12, "A")),
        ("12", "", HouseNumber(12, "")),
        (" 012 ", None, HouseNumber(12, "")),
        ("12", "bis", HouseNumber(12, "BIS")),
        ("12a", "2", HouseNumber(12, "A2")),
        ("12 / 1 hoog", None, HouseNumber(12, "1HOOG")),
    ],
)
def test_normalise_house_number(number: str, addition: str | None, expected: HouseNumber) -> None:
    assert normalise_house_number(number, addition) == expected


@pytest.mark.parametrize(
    ("number", "addition"),
    [("", None), ("a12", None), ("0", None), ("100000", None), ("12", "a*"), ("12", "ABCDEFGHIJK")],
)
def test_normalise_house_number_rejects(number: str, addition: str | None) -> None:
    with pytest.raises(NormalisationError):
        normalise_house_number(number, addition)


@pytest.mark.parametrize(
    ("achternaam", "voorvoegsel"),
    [
        ("van Dijk", None),
        ("Dijk, van", None),
        ("VAN DIJK", None),
        ("Dijk", "van"),
        ("Dijk", "Van"),
        ("  van   dijk ", None),
        ("Dijk", None),
        ("van der Dijk", None),
        ("Dijk, van der", None),
        ("Dijk", "van der"),
        ("Dijk", "van 't"),
        ("in 't Dijk", None),
        ("op de Dijk", None),
        ("Dìjk", "van"),
    ],
)
def test_surname_key_ignores_prefixes_case_and_order(
    achternaam: str, voorvoegsel: str | None
) -> None:
    assert surname_key(achternaam, voorvoegsel) == "dijk"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Çelik", "Celik"),
        ("Öztürk", "Ozturk"),
        ("Müller", "MULLER"),
        ("Ødegård", "Odegard"),
        ("Straße", "Strasse"),
        ("de Vries", "Vries"),
        ("ter Horst", "Horst"),
        ("den Hartog", "Hartog"),
        ("'s-Gravesande", "Gravesande"),
        ("Jansen-de Vries", "jansen de vries"),
        ("O'Brien", "OBrien"),
    ],
)
def test_surname_key_variants_match(a: str, b: str) -> None:
    assert surname_key(a) == surname_key(b)


def test_surname_key_keeps_inner_particles_and_sole_particle() -> None:
    assert surname_key("Jansen-de Vries") == "jansendevries"
    assert surname_key("Le") == "le"
    assert surname_key("van", None) == "van"
    assert surname_key("Dijk") != surname_key("Dijkstra")


def test_surname_key_requires_letters() -> None:
    with pytest.raises(NormalisationError):
        surname_key(" - ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.P.", "JP"),
        ("j p", "JP"),
        ("JP", "JP"),
        ("J. P.", "JP"),
        ("jp", "JP"),
        ("Th.", "T"),
        ("Chr. J.", "CJ"),
        ("É.", "E"),
        ("", ""),
        (" . ", ""),
    ],
)
def test_initials_key(raw: str, expected: str) -> None:
    assert initials_key(raw) == expected


# --- BSN ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["111222333", "123456782", " 123456782 ", "999999990"])
def test_valid_bsn(raw: str) -> None:
    assert is_valid_bsn(raw)
    assert normalise_bsn(raw) == raw.strip()


def test_bsn_eight_digits_padded() -> None:
    # 012345672: 0*9+1*8+2*7+3*6+4*5+5*4+6*3+7*2 = 112; 112 - 2 = 110 = 10*11
    assert normalise_bsn("12345672") == "012345672"
    assert is_valid_bsn("012345672")


@pytest.mark.parametrize(
    "raw",
    ["123456789", "000000000", "12345678", "1234567", "1234567890", "12345678a", "", "١٢٣٤٥٦٧٨٢"],
)
def test_invalid_bsn(raw: str) -> None:
    assert not is_valid_bsn(raw)
    with pytest.raises(NormalisationError):
        normalise_bsn(raw)
