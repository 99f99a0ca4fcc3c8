from __future__ import annotations

from importlib.resources import files

import pytest

from eropaf_contracts.events import StaffRole
from eropaf_contracts.region import load_region
from eropaf_scheduling.domain.roster import RosterError, parse_availability, parse_roster
from eropaf_scheduling.domain.time import PartOfDay

pytestmark = pytest.mark.unit

HEADER = (
    "code,naam,email,organisatie,rol,gemeenten,beschikbaar,max_per_dag,max_per_week,taal,bericht\n"
)


def test_demo_roster_is_valid_and_fits_the_region() -> None:
    text = files("eropaf_contracts").joinpath("regions", "lekstroom-staff.csv").read_bytes()
    staff = parse_roster(text)
    region = load_region()
    roles = {m.rol for m in staff}
    assert roles == set(StaffRole)
    for m in staff:
        assert all(region.municipality(g) for g in m.gemeenten)
        if m.rol is StaffRole.MEDEWERKER:
            assert region.is_corporation(m.organisatie)
        else:
            assert region.team(m.organisatie) is not None
    corporations = {p.code for p in region.partners if region.is_corporation(p.code)}
    for corp in corporations:
        assert 2 <= sum(m.organisatie == corp for m in staff) <= 3


def test_semicolons_bom_and_comma() -> None:
    row = "shv-a,A,a@x.nl,wil,schuldhulpverlener,0356|0321,ma-ochtend|vr-avond,2,8,nl,direct\n"
    staff = parse_roster(("\ufeff" + HEADER + row).encode())
    assert staff[0].beschikbaar == {("ma", PartOfDay.OCHTEND), ("vr", PartOfDay.AVOND)}
    assert parse_roster((HEADER + row).replace(",", ";")) == staff


def test_every_bad_field_is_reported_with_line_and_column() -> None:
    bad = "X!,,nope,wil,boss,12,ma-nacht,x,-1,fr,soms\n"
    with pytest.raises(RosterError) as err:
        parse_roster(HEADER + bad)
    columns = {p.column for p in err.value.problems}
    assert columns == {
        "code",
        "naam",
        "email",
        "rol",
        "gemeenten",
        "beschikbaar",
        "max_per_dag",
        "max_per_week",
        "taal",
        "bericht",
    }
    assert all(p.line == 2 for p in err.value.problems)


def test_missing_columns_and_duplicates() -> None:
    with pytest.raises(RosterError, match="missing columns"):
        parse_roster("code,naam\nx,y\n")
    row = "shv-a,A,a@x.nl,wil,schuldhulpverlener,0356,ma-ochtend,2,8,nl,direct\n"
    with pytest.raises(RosterError, match="appears twice"):
        parse_roster(HEADER + row + row)


def test_availability_tokens() -> None:
    assert parse_availability("") == frozenset()
    with pytest.raises(ValueError):
        parse_availability("maandag-ochtend")
