from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.feedback import ReasonCode
from eropaf_contracts.region import Region, load_region
from eropaf_intake.domain.csv_rows import parse_csv
from eropaf_intake.domain.validation import (
    Limits,
    PartnerPolicy,
    Rejected,
    ValidResolution,
    ValidSignal,
    parse_json_object,
    validate_resolution,
    validate_signal,
)

pytestmark = pytest.mark.unit

TODAY = date(2025, 2, 1)
MITROS = PartnerPolicy("mitros", frozenset({Signaalpartner.HUUR}))


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region(None)


def _value(**changes: Any) -> dict[str, Any]:
    client = {
        "Burgerservicenummer": "123456782",
        "Voorletters": "J.P.",
        "Voorvoegsel": "van",
        "Achternaam": "Dijk",
        "Geboortedatum": "1985-06-15",
        "Straatnaam": "Voorbeeldstraat",
        "Postcode": "3431AB",
        "Huisnummer": "12",
        "Plaatsnaam": "Nieuwegein",
    }
    client.update(changes.pop("client", {}))
    value: dict[str, Any] = {
        "ID": "VS-2025-0001",
        "crisissignaal": False,
        "warmeOverdracht": False,
        "bedrag": 450,
        "ontstaansdatum": "2024-12-10",
        "signaaldatum": "2025-01-05",
        "status": "Nog niet opgepakt",
        "signaalpartner": {"type": "Huur"},
        "client": {k: v for k, v in client.items() if v is not None},
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def _bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def _reasons(result: ValidSignal | ValidResolution | Rejected) -> set[tuple[str, str | None]]:
    assert isinstance(result, Rejected), result
    return {(r.code.value, r.field) for r in result.reasons}


def test_valid_signal_is_normalised(region: Region) -> None:
    value = _value(
        client={
            "Achternaam": "  Jose\u0301   Dijk ",
            "Postcode": "3431 ab",
            "Huisnummer": "12-a",
            "Plaatsnaam": "",
        },
        contactgegevens={"telefoonnummer": " 06 1234 5678 ", "email": "a@example.nl"},
    )
    result = validate_signal(_bytes(value), MITROS, region, TODAY)
    assert isinstance(result, ValidSignal), result
    assert result.gemeentecode == "0356"  # Nieuwegein
    assert result.postcode_area == "3431"
    signal = result.signal
    assert signal.id == "VS-2025-0001"
    assert signal.status is None
    assert signal.client.achternaam == "Jos\u00e9 Dijk"
    assert signal.client.postcode == "3431AB"
    assert signal.client.huisnummer == "12"
    assert signal.client.huisnummertoevoeging == "A"
    assert signal.client.plaatsnaam is None
    assert signal.contactgegevens is not None
    assert signal.contactgegevens.telefoonnummer == "06 1234 5678"
    assert signal.bedrag == 450


def test_valid_from_parsed_mapping(region: Region) -> None:
    result = validate_signal(_value(), MITROS, region, TODAY)
    assert isinstance(result, ValidSignal)
    assert result.signal.client.huisnummertoevoeging is None


def test_input_mapping_not_mutated(region: Region) -> None:
    value = _value(client={"Postcode": "3431 ab"})
    snapshot = json.dumps(value, sort_keys=True)
    validate_signal(value, MITROS, region, TODAY)
    assert json.dumps(value, sort_keys=True) == snapshot


def test_bsn_only_and_name_birth_only_identify(region: Region) -> None:
    bsn_only = _value(
        client={"Achternaam": None, "Geboortedatum": None, "Voorletters": None, "Voorvoegsel": None}
    )
    assert isinstance(validate_signal(bsn_only, MITROS, region, TODAY), ValidSignal)
    name_only = _value(client={"Burgerservicenummer": None})
    assert isinstance(validate_signal(name_only, MITROS, region, TODAY), ValidSignal)


def test_too_large(region: Region) -> None:
    value = _bytes(_value())
    result = validate_signal(value, MITROS, region, TODAY, Limits(max_value_bytes=len(value) - 1))
    assert _reasons(result) == {("too_large", None)}
    assert isinstance(
        validate_signal(value, MITROS, region, TODAY, Limits(len(value))), ValidSignal
    )
    big = _bytes(_value(client={"Straatnaam": "x" * 70_000}))
    assert _reasons(validate_signal(big, MITROS, region, TODAY)) == {("too_large", None)}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff{}", "UTF-8"),
        (b"{", "not JSON"),
        (b"", "not JSON"),
        (b"[]", "object"),
        (b'"x"', "object"),
        (b'{"ID": "a", "ID": "b"}', "duplicate key"),
        (b'{"bedrag": NaN}', "not JSON"),
        (b"\xef\xbb\xbf{}", "not JSON"),
    ],
)
def test_invalid_json(raw: bytes, message: str, region: Region) -> None:
    result = validate_signal(raw, MITROS, region, TODAY)
    assert isinstance(result, Rejected)
    assert [r.code for r in result.reasons] == [ReasonCode.INVALID_JSON]
    assert message in result.reasons[0].message
    assert result.signal_id is None


