"""The partner signal: one DDAS v0.9 ``vroegsignalen[]`` item, as a partner publishes it.

Only shape and types are checked here. Business rules (BSN 11-test, postcode format, date
order, which fields a match needs) belong to intake's domain, which reports them itself.
Field names on the wire are exactly DDAS's; Python attributes are snake_case aliases.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from eropaf_contracts.base import ContractModel, IsoDate, error_pairs
from eropaf_contracts.cloudevents import (
    SIGNAL_RESOLVED_TYPE,
    SIGNAL_SUBMITTED_TYPE,
    version_of_type,
)
from eropaf_contracts.ddas import Signaalpartner, Signaalstatus

__all__ = [
    "Client",
    "Contactgegevens",
    "PartnerSignal",
    "SignaalpartnerRef",
    "SignalResolved",
    "dump_ddas",
    "validation_errors",
]


class SignaalpartnerRef(ContractModel):
    """``signaalpartner``: which kind of creditor this is."""

    # Required (DDAS leaves it optional): intake must check it against the partner's types.
    type: Signaalpartner = Field(strict=False)


class Client(ContractModel):
    """``client``: the person the arrears are about. Personal data."""

    # Closed, unlike DDAS: a misspelt key ("postcode") would otherwise vanish silently.
    burgerservicenummer: str | None = Field(default=None, alias="Burgerservicenummer")
    voorletters: str | None = Field(default=None, alias="Voorletters")
    voorvoegsel: str | None = Field(default=None, alias="Voorvoegsel")
    achternaam: str | None = Field(default=None, alias="Achternaam")
    geboortedatum: IsoDate | None = Field(default=None, alias="Geboortedatum")
    straatnaam: str | None = Field(default=None, alias="Straatnaam")
    postcode: str | None = Field(default=None, alias="Postcode")
    huisnummer: str | None = Field(default=None, alias="Huisnummer")
    huisnummertoevoeging: str | None = Field(default=None, alias="Huisnummertoevoeging")
    plaatsnaam: str | None = Field(default=None, alias="Plaatsnaam")


class Contactgegevens(ContractModel):
    """Extension to DDAS: contact details a creditor may pass on by law."""

    telefoonnummer: str | None = None
    email: str | None = None


class PartnerSignal(ContractModel):
    """Value of a ``nl.vroegsignalering.signal.submitted.v1`` message."""

    VERSION: ClassVar[int] = version_of_type(SIGNAL_SUBMITTED_TYPE)

    id: str = Field(alias="ID", min_length=1)
    crisissignaal: bool | None = None
    warme_overdracht: bool | None = Field(default=None, alias="warmeOverdracht")
    bedrag: int | None = None  # whole euros, as DDAS
    ontstaansdatum: IsoDate | None = None
    signaaldatum: IsoDate | None = None
    # Accepted because DDAS has it, ignored because the status is ours to decide.
    status: Signaalstatus | None = Field(default=None, strict=False)
    signaalpartner: SignaalpartnerRef
    client: Client
    contactgegevens: Contactgegevens | None = None


class SignalResolved(ContractModel):
    """Value of a ``nl.vroegsignalering.signal.resolved.v1`` message."""

    VERSION: ClassVar[int] = version_of_type(SIGNAL_RESOLVED_TYPE)

    id: str = Field(alias="ID", min_length=1)
    datum_opgelost: IsoDate = Field(alias="datumOpgelost")


def dump_ddas(model: BaseModel) -> dict[str, Any]:
    """The wire (DDAS-shaped) JSON object of a contract model: DDAS names, no nulls."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def validation_errors(exc: ValidationError) -> list[tuple[str | None, str]]:
    """``(field, message)`` pairs for ``invalid_schema`` reasons, e.g. ``client.Postcode``."""
    return error_pairs(exc)
