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
from datetime import date

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
    ordered = list(signals)
    if not ordered:
        raise RoutingError("cannot route a case without open signals")
    latest = max(ordered, key=_signal_key)  # keys are unique: the last in signal order
    gemeentecode, team = _destination(region, latest.postcode_area)
    corporations = sorted(
        {s.partner_code for s in ordered if s.partner_type == Signaalpartner.HUUR}
    )
    return Routing(gemeentecode, team, tuple(corporations))


def _signal_key(signal: SignalFacts) -> tuple[date, str]:
    return signal.key


# Region -> PC4 area -> (gemeentecode, team): every case is routed again on every signal,
# always to one of a few hundred areas. Regions are immutable; the region is kept with its
# entries so that its id stays its own.
_DESTINATIONS: dict[int, tuple[Region, dict[str, tuple[str, str]]]] = {}


def _destination(region: Region, postcode_area: str) -> tuple[str, str]:
    cached = _DESTINATIONS.get(id(region))
    if cached is None or cached[0] is not region:
        cached = _DESTINATIONS[id(region)] = (region, {})
    known = cached[1].get(postcode_area)
    if known is not None:
        return known
    municipality = region.municipality_for_postcode(postcode_area)
    if municipality is None:
        raise RoutingError(f"postcode area {postcode_area} is not served by region {region.name}")
    team = region.team_for(municipality.code)
    if team is None:  # the region model validates this; kept for a clear error
        raise RoutingError(f"municipality {municipality.code} has no team")
    cached[1][postcode_area] = (municipality.code, team.code)
    return municipality.code, team.code
