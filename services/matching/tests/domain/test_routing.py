from __future__ import annotations

from datetime import date

import pytest

from eropaf_contracts.ddas import Signaalpartner
from eropaf_matching.domain.routing import RoutingError, route

pytestmark = pytest.mark.unit


def test_rent_goes_to_corporation_and_municipal_team(signal, region):
    routing = route(region, [signal("a", partner="jutphaas", pc4="3432")])
    assert routing.gemeentecode == "0356"
    assert routing.teams == ("jutphaas", "wil")


def test_several_corporations_all_go(signal, region):
    routing = route(
        region,
        [signal("a", partner="portaal", pc4="3401"), signal("b", partner="mitros", pc4="3401")],
    )
    assert routing.gemeentecode == "0353"
    assert routing.corporations == ("mitros", "portaal")


def test_without_corporation_the_municipal_team_goes_alone(signal, region):
    routing = route(
        region,
        [
            signal("a", partner="eneco", type=Signaalpartner.ENERGIE, pc4="4131"),
            signal("b", partner="zilveren-kruis", type=Signaalpartner.ZORG, pc4="4131"),
        ],
    )
    assert routing.gemeentecode == "1961"
    assert routing.teams == ("wil",)


def test_latest_address_decides_the_municipality(signal, region):
    routing = route(
        region,
        [
            signal("a", pc4="3431", datum=date(2026, 1, 5)),
            signal("b", pc4="3991", datum=date(2026, 2, 5)),
        ],
    )
    assert routing.gemeentecode == "0321"


def test_outside_region_is_an_error(signal, region):
    with pytest.raises(RoutingError, match="1012"):
        route(region, [signal("a", pc4="1012")])
    with pytest.raises(RoutingError):
        route(region, [])
