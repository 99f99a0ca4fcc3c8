"""Keyed pseudonyms: match tokens for households and references for signals.

Always HMAC-SHA256 with a secret key, never a plain hash: a BSN has only ~10^9 values and a
birth date + postcode far fewer, so an unkeyed hash would be reversed by enumeration. Inputs are
normalised first (see `normalise`) so spelling variants of one person give the same token.
Every pseudonym carries its purpose (the token kind) in the MAC input, so a `bsn` token can
never equal an `address` token or a `signal_ref`, even for colliding raw values.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from datetime import date

from eropaf_contracts.events import MatchTokenKind
from eropaf_contracts.signals import PartnerSignal

from .bsn import normalise_bsn
from .normalise import (
    NormalisationError,
    initials_key,
    normalise_house_number,
    normalise_postcode,
    surname_key,
)

__all__ = [
    "MIN_KEY_BYTES",
    "MatchIdentity",
    "identity_of",
    "match_tokens",
    "pseudonym",
    "signal_ref",
]

MIN_KEY_BYTES = 16
_CONTEXT = "eropaf/pseudonym/v1"


def pseudonym(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 over the length-prefixed UTF-8 parts, as 64 lower-case hex characters.

    Length prefixes make the encoding injective: ("ab", "c") and ("a", "bc") differ. Callers
    put the purpose first, e.g. `pseudonym(key, "signal_ref", partner_code, signal_id)`.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    if not parts:
        raise ValueError("pseudonym needs at least one part")
    message = bytearray()
    for part in (_CONTEXT, *parts):
        encoded = part.encode("utf-8")
        message += struct.pack(">I", len(encoded)) + encoded
    # One-shot C HMAC: several per signal, and building an HMAC object costs more than this.
    return hmac.digest(key, bytes(message), "sha256").hex()


def signal_ref(key: bytes, partner_code: str, signal_id: str) -> str:
    """Stable pseudonym of one partner's signal, the same for all its revisions."""
    return pseudonym(key, "signal_ref", partner_code, signal_id)


@dataclass(frozen=True, slots=True)
class MatchIdentity:
    """The normalised identifying attributes of a signal's client (None = unknown)."""

    bsn: str | None = None
    birth_date: date | None = None
    surname: str | None = None  # `surname_key`
    initials: str | None = None  # `initials_key`, None if empty
    postcode: str | None = None
    house_number: int | None = None
    addition: str = ""


def identity_of(signal: PartnerSignal) -> MatchIdentity:
    """Normalise the client of `signal`; fields that are absent or unusable become None.

    Unusable values are rejected by validation first; here they only drop a token.
    """
    client = signal.client
    bsn: str | None = None
    if client.burgerservicenummer:
        try:
            bsn = normalise_bsn(client.burgerservicenummer)
        except NormalisationError:
            bsn = None
    surname: str | None = None
    if client.achternaam:
        try:
            surname = surname_key(client.achternaam, client.voorvoegsel)
        except NormalisationError:
            surname = None
    initials = initials_key(client.voorletters) if client.voorletters else ""
    postcode: str | None = None
    if client.postcode:
        try:
            postcode = normalise_postcode(client.postcode)
        except NormalisationError:
            postcode = None
    house_number: int | None = None
    addition = ""
    if client.huisnummer:
        try:
            parsed = normalise_house_number(client.huisnummer, client.huisnummertoevoeging)
        except NormalisationError:
            parsed = None
        if parsed is not None:
            house_number, addition = parsed.number, parsed.addition
    return MatchIdentity(
        bsn=bsn,
        birth_date=client.geboortedatum,
        surname=surname,
        initials=initials or None,
        postcode=postcode,
        house_number=house_number,
        addition=addition,
    )


def match_tokens(signal: PartnerSignal | MatchIdentity, key: bytes) -> dict[str, str]:
    """The match tokens that can be derived, by kind (`MatchTokenKind` values).

    - `bsn`: the citizen service number, when present and valid;
    - `birth_surname`: birth date + surname key;
    - `birth_initials_address`: birth date + initials + postcode + house number + addition;
    - `address`: postcode + house number + addition (a household, not a person).
    """
    identity = signal if isinstance(signal, MatchIdentity) else identity_of(signal)
    tokens: dict[str, str] = {}

    def token(kind: MatchTokenKind, *parts: str) -> None:
        tokens[kind.value] = pseudonym(key, "match_token", kind.value, *parts)

    if identity.bsn:
        token(MatchTokenKind.BSN, identity.bsn)
    birth = identity.birth_date.isoformat() if identity.birth_date else None
    if birth and identity.surname:
        token(MatchTokenKind.BIRTH_SURNAME, birth, identity.surname)
    has_address = identity.postcode is not None and identity.house_number is not None
    if has_address:
        address = (identity.postcode or "", str(identity.house_number), identity.addition)
        if birth and identity.initials:
            token(MatchTokenKind.BIRTH_INITIALS_ADDRESS, birth, identity.initials, *address)
        token(MatchTokenKind.ADDRESS, *address)
    return tokens
