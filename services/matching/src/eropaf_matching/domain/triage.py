"""Triage policy (data, per region with per-municipality overrides) and the triage decision.

The policy is YAML (``eropaf_matching/policy/<region>.yaml``) parsed into closed pydantic
models: a typo, an unknown rule, an unknown municipality or inconsistent thresholds fail at
load time with a message naming the place. Every decision lists the ids of the rules that
fired (``huisbezoek.crisis`` ...), so staff and the evaluation can see why.

The region's policy also holds ``adreskoppeling_dagen``, the window within which persons at
one address are one household (``domain.linking``): like the thresholds, a value the region
tunes, not a deployment setting.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eropaf_contracts.ddas import Contactsoort, Signaalpartner
from eropaf_contracts.events import OutreachKind, Urgency
from eropaf_matching.domain.linking import DEFAULT_ADDRESS_WINDOW
from eropaf_matching.domain.signals import SignalFacts

__all__ = [
    "CONTACTSOORT",
    "HuisbezoekRules",
    "PolicyError",
    "RegionPolicy",
    "TelefoonRules",
    "TriageDecision",
    "TriageInput",
    "TriagePolicy",
    "add_working_days",
    "parse_policy",
    "triage",
]

# How a decided outreach is registered in DDAS when it is carried out.
CONTACTSOORT: dict[OutreachKind, Contactsoort] = {
    OutreachKind.HOME_VISIT: Contactsoort.HUISBEZOEK,
    OutreachKind.PHONE: Contactsoort.TELEFOON,
    OutreachKind.LETTER: Contactsoort.BRIEF,
}


class PolicyError(ValueError):
    """The policy file is invalid; ``problems`` lists ``where: what`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid triage policy:\n  " + "\n  ".join(problems))
        self.problems = problems


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Closed):
    enabled: bool = True


class MeerdereSchuldeisers(Rule):
    min_partners: int = Field(default=2, ge=2)  # distinct creditors (partners) in the case


class Huurachterstand(Rule):
    min_bedrag: int = Field(default=1000, gt=0)  # open rent arrears, whole euros


class TelefoonBedrag(Rule):
    min_bedrag: int = Field(default=250, gt=0)  # total open arrears from which we call


def _known_rules(model: type[BaseModel], data: Any, section: str) -> Any:
    # A clearer message than pydantic's "extra inputs are not permitted" for rule ids.
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(model.model_fields))
        if unknown:
            known = ", ".join(sorted(model.model_fields))
            raise ValueError(f"unknown {section} rule(s) {unknown}; known rules: {known}")
    return data


class HuisbezoekRules(_Closed):
    """Any enabled rule that fires makes the outreach a duo home visit."""

    meerdere_schuldeisers: MeerdereSchuldeisers = MeerdereSchuldeisers()
    huurachterstand: Huurachterstand = Huurachterstand()
    crisis: Rule = Rule()
    warme_overdracht: Rule = Rule()
    herhaling: Rule = Rule()  # the household or creditor signalled before (grown / again)
    einde_levering: Rule = Rule()  # energy or water with the crisis flag: end of supply

    @model_validator(mode="before")
    @classmethod
    def _rules(cls, data: Any) -> Any:
        return _known_rules(cls, data, "huisbezoek")


class TelefoonRules(_Closed):
    """Without a home-visit rule: a call if one of these fires, else a letter."""

    bedrag: TelefoonBedrag = TelefoonBedrag()

    @model_validator(mode="before")
    @classmethod
    def _rules(cls, data: Any) -> Any:
        return _known_rules(cls, data, "telefoon")


class Termijnen(_Closed):
    """Deadline for the first contact attempt, in working days after the case opened."""

    crisis: int = Field(default=3, ge=1)
    hoog: int = Field(default=5, ge=1)
    normaal: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.crisis <= self.hoog <= self.normaal:
            raise ValueError(
                f"termijnen must satisfy crisis <= hoog <= normaal, got "
                f"{self.crisis}, {self.hoog}, {self.normaal}"
            )
        return self


class Prioriteit(_Closed):
    """Score that scheduling orders by within a deadline: higher is sooner."""

    crisis: int = Field(default=100, ge=0)
    hoog: int = Field(default=50, ge=0)
    normaal: int = Field(default=0, ge=0)
    per_schuldeiser: int = Field(default=10, ge=0)
    per_100_euro: int = Field(default=1, ge=0)
    max_bedrag_punten: int = Field(default=50, ge=0)


class TriagePolicy(_Closed):
    """The effective policy for one municipality."""

    minimum_bedrag: int = Field(default=75, ge=0)  # below (case total): not picked up
    herhaalde_melding_dagen: int = Field(default=90, ge=1)  # window for "herhaalde melding"
    # A case not picked up stays open this long (days since it opened) so that a further
    # signal can still tip the balance; then the daily sweep closes it as not picked up.
    niet_opgepakt_sluiten_na_dagen: int = Field(default=90, ge=1)
    huisbezoek: HuisbezoekRules = HuisbezoekRules()
    telefoon: TelefoonRules = TelefoonRules()
    termijnen: Termijnen = Termijnen()
    prioriteit: Prioriteit = Prioriteit()

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        for name, value in (
            ("huisbezoek.huurachterstand.min_bedrag", self.huisbezoek.huurachterstand.min_bedrag),
            ("telefoon.bedrag.min_bedrag", self.telefoon.bedrag.min_bedrag),
        ):
            if value < self.minimum_bedrag:
                raise ValueError(
                    f"{name} ({value}) is below minimum_bedrag ({self.minimum_bedrag}): "
                    "that rule could never fire"
                )
        return self


class RegionPolicy(_Closed):
    region: str
    defaults: TriagePolicy
    gemeenten: dict[str, TriagePolicy]  # effective policy per CBS code (overrides applied)
    feestdagen: frozenset[date] = frozenset()  # public holidays: not working days
    # Persons sharing an address are one household only with signals there at most this many
    # days apart (domain.linking). Region-wide, not per municipality: households cross
    # municipal borders when they move, and one rule keeps linking a function of the signals.
    adreskoppeling_dagen: int = Field(default=DEFAULT_ADDRESS_WINDOW.days, ge=1)

    @property
    def address_window(self) -> timedelta:
        return timedelta(days=self.adreskoppeling_dagen)

    def for_gemeente(self, gemeentecode: str) -> TriagePolicy:
        try:
            return self.gemeenten[gemeentecode]
        except KeyError:
            raise KeyError(f"no triage policy for municipality {gemeentecode!r}") from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(where: str, error: ValidationError) -> list[str]:
    out = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"])
        place = f"{where}.{loc}" if loc else where
        message = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{place}: {message}")
    return out


_ROOT_KEYS = frozenset({"region", "defaults", "gemeenten", "feestdagen", "adreskoppeling_dagen"})


def parse_policy(data: Any, *, region: str, gemeenten: Collection[str]) -> RegionPolicy:
    """Validate a parsed policy document for ``region`` serving ``gemeenten`` (CBS codes).

    Shape: ``{region, defaults: {...}, gemeenten: {"0356": {...overrides}}, feestdagen: [...],
    adreskoppeling_dagen: N}``; every served municipality gets the defaults plus its
    overrides (deep-merged).
    """
    if not isinstance(data, Mapping):
        raise PolicyError(["(root): expected a mapping"])
    problems: list[str] = []
    unknown_keys = sorted(set(data) - _ROOT_KEYS)
    if unknown_keys:
        problems.append(f"(root): unknown key(s) {unknown_keys}")
    if str(data.get("region", "")).casefold() != region.casefold():
        problems.append(f"region: policy is for {data.get('region')!r}, expected {region!r}")
    defaults_raw = data.get("defaults") or {}
    overrides = data.get("gemeenten") or {}
    if not isinstance(defaults_raw, Mapping) or not isinstance(overrides, Mapping):
        raise PolicyError([*problems, "defaults and gemeenten must be mappings"])
    try:
        defaults = TriagePolicy.model_validate(defaults_raw)
    except ValidationError as error:
        problems += _problems("defaults", error)
        raise PolicyError(problems) from None
    effective: dict[str, TriagePolicy] = {}
    for code in sorted(str(c) for c in overrides):
        if code not in gemeenten:
            problems.append(
                f"gemeenten.{code}: unknown municipality (region {region} serves "
                f"{', '.join(sorted(gemeenten))})"
            )
    base = defaults.model_dump()
    for code in sorted(gemeenten):
        override = overrides.get(code) or {}
        if not isinstance(override, Mapping):
            problems.append(f"gemeenten.{code}: expected a mapping of overrides")
            continue
        try:
            effective[code] = TriagePolicy.model_validate(_merge(base, override))
        except ValidationError as error:
            problems += _problems(f"gemeenten.{code}", error)
    feestdagen: set[date] = set()
    for raw in data.get("feestdagen") or []:
        try:
            feestdagen.add(raw if isinstance(raw, date) else date.fromisoformat(str(raw)))
        except ValueError:
            problems.append(f"feestdagen: {raw!r} is not a date (YYYY-MM-DD)")
    adreskoppeling_dagen = data.get("adreskoppeling_dagen", DEFAULT_ADDRESS_WINDOW.days)
    if (
        isinstance(adreskoppeling_dagen, bool)
        or not isinstance(adreskoppeling_dagen, int)
        or adreskoppeling_dagen < 1
    ):
        problems.append(
            f"adreskoppeling_dagen: expected a whole number of days >= 1, got "
            f"{adreskoppeling_dagen!r}"
        )
    if problems:
        raise PolicyError(problems)
    return RegionPolicy(
        region=region,
        defaults=defaults,
        gemeenten=effective,
        feestdagen=frozenset(feestdagen),
        adreskoppeling_dagen=adreskoppeling_dagen,
    )


def add_working_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The date ``days`` working days (Mon-Fri, not a holiday) after ``start``."""
    return _add_working_days(start, days, frozenset(holidays))


@functools.lru_cache(maxsize=4096)  # every case of a day asks the same few questions
def _add_working_days(start: date, days: int, holidays: frozenset[date]) -> date:
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            left -= 1
    return current


@dataclass(frozen=True)
class TriageInput:
    """What triage looks at: the case's open signals, and which of them are repeats."""

    open_signals: tuple[SignalFacts, ...]
    herhaalde_meldingen: frozenset[str]  # refs not picked up as "herhaalde melding"
    herhaling: bool  # the household or a creditor signalled before (see cases.herhaling)

    @property
    def actionable(self) -> tuple[SignalFacts, ...]:
        return tuple(s for s in self.open_signals if s.signal_ref not in self.herhaalde_meldingen)


@dataclass(frozen=True)
class TriageDecision:
    picked_up: bool
    outreach: OutreachKind | None  # None when not picked up
    urgency: Urgency | None
    deadline: date | None  # first contact by this date
    priority: int
    rule_ids: tuple[str, ...]  # rules that fired, in evaluation order


_UTILITIES = (Signaalpartner.ENERGIE, Signaalpartner.WATER)


def triage(
    policy: TriagePolicy, facts: TriageInput, *, start: date, holidays: Collection[date] = ()
) -> TriageDecision:
    """Decide whether and how to reach out. Pure; ``start`` is the day the clock starts."""
    actionable = facts.actionable
    if facts.open_signals and not actionable:
        return TriageDecision(False, None, None, None, 0, ("niet_opgepakt.herhaalde_melding",))
    if not actionable:
        return TriageDecision(False, None, None, None, 0, ("niet_opgepakt.geen_open_signalen",))
    # The facts the rules look at, in one pass (triage runs on every signal of a case).
    total: int | None = 0
    huur: int | None = 0  # rent arrears; unknown amounts do not count as high
    partners: set[str] = set()
    crisis = utility_crisis = warm = False
    for s in actionable:
        if s.bedrag is None:
            total = None
        elif total is not None:
            total += s.bedrag
        if s.partner_type == Signaalpartner.HUUR:
            huur = None if s.bedrag is None or huur is None else huur + s.bedrag
        partners.add(s.partner_code)
        if s.crisissignaal:
            crisis = True
            utility_crisis |= s.partner_type in _UTILITIES
        warm |= s.warme_overdracht
    # Unknown amounts count as "not below": we cannot tell, so we rather go.
    if total is not None and total < policy.minimum_bedrag:
        return TriageDecision(False, None, None, None, 0, ("niet_opgepakt.onder_minimum",))

    rules = policy.huisbezoek
    checks: tuple[tuple[str, Rule, bool], ...] = (
        (
            "meerdere_schuldeisers",
            rules.meerdere_schuldeisers,
            len(partners) >= rules.meerdere_schuldeisers.min_partners,
        ),
        (
            "huurachterstand",
            rules.huurachterstand,
            huur is not None and huur >= rules.huurachterstand.min_bedrag,
        ),
        ("crisis", rules.crisis, crisis),
        ("warme_overdracht", rules.warme_overdracht, warm),
        ("herhaling", rules.herhaling, facts.herhaling),
        ("einde_levering", rules.einde_levering, utility_crisis),
    )
    fired: list[str] = []
    fired += [f"huisbezoek.{rule_id}" for rule_id, rule, hit in checks if rule.enabled and hit]
    if fired:
        outreach = OutreachKind.HOME_VISIT
    elif policy.telefoon.bedrag.enabled and (
        total is None or total >= policy.telefoon.bedrag.min_bedrag
    ):
        outreach = OutreachKind.PHONE
        fired.append("telefoon.bedrag")
    else:
        outreach = OutreachKind.LETTER
        fired.append("brief.standaard")

    if crisis:
        urgency, days, base = Urgency.CRISIS, policy.termijnen.crisis, policy.prioriteit.crisis
    elif outreach is OutreachKind.HOME_VISIT:
        urgency, days, base = Urgency.HIGH, policy.termijnen.hoog, policy.prioriteit.hoog
    else:
        urgency, days, base = Urgency.NORMAL, policy.termijnen.normaal, policy.prioriteit.normaal
    fired.append(f"urgentie.{urgency.value}")
    p = policy.prioriteit
    bedrag_points = min(p.max_bedrag_punten, (total or 0) // 100 * p.per_100_euro)
    priority = base + p.per_schuldeiser * len(partners) + bedrag_points
    return TriageDecision(
        picked_up=True,
        outreach=outreach,
        urgency=urgency,
        deadline=add_working_days(start, days, holidays),
        priority=priority,
        rule_ids=tuple(fired),
    )
