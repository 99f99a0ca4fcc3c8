"""Routing: which municipality handles a case, and which team goes.

Municipality: from the PC4 area of the household's most recent signal (a household that
moved is handled where it lives now), via the region's PC4 ranges. Team: the
municipality's debt-counselling team from the region data (WIL in Lekstroom, or a
municipality's own service), joined for rent arrears by each housing corporation that
signalled -- the Vroeg Eropaf duo. Without a corporation (only utility or insurer signals)
the municipal team goes alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import Region
from eropaf_matching.domain.signals import SignalFacts

__all__ = ["Routing", "RoutingError", "route"]


class RoutingError(ValueError):
    """The case cannot be routed (postcode area outside the region, no team)."""


@dataclass(frozen=True)
class Routing:
    gemeentecode: str
    team: str  # the municipal debt-counselling team (region ``teams[].code``)
    corporations: tuple[str, ...]  # partner codes of corporations that join the visit

    @property
    def teams(self) -> tuple[str, ...]:
        """Everyone who goes: corporations first, then the municipal team."""
        return (*self.corporations, self.team)


def route(region: Region, signals: Iterable[SignalFacts]) -> Routing:
    """Route a case by its open signals (at least one)."""
    ordered = sorted(signals, key=lambda s: s.key)
    if not ordered:
        raise RoutingError("cannot route a case without open signals")
    latest = ordered[-1]
    municipality = region.municipality_for_postcode(latest.postcode_area)
    if municipality is None:
        raise RoutingError(
            f"postcode area {latest.postcode_area} is not served by region {region.name}"
        )
    team = region.team_for(municipality.code)
    if team is None:  # the region model validates this; kept for a clear error
        raise RoutingError(f"municipality {municipality.code} has no team")
    corporations = sorted(
        {s.partner_code for s in ordered if s.partner_type == Signaalpartner.HUUR}
    )
    return Routing(municipality.code, team.code, tuple(corporations))