def test_non_object_parsed_input(region: Region) -> None:
    assert _reasons(validate_signal([1], MITROS, region, TODAY)) == {("invalid_json", None)}


def test_parse_json_object() -> None:
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    assert isinstance(parse_json_object(b"1"), Rejected)


def test_collects_all_reasons(region: Region) -> None:
    value = _value(
        bedrag=0,
        signaaldatum="2025-03-01",
        ontstaansdatum="2025-04-01",
        extra="x",
        client={
            "Burgerservicenummer": "123456789",
            "Postcode": "3431 SA",
            "Huisnummer": "twaalf",
            "Geboortedatum": "2030-01-01",
        },
        contactgegevens={"email": "not-an-address"},
    )
    result = validate_signal(_bytes(value), MITROS, region, TODAY)
    assert isinstance(result, Rejected)
    assert result.signal_id == "VS-2025-0001"
    assert _reasons(result) == {
        ("invalid_schema", "extra"),
        ("invalid_schema", "bedrag"),
        ("invalid_schema", "signaaldatum"),
        ("invalid_schema", "ontstaansdatum"),
        ("invalid_schema", "client.Burgerservicenummer"),
        ("invalid_schema", "client.Postcode"),
        ("invalid_schema", "client.Huisnummer"),
        ("invalid_schema", "client.Geboortedatum"),
        ("invalid_schema", "contactgegevens.email"),
    }
    # Messages never echo the personal data that was sent.
    assert all("123456789" not in r.message for r in result.reasons)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bedrag": "12,50"}, {("invalid_schema", "bedrag")}),
        ({"bedrag": 12.5}, {("invalid_schema", "bedrag")}),
        ({"bedrag": True}, {("invalid_schema", "bedrag")}),
        ({"bedrag": -3}, {("invalid_schema", "bedrag")}),
        ({"crisissignaal": "true"}, {("invalid_schema", "crisissignaal")}),
        ({"signaaldatum": "05-01-2025"}, {("invalid_schema", "signaaldatum")}),
        ({"signaaldatum": "2025-02-30"}, {("invalid_schema", "signaaldatum")}),
        ({"ID": ""}, {("invalid_schema", "ID")}),
        ({"ID": "   "}, {("invalid_schema", "ID")}),
        ({"ID": "x" * 65}, {("invalid_schema", "ID")}),
        ({"ID": 12}, {("invalid_schema", "ID")}),
        ({"signaalpartner": {"type": "Huurder"}}, {("invalid_schema", "signaalpartner.type")}),
        ({"signaalpartner": {}}, {("invalid_schema", "signaalpartner.type")}),
        ({"client": {"Postcode": 3431}}, {("invalid_schema", "client.Postcode")}),
        ({"client": {"postcode": "3431AB"}}, {("invalid_schema", "client.postcode")}),
        ({"client": {"Achternaam": "van\x00Dijk"}}, {("invalid_schema", "client.Achternaam")}),
        ({"client": {"Achternaam": "--"}}, {("invalid_schema", "client.Achternaam")}),
        ({"client": {"Postcode": ""}}, {("invalid_schema", "client.Postcode")}),
        ({"client": {"Postcode": None}}, {("invalid_schema", "client.Postcode")}),
        ({"client": {"Huisnummer": None}}, {("invalid_schema", "client.Huisnummer")}),
        (
            {"client": {"Huisnummer": "12", "Huisnummertoevoeging": "#"}},
            {("invalid_schema", "client.Huisnummer")},
        ),
        ({"ID": "VS\n1"}, {("invalid_schema", "ID")}),
    ],
)
def test_single_reason(
    changes: dict[str, Any], expected: set[tuple[str, str | None]], region: Region
) -> None:
    assert _reasons(validate_signal(_value(**changes), MITROS, region, TODAY)) == expected


