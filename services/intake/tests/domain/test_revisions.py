from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from eropaf_contracts.signals import PartnerSignal
from eropaf_intake.domain.revisions import (
    Revision,
    canonical_json,
    content_fingerprint,
    decide_revision,
)

pytestmark = pytest.mark.unit


def _signal(**changes: Any) -> PartnerSignal:
    data: dict[str, Any] = {
        "ID": "VS-1",
        "bedrag": 450,
        "signaaldatum": "2025-01-05",
        "signaalpartner": {"type": "Huur"},
        "client": {"Achternaam": "Dijk", "Postcode": "3431AB", "Huisnummer": "12"},
    }
    data.update(changes)
    return PartnerSignal.model_validate({k: v for k, v in data.items() if v is not None})


def test_canonical_json_is_sorted_and_excludes_status_and_nulls() -> None:
    canonical = canonical_json(_signal(status="Nog niet opgepakt", crisissignaal=None))
    parsed = json.loads(canonical)
    assert "status" not in parsed
    assert "crisissignaal" not in parsed
    assert canonical == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert b'"client":{"Achternaam"' in canonical  # DDAS names, not attribute names


def test_canonical_bytes_are_those_of_the_stdlib_form_so_stored_fingerprints_stay_valid() -> None:
    signal = _signal(
        client={"Achternaam": "Çelik-Öztürk", "Voorvoegsel": "van 't", "Postcode": "3431AB"},
        crisissignaal=True,
    )
    content = signal.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"status"})
    stdlib = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(signal) == stdlib.encode("utf-8")


def test_fingerprint_ignores_key_order_and_status() -> None:
    a = _signal()
    b = PartnerSignal.model_validate(
        json.loads(
            '{"client": {"Huisnummer": "12", "Postcode": "3431AB", "Achternaam": "Dijk"},'
            ' "signaalpartner": {"type": "Huur"}, "signaaldatum": "2025-01-05", "bedrag": 450,'
            ' "ID": "VS-1", "status": "Nog niet opgepakt"}'
        )
    )
    assert content_fingerprint(a) == content_fingerprint(b)
    assert len(content_fingerprint(a)) == 64
    assert content_fingerprint(_signal(bedrag=451)) != content_fingerprint(a)


def test_duplicate() -> None:
    stored = _signal()
    fp = content_fingerprint(stored)
    assert decide_revision(fp, date(2025, 1, 5), _signal(status="Nog niet opgepakt")) is (
        Revision.DUPLICATE
    )


def test_update_when_signaaldatum_later() -> None:
    fp = content_fingerprint(_signal())
    newer = _signal(bedrag=600, signaaldatum="2025-02-05")
    assert decide_revision(fp, date(2025, 1, 5), newer) is Revision.UPDATE


@pytest.mark.parametrize(
    ("stored_date", "new_date"),
    [
        (date(2025, 1, 5), "2025-01-05"),  # same date, different content
        (date(2025, 1, 5), "2025-01-04"),  # older
        (None, "2025-01-05"),
        (date(2025, 1, 5), None),
    ],
)
def test_conflict(stored_date: date | None, new_date: str | None) -> None:
    fp = content_fingerprint(_signal())
    assert decide_revision(fp, stored_date, _signal(bedrag=600, signaaldatum=new_date)) is (
        Revision.CONFLICT
    )
