"""Validation of partner messages: from raw bytes (or a parsed HTTP/CSV row) to either a
normalised `PartnerSignal` or the complete list of reasons to reject it.

All reasons are collected, not just the first, so a partner can fix a message in one go.
Reason codes and field paths are the contract's (CONTRACT §2.2), paths in DDAS names
(`client.Postcode`). Messages never echo the personal data that was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.feedback import FeedbackReason, ReasonCode
from eropaf_contracts.region import Partner, Region
from eropaf_contracts.signals import PartnerSignal, SignalResolved, validation_errors

from .bsn import normalise_bsn
from .decode import DecodeLimits, Undecodable, check_object, decode_object, readable_id
from .normalise import (
    NormalisationError,
    normalise_house_number,
    normalise_postcode,
    normalise_text,
    postcode_area,
    surname_key,
)

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "Limits",
    "PartnerPolicy",
    "Rejected",
    "ValidResolution",
    "ValidSignal",
    "parse_json_object",
    "validate_resolution",
    "validate_signal",
]

DEFAULT_MAX_VALUE_BYTES = 64 * 1024
# Free-text fields: stored NFC, trimmed, whitespace collapsed; "" means absent.
_CLIENT_TEXT_FIELDS = (
    "Burgerservicenummer",
    "Voorletters",
    "Voorvoegsel",
    "Achternaam",
    "Straatnaam",
    "Postcode",
    "Huisnummer",
    "Huisnummertoevoeging",
    "Plaatsnaam",
)
_CONTACT_TEXT_FIELDS = ("telefoonnummer", "email")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class Limits:
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_id_length: int = 64
    decode: DecodeLimits = field(default_factory=DecodeLimits)  # depth, lengths (decode.py)


@dataclass(frozen=True, slots=True)
class PartnerPolicy:
    """What validation needs to know about the sending partner."""

    code: str
    types: frozenset[Signaalpartner]
    disabled: bool = False

    @classmethod
    def from_region(cls, partner: Partner, *, disabled: bool = False) -> PartnerPolicy:
        return cls(code=partner.code, types=frozenset(partner.types), disabled=disabled)


@dataclass(frozen=True, slots=True)
class ValidSignal:
    signal: PartnerSignal  # normalised; `status` dropped
    gemeentecode: str  # the served municipality of the address
    postcode_area: str  # PC4


@dataclass(frozen=True, slots=True)
class ValidResolution:
    resolution: SignalResolved


@dataclass(frozen=True, slots=True)
class Rejected:
    reasons: list[FeedbackReason]
    # The `ID` when it could be read (a string), for the feedback message and its key.
    signal_id: str | None = None


def _reason(code: ReasonCode, field: str | None, message: str) -> FeedbackReason:
    return FeedbackReason(code=code, field=field, message=message)


# --- JSON -------------------------------------------------------------------------------------


def parse_json_object(value: bytes, limits: Limits = Limits()) -> dict[str, Any] | Rejected:
    """The bounded decode step (domain.decode): size, strict UTF-8 and JSON, depth, lengths,
    numbers, control characters, duplicate keys; must be an object."""
    decoded = decode_object(value, limits.decode, max_bytes=limits.max_value_bytes)
    if isinstance(decoded, Undecodable):
        return Rejected(decoded.reasons, decoded.signal_id)
    return decoded


def _as_object(raw: object, limits: Limits) -> dict[str, Any] | Rejected:
    if isinstance(raw, bytes | bytearray | memoryview):
        return parse_json_object(bytes(raw), limits)
    if isinstance(raw, Mapping):
        # Parsed elsewhere (HTTP, CSV): the same bounds and characters.
        data = dict(raw)
        problem = check_object(data, limits.decode)
        return data if problem is None else Rejected(problem.reasons, problem.signal_id)
    return Rejected([_reason(ReasonCode.INVALID_JSON, None, "not a JSON object")])


_readable_id = readable_id


# --- reason collection ------------------------------------------------------------------------


@dataclass(slots=True)
class _Reasons:
    items: list[FeedbackReason] = field(default_factory=list)
    # Fields pydantic already complained about: our rules stay silent on them and below them.
    schema_fields: set[str] = field(default_factory=set)

    def add(self, code: ReasonCode, field: str | None, message: str) -> None:
        if field is not None and code is ReasonCode.INVALID_SCHEMA and self._covered(field):
            return
        reason = _reason(code, field, message)
        if reason not in self.items:
            self.items.append(reason)

    def schema(self, field: str | None, message: str) -> None:
        self.add(ReasonCode.INVALID_SCHEMA, field, message)

    def _covered(self, path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[: i + 1]) in self.schema_fields for i in range(len(parts)))

    def from_pydantic(self, pairs: Iterable[tuple[str | None, str]]) -> None:
        for path, message in pairs:
            self.items.append(_reason(ReasonCode.INVALID_SCHEMA, path, message))
            if path is not None:
                self.schema_fields.add(path)


def _normalised_text_object(obj: Any, names: Iterable[str], prefix: str, bad: set[str]) -> Any:
    """A copy of `obj` with its text fields normalised; "" and whitespace become absent."""
    if not isinstance(obj, Mapping):
        return obj  # pydantic reports the wrong type
    out = dict(obj)
    for name in names:
        value = out.get(name)
        if isinstance(value, str) and f"{prefix}.{name}" not in bad:
            text = normalise_text(value)
            if text:
                out[name] = text
            else:
                del out[name]
    return out


def _date(value: Any) -> date | None:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _disabled(partner: PartnerPolicy, parsed: dict[str, Any] | Rejected) -> Rejected:
    return Rejected(
        [_reason(ReasonCode.PARTNER_DISABLED, None, f"partner {partner.code} is disabled")],
        None if isinstance(parsed, Rejected) else _readable_id(parsed),
    )


# --- signals ----------------------------------------------------------------------------------


def validate_signal(
    raw: object,
    partner: PartnerPolicy,
    region: Region,
    today: date,
    limits: Limits = Limits(),
) -> ValidSignal | Rejected:
    """Validate a signal: the message value as bytes, or an already parsed object (HTTP/CSV).

    On success the signal is normalised: text NFC, trimmed and whitespace-collapsed, empty
    optional text absent, postcode canonical ("3431AB"), house number split into number and
    upper-case addition, `status` dropped (it is ours to decide).
    """
    parsed = _as_object(raw, limits)
    if partner.disabled:
        # Nothing from a disabled partner is used; only the ID, so the feedback can name it.
        return _disabled(partner, parsed)
    if isinstance(parsed, Rejected):
        return parsed
    data = parsed
    signal_id = _readable_id(data)
    # `status` is ours to decide: dropped before anything looks at it.
    data.pop("status", None)
    reasons = _Reasons()
    bad_text: set[str] = set()  # control characters: refused by the decode step already

    if "client" in data:
        data["client"] = _normalised_text_object(
            data["client"], _CLIENT_TEXT_FIELDS, "client", bad_text
        )
    if "contactgegevens" in data:
        data["contactgegevens"] = _normalised_text_object(
            data["contactgegevens"], _CONTACT_TEXT_FIELDS, "contactgegevens", bad_text
        )
    area = _normalise_address(data, reasons)

    signal: PartnerSignal | None = None
    try:
        signal = PartnerSignal.model_validate(data)
    except ValidationError as exc:
        reasons.from_pydantic(validation_errors(exc))

    _check_id(data, limits, reasons)
    _check_amount_and_dates(data, today, reasons)
    _check_client(data, today, reasons)
    _check_contact(data, reasons)
    _check_partner_type(data, partner, reasons)
    gemeentecode = _check_region(area, region, reasons)

    if reasons.items or signal is None or gemeentecode is None or area is None:
        return Rejected(
            reasons.items or [_reason(ReasonCode.INVALID_SCHEMA, None, "invalid")], signal_id
        )
    return ValidSignal(signal=signal, gemeentecode=gemeentecode, postcode_area=area)


def _normalise_address(data: dict[str, Any], reasons: _Reasons) -> str | None:
    """Canonicalise postcode and house number in place; the PC4 area if the postcode is valid."""
    client = data.get("client")
    if not isinstance(client, dict):
        return None
    area: str | None = None
    postcode = client.get("Postcode")
    if isinstance(postcode, str):
        try:
            client["Postcode"] = normalise_postcode(postcode)
            area = postcode_area(client["Postcode"])
        except NormalisationError as exc:
            reasons.schema("client.Postcode", str(exc))
    number = client.get("Huisnummer")
    addition = client.get("Huisnummertoevoeging")
    if isinstance(number, str) and (addition is None or isinstance(addition, str)):
        try:
            parsed = normalise_house_number(number, addition)
        except NormalisationError as exc:
            reasons.schema("client.Huisnummer", str(exc))
        else:
            client["Huisnummer"] = str(parsed.number)
            if parsed.addition:
                client["Huisnummertoevoeging"] = parsed.addition
            else:
                client.pop("Huisnummertoevoeging", None)
    return area


def _check_id(data: Mapping[str, Any], limits: Limits, reasons: _Reasons) -> None:
    signal_id = data.get("ID")
    if not isinstance(signal_id, str):
        if "ID" not in data:
            reasons.schema("ID", "Field required")
        return
    if not signal_id.strip():
        reasons.schema("ID", "must not be empty")
    elif len(signal_id) > limits.max_id_length:
        reasons.schema("ID", f"longer than {limits.max_id_length} characters")


def _check_amount_and_dates(data: Mapping[str, Any], today: date, reasons: _Reasons) -> None:
    bedrag = data.get("bedrag")
    if isinstance(bedrag, int) and not isinstance(bedrag, bool) and bedrag < 1:
        reasons.schema("bedrag", "must be a whole number of euros, at least 1")
    signaaldatum = _date(data.get("signaaldatum"))
    ontstaansdatum = _date(data.get("ontstaansdatum"))
    if signaaldatum is not None and signaaldatum > today:
        reasons.schema("signaaldatum", "is in the future")
    if ontstaansdatum is not None:
        if signaaldatum is not None and ontstaansdatum > signaaldatum:
            reasons.schema("ontstaansdatum", "is after signaaldatum")
        elif ontstaansdatum > today:
            reasons.schema("ontstaansdatum", "is in the future")


def _check_client(data: Mapping[str, Any], today: date, reasons: _Reasons) -> None:
    client = data.get("client")
    if not isinstance(client, Mapping):
        return
    bsn = client.get("Burgerservicenummer")
    if isinstance(bsn, str):
        try:
            normalise_bsn(bsn)
        except NormalisationError as exc:
            reasons.schema("client.Burgerservicenummer", str(exc))
    surname = client.get("Achternaam")
    has_surname = False
    if isinstance(surname, str):
        try:
            # Without the Voorvoegsel: "van" + "--" must not pass as the surname "van".
            surname_key(surname)
            has_surname = True
        except NormalisationError as exc:
            reasons.schema("client.Achternaam", str(exc))
    birth = _date(client.get("Geboortedatum"))
    if birth is not None and birth > today:
        reasons.schema("client.Geboortedatum", "is in the future")
    # Matching needs a person: a BSN, or surname + birth date. (An invalid BSN is reported
    # above and does not also count as missing.)
    if bsn is None and not (has_surname and birth is not None):
        if surname is None and "Geboortedatum" not in client:
            reasons.schema(
                "client",
                "identify the person: Burgerservicenummer, or Achternaam and Geboortedatum",
            )
        elif surname is None:
            reasons.schema("client.Achternaam", "required when there is no Burgerservicenummer")
        elif "Geboortedatum" not in client:
            reasons.schema("client.Geboortedatum", "required when there is no Burgerservicenummer")
    # ... and a home: postcode + house number.
    if "Postcode" not in client:
        reasons.schema("client.Postcode", "Field required")
    if "Huisnummer" not in client:
        reasons.schema("client.Huisnummer", "Field required")


def _check_contact(data: Mapping[str, Any], reasons: _Reasons) -> None:
    contact = data.get("contactgegevens")
    if not isinstance(contact, Mapping):
        return
    email = contact.get("email")
    if isinstance(email, str) and not _EMAIL.fullmatch(email):
        reasons.schema("contactgegevens.email", "not an e-mail address")


_PARTNER_TYPES = frozenset(t.value for t in Signaalpartner)


def _check_partner_type(data: Mapping[str, Any], partner: PartnerPolicy, reasons: _Reasons) -> None:
    signaalpartner = data.get("signaalpartner")
    if not isinstance(signaalpartner, Mapping):
        return
    kind = signaalpartner.get("type")
    if not isinstance(kind, str) or kind not in _PARTNER_TYPES:
        return  # pydantic reports it
    if Signaalpartner(kind) not in partner.types:
        allowed = ", ".join(sorted(t.value for t in partner.types)) or "none"
        reasons.add(
            ReasonCode.PARTNER_TYPE_MISMATCH,
            "signaalpartner.type",
            f"partner {partner.code} may send only: {allowed}",
        )


def _check_region(area: str | None, region: Region, reasons: _Reasons) -> str | None:
    if area is None:
        return None
    municipality = region.municipality_for_postcode(area)
    if municipality is None:
        reasons.add(
            ReasonCode.OUT_OF_REGION,
            "client.Postcode",
            f"postcode area {area} is not in a municipality served by region {region.name}",
        )
        return None
    return municipality.code


# --- resolutions ------------------------------------------------------------------------------


def validate_resolution(
    raw: object,
    today: date,
    limits: Limits = Limits(),
    partner: PartnerPolicy | None = None,
) -> ValidResolution | Rejected:
    """Validate `{"ID": ..., "datumOpgelost": "YYYY-MM-DD"}`; the ID is not looked up here."""
    parsed = _as_object(raw, limits)
    if partner is not None and partner.disabled:
        return _disabled(partner, parsed)
    if isinstance(parsed, Rejected):
        return parsed
    reasons = _Reasons()
    resolution: SignalResolved | None = None
    try:
        resolution = SignalResolved.model_validate(parsed)
    except ValidationError as exc:
        reasons.from_pydantic(validation_errors(exc))
    _check_id(parsed, limits, reasons)
    opgelost = _date(parsed.get("datumOpgelost"))
    if opgelost is not None and opgelost > today:
        reasons.schema("datumOpgelost", "is in the future")
    if reasons.items or resolution is None:
        return Rejected(
            reasons.items or [_reason(ReasonCode.INVALID_SCHEMA, None, "invalid")],
            _readable_id(parsed),
        )
    return ValidResolution(resolution)