def test_id_limit_is_configurable(region: Region) -> None:
    value = _value(ID="x" * 10)
    assert _reasons(validate_signal(value, MITROS, region, TODAY, Limits(max_id_length=9))) == {
        ("invalid_schema", "ID")
    }


def test_missing_objects_reported_once(region: Region) -> None:
    result = validate_signal({"ID": "x"}, MITROS, region, TODAY)
    assert _reasons(result) == {("invalid_schema", "signaalpartner"), ("invalid_schema", "client")}
    result = validate_signal(_value() | {"client": "x"}, MITROS, region, TODAY)
    assert _reasons(result) == {("invalid_schema", "client")}


def test_person_must_be_identifiable(region: Region) -> None:
    nobody = {"Burgerservicenummer": None, "Achternaam": None, "Geboortedatum": None}
    assert _reasons(validate_signal(_value(client=nobody), MITROS, region, TODAY)) == {
        ("invalid_schema", "client")
    }
    no_birth = {"Burgerservicenummer": None, "Geboortedatum": None}
    assert _reasons(validate_signal(_value(client=no_birth), MITROS, region, TODAY)) == {
        ("invalid_schema", "client.Geboortedatum")
    }
    no_name = {"Burgerservicenummer": None, "Achternaam": None}
    assert _reasons(validate_signal(_value(client=no_name), MITROS, region, TODAY)) == {
        ("invalid_schema", "client.Achternaam")
    }


def test_partner_type_mismatch(region: Region) -> None:
    value = _value(signaalpartner={"type": "Energie"})
    result = validate_signal(value, MITROS, region, TODAY)
    assert _reasons(result) == {("partner_type_mismatch", "signaalpartner.type")}
    assert isinstance(result, Rejected)
    assert "Huur" in result.reasons[0].message
    wil_partner = region.partner("wil")
    assert wil_partner is not None
    wil = PartnerPolicy.from_region(wil_partner)
    assert isinstance(
        validate_signal(_value(signaalpartner={"type": "Overige"}), wil, region, TODAY), ValidSignal
    )


def test_out_of_region(region: Region) -> None:
    result = validate_signal(_value(client={"Postcode": "1012 AB"}), MITROS, region, TODAY)
    assert _reasons(result) == {("out_of_region", "client.Postcode")}


@pytest.mark.parametrize(
    ("postcode", "gemeentecode"),
    [("3990AA", "0321"), ("3405BB", "0331"), ("3400CC", "0353"), ("4131DE", "1961")],
)
def test_municipality_of_address(postcode: str, gemeentecode: str, region: Region) -> None:
    result = validate_signal(_value(client={"Postcode": postcode}), MITROS, region, TODAY)
    assert isinstance(result, ValidSignal)
    assert result.gemeentecode == gemeentecode


def test_mixed_reasons_all_reported(region: Region) -> None:
    value = _value(signaalpartner={"type": "Zorg"}, bedrag=0, client={"Postcode": "1012AB"})
    assert _reasons(validate_signal(value, MITROS, region, TODAY)) == {
        ("partner_type_mismatch", "signaalpartner.type"),
        ("invalid_schema", "bedrag"),
        ("out_of_region", "client.Postcode"),
    }


def test_disabled_partner(region: Region) -> None:
    disabled = PartnerPolicy("mitros", frozenset({Signaalpartner.HUUR}), disabled=True)
    result = validate_signal(_value(), disabled, region, TODAY)
    assert _reasons(result) == {("partner_disabled", None)}
    assert isinstance(result, Rejected)
    assert result.signal_id == "VS-2025-0001"
    assert _reasons(validate_signal(b"{", disabled, region, TODAY)) == {("partner_disabled", None)}


