"""Matching's read use cases for other services (the staff portal): a case's signals, the
outreach funnel and the DDAS delivery of a municipality and period. They read; they never
take the matching lock or write."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, Protocol

from eropaf_contracts.ddas import validate_uitwisselmodel
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.ddas_export import (
    Organisatie,
    PersonalRecords,
    cases_in_delivery,
    delivery,
    signal_refs_in,
)
from eropaf_matching.domain.funnel import Funnel, funnel

__all__ = ["CaseReader", "InvalidDelivery", "case_signal_refs", "ddas_delivery", "outreach_funnel"]


class CaseReader(Protocol):
    async def case(self, case_ref: str) -> Case | None:
        """The case by its ref, or by a ref it had before (renamed, absorbed)."""

    async def cases_of(self, gemeentecode: str) -> list[Case]: ...


class InvalidDelivery(RuntimeError):
    """The delivery does not validate against the DDAS schema: it must not go out."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"the delivery is not valid DDAS v0.9 ({len(problems)} problems)")
        self.problems = problems


async def case_signal_refs(reader: CaseReader, case_ref: str) -> tuple[str, list[str]] | None:
    """(the case's current ref, all its signal refs, open and resolved, in signal order)."""
    case = await reader.case(case_ref)
    if case is None:
        return None
    return case.case_id, [s.signal_ref for s in sorted(case.signals.values(), key=lambda s: s.key)]


async def outreach_funnel(reader: CaseReader, gemeentecode: str, start: date, end: date) -> Funnel:
    return funnel(
        await reader.cases_of(gemeentecode), gemeentecode=gemeentecode, start=start, end=end
    )


async def ddas_delivery(
    reader: CaseReader,
    *,
    gemeentecode: str,
    start: date,
    end: date,
    organisatie: Organisatie,
    code_gegevensleverancier: str,
    aangeleverd_op: datetime,
    personal_records: PersonalRecords | None = None,
) -> dict[str, Any]:
    """The delivery ``eropaf ddas export`` writes, validated (InvalidDelivery otherwise).
    ``personal_records`` blocks (intake's client): it runs in a worker thread."""
    cases = await reader.cases_of(gemeentecode)
    read: PersonalRecords | None = None
    if personal_records is not None:
        mine = cases_in_delivery(cases, gemeentecode=gemeentecode, start=start, end=end)
        records = await asyncio.to_thread(
            personal_records, signal_refs_in(mine, start=start, end=end)
        )

        def read(_refs: list[str]) -> Any:
            return records

    document = delivery(
        cases,
        gemeentecode=gemeentecode,
        start=start,
        end=end,
        organisatie=organisatie,
        code_gegevensleverancier=code_gegevensleverancier,
        aangeleverd_op=aangeleverd_op,
        personal_records=read,
    )
    problems = validate_uitwisselmodel(document)
    if problems:
        raise InvalidDelivery(problems)
    return document
