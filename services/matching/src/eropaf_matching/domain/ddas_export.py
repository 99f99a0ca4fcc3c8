"""DDAS v0.9 export: one ``Uitwisselmodel`` delivery for one municipality and period.

Pure: built from case records; the client's personal fields come from a callback (intake's
audited API) or are left out (``--no-personal-data``: the schema requires the ``client``
object on every signal but none of its fields, so it is then ``{}``).

Scope of a delivery:
* ``vroegsignalen``: the municipality's signals received in the period;
* ``vroegsignaalzaken``: the municipality's cases active in the period (opened on or before
  its end, not closed before its start), each referring to all its signals -- signals from
  an earlier period were in that period's delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from eropaf_matching.domain.cases import Case

__all__ = [
    "CLIENT_FIELDS",
    "Organisatie",
    "PersonalData",
    "PersonalRecords",
    "build_uitwisselmodel",
    "cases_in_delivery",
    "delivery",
    "signal_refs_in",
]

# The client fields DDAS knows; anything else from the callback is a programming error.
CLIENT_FIELDS: frozenset[str] = frozenset(
    {
        "Burgerservicenummer",
        "Voorletters",
        "Voorvoegsel",
        "Achternaam",
        "Geboortedatum",
        "Straatnaam",
        "Postcode",
        "Huisnummer",
        "Huisnummertoevoeging",
        "Plaatsnaam",
    }
)

PersonalData = Callable[[str], Mapping[str, str] | None] | Mapping[str, Mapping[str, str]]
"""signal_ref -> DDAS client fields (callback or dict); None/missing: leave them out."""

PersonalRecords = Callable[[list[str]], Mapping[str, tuple[Mapping[str, str], str | None]]]
"""signal_refs -> {signal_ref: (DDAS client fields, the partner's signal ID or None)} for
the refs the reader has data for (intake's audited API)."""


@dataclass(frozen=True)
class Organisatie:
    """``aanleverende_organisatie``: who delivers to CBS for the municipality."""

    naam: str
    kvk_nummer: str | None = None
    contactpersonen: tuple[Mapping[str, str], ...] = ()  # naam, telefoonnummer, email, ...

    def as_ddas(self) -> dict[str, Any]:
        out: dict[str, Any] = {"naam": self.naam}
        if self.kvk_nummer:
            out["kvk-nummer"] = self.kvk_nummer
        if self.contactpersonen:  # the schema wants at least one when the list is present
            out["contactpersoonen"] = [dict(c) for c in self.contactpersonen]
        return out


def _client(personal_data: PersonalData | None, signal_ref: str) -> dict[str, str]:
    if personal_data is None:
        return {}
    fields = (
        personal_data.get(signal_ref)
        if isinstance(personal_data, Mapping)
        else personal_data(signal_ref)
    )
    if not fields:
        return {}
    unknown = sorted(set(fields) - CLIENT_FIELDS)
    if unknown:
        raise ValueError(f"personal data for {signal_ref!r} has non-DDAS fields {unknown}")
    return {k: v for k, v in fields.items() if v}  # empty strings say nothing: leave out


def _active(case: Case, start: date, end: date) -> bool:
    return case.opened_on <= end and (case.closed_on is None or case.closed_on >= start)


def cases_in_delivery(
    cases: Iterable[Case], *, gemeentecode: str, start: date, end: date
) -> list[Case]:
    """The delivery's ``vroegsignaalzaken``: the municipality's cases active in the period."""
    return sorted(
        (c for c in cases if c.gemeentecode == gemeentecode and _active(c, start, end)),
        key=lambda c: c.earliest_key,
    )


def signal_refs_in(cases: Iterable[Case], *, start: date, end: date) -> list[str]:
    """The delivery's ``vroegsignalen`` (of :func:`cases_in_delivery`): signals received in
    the period, in delivery order."""
    return [
        s.signal_ref
        for case in cases
        for s in sorted(case.signals.values(), key=lambda s: s.key)
        if start <= s.received_at.date() <= end
    ]


def delivery(
    cases: Iterable[Case],
    *,
    gemeentecode: str,
    start: date,
    end: date,
    organisatie: Organisatie,
    code_gegevensleverancier: str,
    aangeleverd_op: datetime,
    personal_records: PersonalRecords | None = None,
) -> dict[str, Any]:
    """The delivery of ``eropaf ddas export``: without ``personal_records`` the client fields
    are left out; with it they are read for the delivery's own signals only (every read is
    audited by intake) and the partners' signal IDs replace the refs."""
    common: dict[str, Any] = {
        "gemeentecode": gemeentecode,
        "start": start,
        "end": end,
        "organisatie": organisatie,
        "code_gegevensleverancier": code_gegevensleverancier,
        "aangeleverd_op": aangeleverd_op,
    }
    cases = list(cases)
    if personal_records is None:
        return build_uitwisselmodel(cases, **common)
    mine = cases_in_delivery(cases, gemeentecode=gemeentecode, start=start, end=end)
    records = personal_records(signal_refs_in(mine, start=start, end=end))
    return build_uitwisselmodel(
        cases,
        **common,
        personal_data={ref: client for ref, (client, _) in records.items()},
        signal_ids={ref: sid for ref, (_, sid) in records.items() if sid},
    )


def build_uitwisselmodel(
    cases: Iterable[Case],
    *,
    gemeentecode: str,
    start: date,
    end: date,
    organisatie: Organisatie,
    code_gegevensleverancier: str,
    aangeleverd_op: datetime,
    personal_data: PersonalData | None = None,
    signal_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The delivery document (validate with ``eropaf_contracts.ddas.validate_uitwisselmodel``).

    ``signal_ids`` maps our pseudonymous signal_ref to the partner's signal ``ID`` when the
    caller has it (intake); otherwise the signal_ref is the ID in the delivery.
    """
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    if aangeleverd_op.tzinfo is None:
        raise ValueError("aangeleverd_op must be timezone-aware")

    def ddas_id(ref: str) -> str:
        return signal_ids.get(ref, ref) if signal_ids else ref

    mine = cases_in_delivery(cases, gemeentecode=gemeentecode, start=start, end=end)
    vroegsignalen: list[dict[str, Any]] = []
    zaken: list[dict[str, Any]] = []
    for case in mine:
        for signal in sorted(case.signals.values(), key=lambda s: s.key):
            if not start <= signal.received_at.date() <= end:
                continue
            item: dict[str, Any] = {
                "ID": ddas_id(signal.signal_ref),
                "crisissignaal": signal.crisissignaal,
                "warmeOverdracht": signal.warme_overdracht,
                "signaalpartner": {"type": signal.partner_type.value},
                "client": _client(personal_data, signal.signal_ref),
            }
            if signal.bedrag is not None:
                item["bedrag"] = signal.bedrag
            if signal.ontstaansdatum is not None:
                item["ontstaansdatum"] = signal.ontstaansdatum.isoformat()
            if signal.signaaldatum is not None:
                item["signaaldatum"] = signal.signaaldatum.isoformat()
            status = case.signal_status(signal.signal_ref)
            if status is not None:
                item["status"] = status.value
            vroegsignalen.append(item)
        dates = sorted(s.datum for s in case.signals.values())
        zaak: dict[str, Any] = {
            "matchingsdatum": case.opened_on.isoformat(),
            # The period over which signals were matched into this case.
            "startdatum_matchtingperiode": dates[0].isoformat(),  # sic: the schema's spelling
            "einddatum_matchingperiode": dates[-1].isoformat(),
            "vroegsignalen": [
                {"ID": ddas_id(s.signal_ref)}
                for s in sorted(case.signals.values(), key=lambda s: s.key)
            ],
        }
        if case.opgepakt_on is not None:
            zaak["datum_opgepakt"] = case.opgepakt_on.isoformat()
        if case.resultaat is not None:
            zaak["resultaat"] = case.resultaat.value
        if case.contactpogingen:
            zaak["contactpogingen"] = [
                {
                    "soort": a.soort.value,
                    "bereikt": a.bereikt,
                    "datum": a.datum.isoformat(),
                    **({"dagdeel": a.dagdeel.value} if a.dagdeel else {}),
                }
                for a in case.contactpogingen
            ]
        zaken.append(zaak)

    levering: dict[str, Any] = {
        "teller": 1,
        "gemeentecode": gemeentecode,
        "aanleverende_organisatie": organisatie.as_ddas(),
        "vroegsignalen": vroegsignalen,
        "vroegsignaalzaken": zaken,
    }
    return {
        "startdatumLevering": start.isoformat(),
        "einddatumLevering": end.isoformat(),
        "aanleverdatumEnTijd": aangeleverd_op.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "codeGegevensleverancier": code_gegevensleverancier,
        "leveringen": [levering],
    }
