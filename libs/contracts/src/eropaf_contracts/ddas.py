"""DDAS v0.9 (VNG "Uitwisselmodel" for early signals): the packaged official schema,
validation of a delivery, and its enumerations.

The enums are hand-written so that mypy and editors know the members; the unit tests assert
that their value sets equal the schema's ``$defs`` exactly, so they cannot drift.
"""

from __future__ import annotations

import copy
import json
from datetime import time
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

from eropaf_contracts.base import is_rfc3339

__all__ = [
    "DDAS_VERSION",
    "Contactsoort",
    "Dagdeel",
    "Eindresultaat",
    "Signaalpartner",
    "Signaalstatus",
    "ddas_enum_values",
    "ddas_example",
    "ddas_schema",
    "validate_uitwisselmodel",
]

DDAS_VERSION = "0.9"
_SCHEMA_FILE = "json_schema_Uitwisselmodel.json"
EXAMPLES = ("enkelvoudigVoorbeeld.json", "meervoudigVoorbeeld.json")


def _read_json(name: str) -> Any:
    resource = files("eropaf_contracts").joinpath("ddas", f"v{DDAS_VERSION}", name)
    return json.loads(resource.read_text(encoding="utf-8"))


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = _read_json(_SCHEMA_FILE)
    return schema


def ddas_schema() -> dict[str, Any]:
    """The official DDAS v0.9 JSON Schema (a fresh copy; callers may mutate it)."""
    return copy.deepcopy(_schema())


def ddas_example(name: str) -> Any:
    """One of the official example deliveries (``enkelvoudigVoorbeeld.json`` ...)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown DDAS example {name!r}; choose from {EXAMPLES}")
    return _read_json(name)


def ddas_enum_values(def_name: str) -> list[str]:
    """The values of an enum in the schema's ``$defs``, e.g. ``EnumSignaalpartner``."""
    values: list[str] = _schema()["$defs"][def_name]["enum"]
    return list(values)


def _check_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    try:
        time.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_date_time(value: object) -> bool:
    return not isinstance(value, str) or is_rfc3339(value)


@cache
def _validator() -> Draft202012Validator:
    # jsonschema checks "date-time"/"time" only with optional extra packages; we register our
    # own so that validation does not silently skip them when those are absent.
    checker = FormatChecker()
    checker.checks("date-time")(_check_date_time)
    checker.checks("time")(_check_time)
    Draft202012Validator.check_schema(_schema())
    return Draft202012Validator(_schema(), format_checker=checker)


def _path(error: SchemaError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def validate_uitwisselmodel(doc: Any) -> list[str]:
    """Validate a DDAS delivery; return readable messages (``path: problem``), empty if valid."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e)}: {e.message}" for e in errors]


class Signaalpartner(StrEnum):
    """``EnumSignaalpartner``: the kind of creditor that sends a signal."""

    ENERGIE = "Energie"
    HUUR = "Huur"
    HYPOTHEEK = "Hypotheek"
    CAK_ZORGVERZEKERINGEN = "CAK Zorgverzekeringen"
    ZORG = "Zorg"
    WATER = "Water"
    DUO = "DUO"
    BELASTINGDIENST = "Belastingdienst"
    CAK_EIGEN_BIJDRAGE = "CAK Eigen bijdrage"
    OVERIGE = "Overige"
    DIENST_TOESLAGEN = "Dienst Toeslagen"


class Contactsoort(StrEnum):
    """``EnumContactsoort``: how a contact attempt was made."""

    MAIL = "Mail"
    BRIEF = "Brief"
    SMS_WHATSAPP = "SMS/Whatsapp"
    TELEFOON = "Telefoon"
    HUISBEZOEK = "Huisbezoek"
    KAARTJE = "Kaartje"
    OVERIGE = "Overige"
    ADMINISTRATIEF = "Administratief"


class Eindresultaat(StrEnum):
    """``EnumEindresultaat``: the end result of a case (vroegsignaalzaak)."""

    NIET_OPGEPAKT_HERHAALDE_MELDING = "Niet opgepakt: herhaalde melding"
    NIET_OPGEPAKT_ONTERECHT_SIGNAAL = "Niet opgepakt: onterecht signaal"
    INWONER_OVERLEDEN = "Inwoner is overleden"
    GEEN_INWONER = "Persoon is geen inwoner (meer) in de gemeente"
    NIET_OPGEPAKT_ANDERE_REDEN = "Niet opgepakt: andere reden"
    AL_BEKEND_BIJ_SCHULDHULPVERLENING = "Inwoner al bekend bij schuldhulpverlening"
    ANDER_LOPEND_TRAJECT = "Inwoner heeft al een ander lopend traject"
    DEFINITIEF_GEEN_CONTACT = "Definitief geen contact kunnen krijgen"
    GEEN_REACTIE_NA_EERDER_CONTACT = "Geen reactie na eerder contact"
    GEEN_HULP_NODIG = "Inwoner hoeft geen hulp vanuit vroegsignalering"
    ZELF_BETAALD_OF_REGELING = "Inwoner heeft zelf al betaald/betalingsregeling getroffen"
    BUDGETADVIES_OF_QUICK_FIX = "(Budget)advies en/of quick fix"
    VERVOLGHULP_FINANCIEEL = "Vervolghulp en/of verwijzing financieel"
    VERWIJZING_ZONDER_CONTACT = "Verwijzing zonder contact"
    VERVOLGHULP_NIET_FINANCIEEL = "Vervolghulp en/of verwijzing niet financieel"


class Dagdeel(StrEnum):
    """``EnumDagdeel``: part of day of a contact attempt."""

    OCHTEND = "Ochtend"
    MIDDAG = "Middag"
    AVOND = "Avond"


class Signaalstatus(StrEnum):
    """``EnumSignaalstatus``: the status of a single signal in a delivery."""

    NOG_NIET_OPGEPAKT = "Nog niet opgepakt"
    NIET_OPGEPAKT_ONTERECHT_SIGNAAL = "Niet opgepakt: onterecht signaal"
    INWONER_OVERLEDEN = "Inwoner is overleden"
    GEEN_INWONER = "Persoon is geen inwoner (meer) in de gemeente"
    NIET_OPGEPAKT_HERHAALDE_MELDING = "Niet opgepakt: herhaalde melding"
    NIET_OPGEPAKT_ANDERE_REDEN = "Niet opgepakt: andere reden"


# Which schema enum each Python enum mirrors (used by the equality test).
ENUM_DEFS: dict[str, type[StrEnum]] = {
    "EnumSignaalpartner": Signaalpartner,
    "EnumContactsoort": Contactsoort,
    "EnumEindresultaat": Eindresultaat,
    "EnumDagdeel": Dagdeel,
    "EnumSignaalstatus": Signaalstatus,
}
