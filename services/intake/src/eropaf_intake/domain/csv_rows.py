"""CSV bodies of the HTTP channel (CONTRACT §3) to per-row signal objects in the DDAS shape.

Made for spreadsheet exports: UTF-8 with or without BOM, comma or semicolon (Dutch locales),
quoted fields, CRLF. Only the *file* can be unparseable (`CsvFormatError`, HTTP 400); a bad
*cell* is kept as its raw string so that validation rejects that one row with the field name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

__all__ = ["CsvFormatError", "CsvRow", "CsvTooManyRows", "parse_csv"]

# Column name (case-insensitive, also dotted) -> path in the signal object.
_TOP_LEVEL = (
    "ID",
    "crisissignaal",
    "warmeOverdracht",
    "bedrag",
    "ontstaansdatum",
    "signaaldatum",
    "status",
)
_CLIENT = (
    "Burgerservicenummer",
    "Voorletters",
    "Voorvoegsel",
    "Achternaam",
    "Geboortedatum",
    "Straatnaam",
    "Postcode",
    "Huisnummer",
    "Huisnummertoevoeging",
    "Plaatsnaam",
)
_CONTACT = ("telefoonnummer", "email")
_BOOLEAN_FIELDS = frozenset({("crisissignaal",), ("warmeOverdracht",)})
_INTEGER_FIELDS = frozenset({("bedrag",)})
_TRUE = frozenset({"true", "ja", "1"})
_FALSE = frozenset({"false", "nee", "0"})


def _column_paths() -> dict[str, tuple[str, ...]]:
    paths: dict[str, tuple[str, ...]] = {}
    for name in _TOP_LEVEL:
        paths[name.casefold()] = (name,)
    for name in _CLIENT:
        paths[name.casefold()] = ("client", name)
        paths[f"client.{name}".casefold()] = ("client", name)
    for name in _CONTACT:
        paths[name.casefold()] = ("contactgegevens", name)
        paths[f"contactgegevens.{name}".casefold()] = ("contactgegevens", name)
    paths["signaalpartner.type"] = ("signaalpartner", "type")
    return paths


_COLUMNS = _column_paths()
_MAX_INTEGER_DIGITS = 15  # beyond any arrears amount; also keeps int() cheap


class CsvFormatError(ValueError):
    """The body as a whole is not a usable CSV file; the message says why (HTTP 400)."""


class CsvTooManyRows(CsvFormatError):
    """More data rows than allowed in one file (HTTP 413)."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    number: int  # 1-based data row number; the header is row 0
    values: dict[str, Any]  # DDAS-shaped object, absent cells left out


def _decode(body: bytes) -> str:
    try:
        # utf-8-sig drops the BOM that Excel writes in front of "CSV UTF-8".
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"CSV must be UTF-8 (invalid byte at offset {exc.start}); "
            "save it as 'CSV UTF-8' in your spreadsheet"
        ) from exc


def _sniff_delimiter(header_line: str) -> str:
    # Count separators outside quotes in the header only: data cells may contain either.
    counts = {";": 0, ",": 0}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    if counts[";"] == counts[","] == 0:
        raise CsvFormatError("header row has no ',' or ';' separators")
    return ";" if counts[";"] > counts[","] else ","


def _header(cells: list[str]) -> list[tuple[str, ...] | None]:
    paths: list[tuple[str, ...] | None] = []
    seen: dict[tuple[str, ...], str] = {}
    unknown: list[str] = []
    for cell in cells:
        name = cell.strip()
        if not name:
            paths.append(None)  # trailing separator in the header: an unnamed, ignored column
            continue
        path = _COLUMNS.get(name.casefold())
        if path is None:
            unknown.append(name)
            paths.append(None)
            continue
        if path in seen:
            raise CsvFormatError(f"columns {seen[path]!r} and {name!r} are the same field")
        seen[path] = name
        paths.append(path)
    if unknown:
        raise CsvFormatError(
            f"unknown column(s): {', '.join(repr(u) for u in unknown)}; use DDAS field names "
            "(e.g. ID, bedrag, signaaldatum, signaalpartner.type, Achternaam, Postcode)"
        )
    if ("ID",) not in seen:
        raise CsvFormatError("header row must have an ID column")
    return paths


def _convert(path: tuple[str, ...], text: str) -> Any:
    if path in _INTEGER_FIELDS:
        # Whole euros only; "12,50" or "abc" stay strings and are rejected for this row.
        stripped = text.strip()
        digits = stripped.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_INTEGER_DIGITS:
            return int(stripped)
        return text
    if path in _BOOLEAN_FIELDS:
        lowered = text.strip().casefold()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return text
    return text


def parse_csv(body: bytes, *, max_rows: int | None = None) -> list[CsvRow]:
    """Rows in input order; entirely empty rows are skipped (spreadsheets append them). More
    than `max_rows` data rows raise :class:`CsvTooManyRows` as soon as the next one is read."""
    text = _decode(body)
    if not text.strip():
        raise CsvFormatError("CSV body is empty")
    first_line = text.splitlines()[0]
    delimiter = _sniff_delimiter(first_line)
    # newline="" semantics: the csv module handles CRLF and newlines inside quoted cells.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = _header(next(reader))
        rows: list[CsvRow] = []
        for number, cells in enumerate(reader, start=1):
            row = _row(number, cells, header)
            if row is None:
                continue
            if max_rows is not None and len(rows) >= max_rows:
                raise CsvTooManyRows(
                    f"the CSV holds more than {max_rows} rows; split it over several requests"
                )
            rows.append(row)
        return rows
    except csv.Error as exc:
        raise CsvFormatError(f"CSV is malformed near line {reader.line_num}: {exc}") from exc


def _row(number: int, cells: list[str], header: list[tuple[str, ...] | None]) -> CsvRow | None:
    if not any(cell.strip() for cell in cells):
        return None
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
        raise CsvFormatError(
            f"row {number} has {len(cells)} cells but the header has {len(header)} columns"
        )
    values: dict[str, Any] = {}
    for path, cell in zip(header, cells, strict=False):
        if not cell.strip():
            continue  # empty cell = absent
        if path is None:
            raise CsvFormatError(f"row {number} has a value in a column without a name")
        target = values
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _convert(path, cell)
    return CsvRow(number=number, values=values)
