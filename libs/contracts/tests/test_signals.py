from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from eropaf_contracts.ddas import Signaalpartner, ddas_example, validate_uitwisselmodel
from eropaf_contracts.signals import PartnerSignal, SignalResolved, dump_ddas, validation_errors

pytestmark = pytest.mark.unit


def _example_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for name in ("enkelvoudigVoorbeeld.json", "meervoudigVoorbeeld.json"):
        for levering in ddas_example(name)["leveringen"]:
            items.extend(levering.get("vroegsignalen", []))
    return items


def _signal(**changes: Any) -> dict[str, Any]:
    item = dict(_example_items()[0])
    item.update(changes)
    return item


def _errors(raw: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(ValidationError) as info:
        PartnerSignal.model_validate(raw)
    return validation_errors(info.value)


@pytest.mark.parametrize("item", _example_items(), ids=lambda i: i["ID"])
def test_accepts_official_example_items_and_round_trips(item: dict[str, Any]) -> None:
    signal = PartnerSignal.model_validate(item)
    assert dump_ddas(signal) == item


def test_parses_types_and_python_names() -> None:
    signal = PartnerSignal.model_validate(_signal())
    assert signal.id == "VS-2025-0001"
    assert signal.bedrag == 450
    assert signal.signaaldatum == date(2025, 1, 5)
    assert signal.client.geboortedatum == date(1985, 6, 15)
    assert signal.client.postcode == "1234AB"
    assert signal.signaalpartner.type is Signaalpartner.ENERGIE


def test_accepts_json_bytes() -> None:
    raw = b'{"ID": "x1", "signaalpartner": {"type": "Huur"}, "client": {}, "bedrag": 3}'
    assert PartnerSignal.model_validate_json(raw).bedrag == 3


def test_contactgegevens_extension() -> None:
    contact = {"telefoonnummer": "06-12345678", "email": "a@example.org"}
    signal = PartnerSignal.model_validate(_signal(contactgegevens=contact))
    assert signal.contactgegevens is not None
    assert signal.contactgegevens.email == "a@example.org"
    assert dump_ddas(signal)["contactgegevens"] == contact


def test_status_is_optional() -> None:
    item = _signal()
    del item["status"]
    assert PartnerSignal.model_validate(item).status is None


def test_dump_without_extension_is_a_valid_ddas_item() -> None:
    doc: Any = ddas_example("enkelvoudigVoorbeeld.json")
    signal = PartnerSignal.model_validate(_signal(bedrag=99))
    doc["leveringen"][0]["vroegsignalen"] = [dump_ddas(signal)]
    assert validate_uitwisselmodel(doc) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bedrag": "12"}, "bedrag"),
        ({"bedrag": 12.5}, "bedrag"),
        ({"bedrag": True}, "bedrag"),
        ({"ontstaansdatum": "2025-02-30"}, "ontstaansdatum"),
        ({"crisissignaal": "true"}, "crisissignaal"),
        ({"warmeOverdracht": 1}, "warmeOverdracht"),
        ({"signaaldatum": "05-01-2025"}, "signaaldatum"),
        ({"signaaldatum": 1736035200}, "signaaldatum"),
        ({"ontstaansdatum": "2024-12-10T00:00:00"}, "ontstaansdatum"),
        ({"ID": ""}, "ID"),
        ({"ID": 17}, "ID"),
        ({"signaalpartner": {"type": "Kapper"}}, "signaalpartner.type"),
        ({"signaalpartner": {}}, "signaalpartner.type"),
        ({"status": "Klaar"}, "status"),
        ({"extra": 1}, "extra"),
    ],
)
def test_rejects_wrong_shapes_naming_the_field(changes: dict[str, Any], field: str) -> None:
    assert field in [f for f, _ in _errors(_signal(**changes))]


def test_client_errors_use_ddas_paths() -> None:
    client = dict(_example_items()[0]["client"], Postcode=3431, postcode="3431AB")
    errors = dict(_errors(_signal(client=client)))
    assert errors["client.Postcode"] == "Input should be a valid string"
    assert errors["client.postcode"] == "Extra inputs are not permitted"


def test_missing_required_parts() -> None:
    fields = [f for f, _ in _errors({"bedrag": 1})]
    assert sorted(f for f in fields if f) == ["ID", "client", "signaalpartner"]


def test_non_object_is_a_root_error() -> None:
    assert _errors(["not", "an", "object"])[0][0] is None


def test_signal_resolved() -> None:
    resolved = SignalResolved.model_validate({"ID": "VS-1", "datumOpgelost": "2025-03-01"})
    assert resolved.datum_opgelost == date(2025, 3, 1)
    assert dump_ddas(resolved) == {"ID": "VS-1", "datumOpgelost": "2025-03-01"}
    with pytest.raises(ValidationError):
        SignalResolved.model_validate({"ID": "VS-1", "datumOpgelost": "1 maart"})


def test_populate_by_name() -> None:
    resolved = SignalResolved(id="VS-2", datum_opgelost=date(2025, 3, 1))
    assert dump_ddas(resolved)["ID"] == "VS-2"


def test_field_names_are_exactly_ddas() -> None:
    from eropaf_contracts.ddas import ddas_schema

    item = ddas_schema()["properties"]["leveringen"]["items"]["properties"]["vroegsignalen"]
    props = item["items"]["properties"]
    ours = PartnerSignal.model_json_schema(by_alias=True)
    assert set(ours["properties"]) == set(props) | {"contactgegevens"}
    client = ours["$defs"]["Client"]["properties"]
    assert set(client) == set(props["client"]["properties"])
    assert set(ours["required"]) >= set(item["items"]["required"])
