"""Burgerservicenummer (citizen service number): format and 11-test."""

from __future__ import annotations

from .normalise import NormalisationError


def normalise_bsn(value: str) -> str:
    """The 9-digit form of a BSN; raises `NormalisationError` if it fails the 11-test.

    8 digits are accepted and padded with a leading zero: spreadsheets drop it when a BSN
    column is read as a number.
    """
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (8, 9):
        raise NormalisationError("citizen service number must be 9 digits")
    digits = digits.zfill(9)
    # 11-test: weights 9..2 for the first eight digits, -1 for the last.
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    total -= int(digits[8])
    if total % 11 != 0 or digits == "000000000":
        raise NormalisationError("citizen service number fails the 11-test")
    return digits


def is_valid_bsn(value: str) -> bool:
    try:
        normalise_bsn(value)
    except NormalisationError:
        return False
    return True
