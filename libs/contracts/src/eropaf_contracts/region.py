"""Region configuration: municipalities, their postcode areas and teams, and the partners.

A region is data (``regions/<name>.yaml``), not code: serving another region means writing
another file. ``load_region(None)`` gives the packaged Lekstroom pilot region.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cached_property
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.topics import validate_partner_code

__all__ = [
    "Municipality",
    "Partner",
    "Region",
    "Team",
    "TravelTime",
    "load_region",
    "postcode_area",
]

_POSTCODE = re.compile(r"([1-9]\d{3})([A-Z]{2})?")


def postcode_area(postcode: str) -> str | None:
    """The PC4 area of a Dutch postcode ("3431AB", "3431 ab", "3431"), or None if not one."""
    match = _POSTCODE.fullmatch(re.sub(r"\s+", "", postcode).upper())
    return match.group(1) if match else None


class _ConfigModel(BaseModel):
    # Lax on purpose (YAML gives lists where we want tuples) but closed: typos must fail.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(_ConfigModel):
    """A debt-counselling team that takes cases for one or more municipalities."""

    code: str
    name: str

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return validate_partner_code(value)  # same shape as partner codes: slug


class Municipality(_ConfigModel):
    code: str = Field(pattern=r"^\d{4}$")  # CBS gemeentecode, e.g. "0356"
    name: str
    team: str
    pc4: list[tuple[int, int]] = Field(min_length=1)  # inclusive [first, last] ranges

    @field_validator("pc4")
    @classmethod
    def _ranges(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for first, last in value:
            if not (1000 <= first <= last <= 9999):
                raise ValueError(
                    f"PC4 range [{first}, {last}] must satisfy 1000 <= first <= last <= 9999"
                )
        return value

    def covers(self, pc4: int) -> bool:
        return any(first <= pc4 <= last for first, last in self.pc4)


class Partner(_ConfigModel):
    code: str
    name: str
    types: list[Signaalpartner] = Field(min_length=1)  # DDAS types it may signal

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return validate_partner_code(value)

    @field_validator("types")
    @classmethod
    def _unique(cls, value: list[Signaalpartner]) -> list[Signaalpartner]:
        if len(set(value)) != len(value):
            raise ValueError("partner types must be unique")
        return value


class TravelTime(_ConfigModel):
    """Travel time by car between two municipalities (either direction), in minutes."""

    between: tuple[str, str]
    minutes: int = Field(ge=0, le=600)


class Region(_ConfigModel):
    name: str
    teams: list[Team] = Field(min_length=1)
    municipalities: list[Municipality] = Field(min_length=1)
    partners: list[Partner] = Field(default_factory=list)
    # Public holidays: no visits are planned on them (scheduling).
    holidays: list[date] = Field(default_factory=list)
    # Travel times between municipalities; a pair not listed counts as far apart.
    travel_minutes: list[TravelTime] = Field(default_factory=list)
    travel_within_municipality_minutes: int = Field(default=15, ge=0, le=600)
    visit_minutes: int = Field(default=60, ge=15, le=240)  # a home visit's fixed duration
    # The region policy's last home-visit attempt: not reached then, the case ends as
    # "Definitief geen contact kunnen krijgen" (CONTRACT 4.2). Unset: scheduling's setting.
    home_visit_attempts: int | None = Field(default=None, ge=1, le=10)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique("team code", [t.code for t in self.teams])
        _unique("municipality code", [m.code for m in self.municipalities])
        _unique("partner code", [p.code for p in self.partners])
        team_codes = {t.code for t in self.teams}
        for m in self.municipalities:
            if m.team not in team_codes:
                raise ValueError(f"municipality {m.code} refers to unknown team {m.team!r}")
        muni_codes = {m.code for m in self.municipalities}
        for t in self.travel_minutes:
            for code in t.between:
                if code not in muni_codes:
                    raise ValueError(f"travel time names unknown municipality {code!r}")
        # No PC4 may belong to two municipalities: routing must be unambiguous.
        ranges = sorted((first, last, m.code) for m in self.municipalities for first, last in m.pc4)
        for (_, last_a, code_a), (first_b, _, code_b) in pairwise(ranges):
            if first_b <= last_a:
                raise ValueError(f"PC4 ranges overlap at {first_b} ({code_a} and {code_b})")
        return self

    @cached_property
    def _by_pc4(self) -> dict[int, Municipality]:
        return {
            pc4: m
            for m in self.municipalities
            for first, last in m.pc4
            for pc4 in range(first, last + 1)
        }

    def municipality_for_postcode(self, postcode: str) -> Municipality | None:
        """The served municipality of a postcode ("3431AB", "3431 ab", "3431"), or None."""
        area = postcode_area(postcode)
        return None if area is None else self._by_pc4.get(int(area))

    def municipality(self, code: str) -> Municipality | None:
        return next((m for m in self.municipalities if m.code == code), None)

    def team(self, code: str) -> Team | None:
        return next((t for t in self.teams if t.code == code), None)

    def team_for(self, gemeentecode: str) -> Team | None:
        """The team that takes cases of a municipality."""
        m = self.municipality(gemeentecode)
        return None if m is None else self.team(m.team)

    def partner(self, code: str) -> Partner | None:
        return next((p for p in self.partners if p.code == code), None)

    def is_corporation(self, code: str) -> bool:
        """A housing corporation: a partner that signals rent arrears (``Huur``)."""
        partner = self.partner(code)
        return partner is not None and Signaalpartner.HUUR in partner.types

    def travel_time(self, a: str, b: str) -> int | None:
        """Minutes between two municipalities; None when the region lists no time for them."""
        if a == b:
            return self.travel_within_municipality_minutes
        for t in self.travel_minutes:
            if set(t.between) == {a, b}:
                return t.minutes
        return None


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def load_region(path: str | Path | None = None) -> Region:
    """Load and validate a region file; None loads the packaged Lekstroom region."""
    if path is None:
        text = files("eropaf_contracts").joinpath("regions", "lekstroom.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data: Any = yaml.safe_load(text)
    return Region.model_validate(data)
