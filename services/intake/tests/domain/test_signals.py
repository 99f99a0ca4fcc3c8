from __future__ import annotations

import pytest

from eropaf_intake.domain.match_tokens import pseudonym
from eropaf_intake.domain.signals import household_key_of

pytestmark = pytest.mark.unit

KEY = b"domain-signals-key-" + b"d" * 32


def test_the_household_is_the_address_when_there_is_one() -> None:
    assert household_key_of({"address": "a" * 64, "bsn": "b" * 64}, KEY, "r" * 64) == "a" * 64


def test_without_an_address_a_signal_is_a_household_of_its_own() -> None:
    one = household_key_of({"bsn": "b" * 64}, KEY, "1" * 64)
    other = household_key_of({"bsn": "b" * 64}, KEY, "2" * 64)
    assert one == pseudonym(KEY, "household", "1" * 64)
    assert one != other
