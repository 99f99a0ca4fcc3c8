from __future__ import annotations

import pytest

from eropaf_intake.domain.csv_rows import CsvFormatError, CsvRow, parse_csv

pytestmark = pytest.mark.unit

HEADER = "ID;signaalpartner.type;bedrag;crisissignaal;Achternaam;Postcode;Huisnummer"


def _csv(*lines: str, newline: str = "\n") -> bytes:
    return newline.join(lines).encode("utf-8")


def test_semicolon_excel_export_with_bom_and_crlf() -> None:
    body = b"\xef\xbb\xbf" + _csv(
        HEADER,
        "VS-1;Huur;450;ja;van Dijk;3431 AB;12a",
        "VS-2;Huur;;;Çelik;3431AB;3",
        newline="\r\n",
    )
    rows = parse_csv(body)
    assert rows == [
        CsvRow(
            1,
            {
                "ID": "VS-1",
                "signaalpartner": {"type": "Huur"},
                "bedrag": 450,
                "crisissignaal": True,
                "client": {"Achternaam": "van Dijk", "Postcode": "3431 AB", "Huisnummer": "12a"},
            },
        ),
        CsvRow(
            2,
            {
                "ID": "VS-2",
                "signaalpartner": {"type": "Huur"},
                "client": {"Achternaam": "Çelik", "Postcode": "3431AB", "Huisnummer": "3"},
            },
        ),
    ]


def test_comma_quoted_fields_dotted_names() -> None:
    body = _csv(
        "ID,client.Achternaam,client.Straatnaam,contactgegevens.telefoonnummer,email,bedrag",
        'VS-1,"Dijk, van","Lange\nStraat",0612345678,a@b.nl," 12 "',
    )
    [row] = parse_csv(body)
    assert row.values == {
        "ID": "VS-1",
        "client": {"Achternaam": "Dijk, van", "Straatnaam": "Lange\nStraat"},
        "contactgegevens": {"telefoonnummer": "0612345678", "email": "a@b.nl"},
        "bedrag": 12,
    }


def test_header_names_case_insensitive() -> None:
    [row] = parse_csv(_csv("id;POSTCODE;Telefoonnummer", "x;3431AB;06"))
    assert row.values == {
        "ID": "x",
        "client": {"Postcode": "3431AB"},
        "contactgegevens": {"telefoonnummer": "06"},
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("12,50", "12,50"),
        ("abc", "abc"),
        ("12.5", "12.5"),
        ("-5", -5),
        ("0", 0),
        ("9" * 40, "9" * 40),
    ],
)
def test_bedrag_kept_raw_when_not_whole(cell: str, expected: object) -> None:
    [row] = parse_csv(_csv("ID;bedrag", f'x;"{cell}"'))
    assert row.values["bedrag"] == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Ja", True),
        ("1", True),
        ("false", False),
        ("nee", False),
        ("0", False),
        ("misschien", "misschien"),
    ],
)
def test_booleans(cell: str, expected: object) -> None:
    [row] = parse_csv(_csv("ID;crisissignaal;warmeOverdracht", f"x;{cell};{cell}"))
    assert row.values["crisissignaal"] == expected
    assert row.values["warmeOverdracht"] == expected


def test_empty_cells_absent_empty_rows_skipped_numbers_kept() -> None:
    body = _csv("ID;bedrag;crisissignaal;Achternaam;", "a;;; ;", ";;;;", "", "b;1;;;")
    rows = parse_csv(body)
    assert rows == [CsvRow(1, {"ID": "a"}), CsvRow(4, {"ID": "b", "bedrag": 1})]


def test_short_rows_are_fine() -> None:
    assert parse_csv(_csv("ID;Achternaam;Postcode", "a")) == [CsvRow(1, {"ID": "a"})]


def test_row_without_id_cell_is_kept_for_validation() -> None:
    assert parse_csv(_csv("ID;Achternaam", ";Jansen")) == [
        CsvRow(1, {"client": {"Achternaam": "Jansen"}})
    ]


def test_header_only() -> None:
    assert parse_csv(_csv("ID;Achternaam")) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"ID;Achternaam\nx;\xff\xfe", "UTF-8"),
        (_csv("ID"), "separators"),
        (_csv("ID;Foo;Bar", "x;1;2"), "unknown column.*'Foo', 'Bar'"),
        (_csv("ID;Achternaam;client.Achternaam"), "same field"),
        (_csv("Achternaam;Postcode"), "ID column"),
        (_csv("ID;Achternaam", "x;Jansen;extra"), "row 1 has 3 cells"),
        (_csv("ID;Achternaam;", "x;Jansen;extra"), "without a name"),
        (_csv("ID;Achternaam", 'x;"Jan"sen'), "malformed"),
    ],
)
def test_unparseable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        parse_csv(body)


def test_extra_empty_cells_ignored() -> None:
    assert parse_csv(_csv("ID;Achternaam", "x;Jansen;;")) == [
        CsvRow(1, {"ID": "x", "client": {"Achternaam": "Jansen"}})
    ]


def test_delimiter_sniffed_from_header_not_data() -> None:
    # Header with semicolons; data cells contain commas.
    [row] = parse_csv(_csv("ID;Achternaam", "x;Dijk, van"))
    assert row.values["client"] == {"Achternaam": "Dijk, van"}
    # Header with a quoted name that contains a semicolon is still comma-separated.
    with pytest.raises(CsvFormatError, match="unknown column"):
        parse_csv(_csv('ID,"a;b"', "x,1"))
