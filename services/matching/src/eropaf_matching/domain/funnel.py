"""The outreach funnel of one municipality and period, on the scope of its DDAS delivery.

Pure. Over the delivery's cases (``ddas_export.cases_in_delivery``: the municipality's cases
active in the period) and signals (received in the period), as matching knows them now:

* ``signals`` -- the delivery's ``vroegsignalen``;
* ``cases`` -- its ``vroegsignaalzaken``;
* ``outreach`` -- of those cases, the ones picked up (``datum_opgepakt``: outreach decided);
* ``reached`` -- of those cases, the ones with a contact attempt that reached the household
  (a ``contactpoging`` with ``bereikt``);
* ``help_accepted`` -- of the reached cases, the ones whose ``resultaat`` is help
  ((budget)advice or quick fix, follow-up help financial or not), as in ``monitoring``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from eropaf_matching.domain.cases import HELP_ACCEPTED, Case
from eropaf_matching.domain.ddas_export import cases_in_delivery, signal_refs_in

__all__ = ["Funnel", "funnel"]


@dataclass(frozen=True)
class Funnel:
    gemeentecode: str
    start: date
    end: date
    signals: int
    cases: int
    outreach: int
    reached: int
    help_accepted: int


def funnel(cases: Iterable[Case], *, gemeentecode: str, start: date, end: date) -> Funnel:
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    mine = cases_in_delivery(cases, gemeentecode=gemeentecode, start=start, end=end)
    reached = [c for c in mine if c.contact_made]
    return Funnel(
        gemeentecode=gemeentecode,
        start=start,
        end=end,
        signals=len(signal_refs_in(mine, start=start, end=end)),
        cases=len(mine),
        outreach=sum(1 for c in mine if c.opgepakt_on is not None),
        reached=len(reached),
        help_accepted=sum(1 for c in reached if c.resultaat in HELP_ACCEPTED),
    )
