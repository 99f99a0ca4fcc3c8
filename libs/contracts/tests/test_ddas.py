from __future__ import annotations

import copy
from typing import Any

import pytest

from eropaf_contracts.ddas import (
    ENUM_DEFS,
    EXAMPLES,
    Signaalpartner,
    ddas_enum_values,
    ddas_example,
    ddas_schema,
    validate_uitwisselmodel,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_examples_validate(name: str) -> None:
    assert validate_uitwisselmodel(ddas_example(name)) == []


def test_broken_document_gives_readable_errors() -> None:
    doc: Any = ddas_example("enkelvoudigVoorbeeld.json")
    signal = doc["leveringen"][0]["vroegsignalen"][0]
    signal["bedrag"] = "12"
    signal["signaaldatum"] = "05-01-2025"
    signal["onbekend"] = True
    del doc["codeGegevensleverancier"]
    doc["aanleverdatumEnTijd"] = "2025-02-05 morning"

    errors = validate_uitwisselmodel(doc)

    assert "leveringen[0].vroegsignalen[0].bedrag: '12' is not of type 'integer'" in errors
    assert any(
        e.startswith("leveringen[0].vroegsignalen[0].signaaldatum:") and "date" in e for e in errors
    )
    assert any("'onbekend' was unexpected" in e for e in errors)
    assert any(e.startswith("(root):") and "codeGegevensleverancier" in e for e in errors)
    assert any(e.startswith("aanleverdatumEnTijd:") and "date-time" in e for e in errors)


def test_date_time_requires_an_offset() -> None:
    doc: Any = ddas_example("enkelvoudigVoorbeeld.json")
    doc["aanleverdatumEnTijd"] = "2025-02-05T10:30:00"
    assert len(validate_uitwisselmodel(doc)) == 1


@pytest.mark.parametrize("def_name", sorted(ENUM_DEFS))
def test_enums_equal_the_schema_exactly(def_name: str) -> None:
    enum = ENUM_DEFS[def_name]
    assert [m.value for m in enum] == ddas_enum_values(def_name)


def test_every_schema_enum_is_mirrored() -> None:
    schema_enums = {k for k, v in ddas_schema()["$defs"].items() if "enum" in v}
    assert schema_enums == set(ENUM_DEFS)


def test_schema_copy_is_independent() -> None:
    schema = ddas_schema()
    pristine = copy.deepcopy(schema)
    schema["$defs"].clear()
    assert ddas_schema() == pristine
    assert Signaalpartner("CAK Zorgverzekeringen") is Signaalpartner.CAK_ZORGVERZEKERINGEN