def test_control_characters_are_refused_in_every_field_even_the_ignored_status(
    region: Region,
) -> None:
    """The door checks every string before anything decides what it ignores."""
    assert _reasons(validate_signal(_value(status="x\x00"), MITROS, region, TODAY)) == {
        ("invalid_schema", "status")
    }


def test_signaaldatum_today_is_fine_and_ontstaansdatum_alone(region: Region) -> None:
    assert isinstance(
        validate_signal(_value(signaaldatum=TODAY.isoformat()), MITROS, region, TODAY), ValidSignal
    )
    no_signal_date = _value(signaaldatum=None, ontstaansdatum="2025-02-02")
    assert _reasons(validate_signal(no_signal_date, MITROS, region, TODAY)) == {
        ("invalid_schema", "ontstaansdatum")
    }


def test_status_is_ignored_even_when_invalid(region: Region) -> None:
    result = validate_signal(_value(status="whatever"), MITROS, region, TODAY)
    assert isinstance(result, ValidSignal)


def test_csv_rows_validate_per_row(region: Region) -> None:
    body = (
        b"ID;signaalpartner.type;bedrag;crisissignaal;Burgerservicenummer;Postcode;Huisnummer\r\n"
        b"a;Huur;450;nee;123456782;3431 ab;12 A\r\n"
        b"b;Huur;12,50;misschien;123456782;3431AB;12\r\n"
    )
    first, second = (validate_signal(r.values, MITROS, region, TODAY) for r in parse_csv(body))
    assert isinstance(first, ValidSignal)
    assert first.signal.crisissignaal is False
    assert first.signal.client.huisnummertoevoeging == "A"
    assert _reasons(second) == {("invalid_schema", "bedrag"), ("invalid_schema", "crisissignaal")}


# --- resolutions ----------------------------------------------------------------------------------


def test_valid_resolution() -> None:
    result = validate_resolution(b'{"ID": "VS-1", "datumOpgelost": "2025-01-20"}', TODAY)
    assert isinstance(result, ValidResolution)
    assert result.resolution.id == "VS-1"
    assert result.resolution.datum_opgelost == date(2025, 1, 20)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{", {("invalid_json", None)}),
        (b'{"ID": "VS-1"}', {("invalid_schema", "datumOpgelost")}),
        (b'{"ID": "VS-1", "datumOpgelost": "20-01-2025"}', {("invalid_schema", "datumOpgelost")}),
        (b'{"ID": "VS-1", "datumOpgelost": "2025-02-02"}', {("invalid_schema", "datumOpgelost")}),
        (b'{"datumOpgelost": "2025-01-20"}', {("invalid_schema", "ID")}),
        (b'{"ID": "", "datumOpgelost": "2025-01-20"}', {("invalid_schema", "ID")}),
        (b'{"ID": "a\\u0000", "datumOpgelost": "2025-01-20"}', {("invalid_schema", "ID")}),
        (
            b'{"ID": "VS-1", "datumOpgelost": "2025-01-20", "bedrag": 1}',
            {("invalid_schema", "bedrag")},
        ),
    ],
)
def test_invalid_resolution(raw: bytes, expected: set[tuple[str, str | None]]) -> None:
    assert _reasons(validate_resolution(raw, TODAY)) == expected


def test_resolution_limits_and_disabled_partner() -> None:
    raw = b'{"ID": "VS-1", "datumOpgelost": "2025-01-20"}'
    assert _reasons(validate_resolution(raw, TODAY, Limits(max_value_bytes=10))) == {
        ("too_large", None)
    }
    disabled = PartnerPolicy("mitros", frozenset(), disabled=True)
    assert _reasons(validate_resolution(raw, TODAY, partner=disabled)) == {
        ("partner_disabled", None)
    }
    result = validate_resolution({"ID": "VS-1", "datumOpgelost": "2025-02-02"}, TODAY)
    assert isinstance(result, Rejected)
    assert result.signal_id == "VS-1"
