from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest

from eropaf_contracts.events import MatchTokenKind
from eropaf_contracts.signals import PartnerSignal
from eropaf_intake.domain.match_tokens import (
    MatchIdentity,
    identity_of,
    match_tokens,
    pseudonym,
    signal_ref,
)

pytestmark = pytest.mark.unit

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _signal(**client: Any) -> PartnerSignal:
    base: dict[str, Any] = {
        "Burgerservicenummer": "123456782",
        "Voorletters": "J.P.",
        "Voorvoegsel": "van",
        "Achternaam": "Dijk",
        "Geboortedatum": "1985-06-15",
        "Postcode": "3431AB",
        "Huisnummer": "12",
        "Huisnummertoevoeging": "A",
    }
    base.update(client)
    return PartnerSignal.model_validate(
        {
            "ID": "VS-1",
            "signaalpartner": {"type": "Huur"},
            "client": {k: v for k, v in base.items() if v is not None},
        }
    )


def test_all_kinds_when_complete() -> None:
    tokens = match_tokens(_signal(), KEY)
    assert set(tokens) == {k.value for k in MatchTokenKind}
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in tokens.values())
    assert len(set(tokens.values())) == 4  # domain separation between kinds


@pytest.mark.parametrize(
    "variant",
    [
        {"Voorvoegsel": None, "Achternaam": "van Dijk"},
        {"Voorvoegsel": None, "Achternaam": "Dijk, van"},
        {"Voorvoegsel": None, "Achternaam": "VAN DIJK"},
        {"Voorvoegsel": "Van", "Achternaam": "DIJK"},
        {"Voorletters": "j p"},
        {"Voorletters": "JP"},
        {"Postcode": "3431 ab"},
        {"Huisnummer": "12-a", "Huisnummertoevoeging": None},
        {"Huisnummer": "12 A", "Huisnummertoevoeging": None},
        {"Huisnummer": "12a", "Huisnummertoevoeging": None},
        {"Huisnummertoevoeging": "-a"},
        {"Burgerservicenummer": " 123456782"},
    ],
)
def test_variants_give_identical_tokens(variant: dict[str, Any]) -> None:
    assert match_tokens(_signal(**variant), KEY) == match_tokens(_signal(), KEY)


def test_diacritics_give_identical_tokens() -> None:
    a = match_tokens(_signal(Voorvoegsel=None, Achternaam="Çelik"), KEY)
    b = match_tokens(_signal(Voorvoegsel=None, Achternaam="Celik"), KEY)
    assert a == b


def test_eight_digit_bsn_matches_padded() -> None:
    a = match_tokens(_signal(Burgerservicenummer="12345672"), KEY)
    b = match_tokens(_signal(Burgerservicenummer="012345672"), KEY)
    assert a["bsn"] == b["bsn"]


def test_different_people_differ() -> None:
    base = match_tokens(_signal(), KEY)
    other_birth = match_tokens(_signal(Geboortedatum="1985-06-16"), KEY)
    assert other_birth["birth_surname"] != base["birth_surname"]
    assert other_birth["birth_initials_address"] != base["birth_initials_address"]
    assert other_birth["address"] == base["address"]  # same home
    other_bsn = match_tokens(_signal(Burgerservicenummer="111222333"), KEY)
    assert other_bsn["bsn"] != base["bsn"]
    other_addition = match_tokens(_signal(Huisnummertoevoeging="B"), KEY)
    assert other_addition["address"] != base["address"]
    no_addition = match_tokens(_signal(Huisnummertoevoeging=None), KEY)
    assert no_addition["address"] != base["address"]
    other_surname = match_tokens(_signal(Achternaam="Dijkstra"), KEY)
    assert other_surname["birth_surname"] != base["birth_surname"]


def test_different_keys_differ() -> None:
    a, b = match_tokens(_signal(), KEY), match_tokens(_signal(), OTHER_KEY)
    assert set(a) == set(b)
    assert all(a[k] != b[k] for k in a)


def test_tokens_are_not_plain_hashes() -> None:
    tokens = match_tokens(_signal(), KEY)
    assert hashlib.sha256(b"123456782").hexdigest() not in tokens.values()
    assert "123456782" not in "".join(tokens.values())


def test_missing_parts_drop_tokens() -> None:
    assert set(match_tokens(_signal(Burgerservicenummer=None), KEY)) == {
        "birth_surname",
        "birth_initials_address",
        "address",
    }
    assert set(match_tokens(_signal(Voorletters=None), KEY)) == {"bsn", "birth_surname", "address"}
    assert set(match_tokens(_signal(Geboortedatum=None), KEY)) == {"bsn", "address"}
    assert set(match_tokens(_signal(Postcode=None), KEY)) == {"bsn", "birth_surname"}
    assert set(match_tokens(_signal(Huisnummer=None), KEY)) == {"bsn", "birth_surname"}
    # Invalid values (validation rejects them earlier) only drop their tokens.
    bad = _signal(
        Burgerservicenummer="123456789", Postcode="0000XX", Achternaam="--", Voorvoegsel=None
    )
    assert set(match_tokens(bad, KEY)) == set()
    assert match_tokens(MatchIdentity(), KEY) == {}


def test_identity_of() -> None:
    identity = identity_of(_signal(Huisnummer="12-a", Huisnummertoevoeging=None))
    assert identity == MatchIdentity(
        bsn="123456782",
        birth_date=date(1985, 6, 15),
        surname="dijk",
        initials="JP",
        postcode="3431AB",
        house_number=12,
        addition="A",
    )


def test_pseudonym() -> None:
    assert pseudonym(KEY, "a", "b") == pseudonym(KEY, "a", "b")
    assert pseudonym(KEY, "ab", "c") != pseudonym(KEY, "a", "bc")
    assert pseudonym(KEY, "a") != pseudonym(OTHER_KEY, "a")
    assert signal_ref(KEY, "mitros", "VS-1") == signal_ref(KEY, "mitros", "VS-1")
    assert signal_ref(KEY, "mitros", "VS-1") != signal_ref(KEY, "viveste", "VS-1")
    assert signal_ref(KEY, "mitros", "VS-1") != pseudonym(KEY, "mitros", "VS-1")
    with pytest.raises(ValueError):
        pseudonym(b"short", "a")
    with pytest.raises(ValueError):
        pseudonym(KEY)
