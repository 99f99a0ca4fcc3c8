"""The repository writes its bulk rows with one encoder (``case_rows.encode``, orjson); these
tests hold it to what ``json.dumps`` gives for the dict version of the row (what was written
before), and the alias update to what one UPDATE per alias does."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner
from eropaf_contracts.region import load_region
from eropaf_matching.adapters import case_rows, repository
from eropaf_matching.domain.cases import (
    Case,
    ContactAttempt,
    close_case,
    record_contact_attempt,
)
from eropaf_matching.domain.linking import Assignment, LinkInput
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_matching.policy import load_policy

pytestmark = pytest.mark.unit

REGION = load_region()
POLICY = load_policy(region=REGION)


def _signal(ref: str, day: int, **more: object) -> SignalFacts:
    d = date(2026, 10, day)
    facts: dict[str, object] = {
        "signal_ref": ref,
        "partner_code": f"p-{ref[:4]}",
        "partner_type": Signaalpartner.HUUR,
        "gemeentecode": "0356",
        "postcode_area": "3431",
        "bedrag": 600,
        "ontstaansdatum": date(2026, 8, 1),
        "signaaldatum": d,
        "crisissignaal": False,
        "warme_overdracht": True,
        "match_tokens": {MatchTokenKind.BSN: "1" * 32, MatchTokenKind.ADDRESS: "2" * 32},
        "received_at": datetime.combine(d, time(9), tzinfo=UTC),
    }
    facts.update(more)
    return SignalFacts(**facts)  # type: ignore[arg-type]


def _json_default(value: object) -> str:
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dumped(row: object) -> object:
    # What the dict rows went through before: json.dumps with dates as ISO text.
    return json.loads(json.dumps(row, default=_json_default))


SIGNALS = [
    _signal("a" * 32, 1),
    _signal(
        "b" * 32,
        2,
        bedrag=None,
        ontstaansdatum=None,
        signaaldatum=None,
        crisissignaal=True,
        warme_overdracht=False,
        partner_type=Signaalpartner.ENERGIE,
        match_tokens={},
        received_at=datetime(2026, 10, 2, 9, 30, 1, 250, tzinfo=timezone(timedelta(hours=2))),
        revision=3,
    ),
    _signal("c" * 32, 3, partner_code='odd "code" \\ é', postcode_area="3401"),
]


@pytest.mark.parametrize("signal", SIGNALS, ids=["plain", "unknowns", "escapes"])
def test_facts_json_is_the_facts_dict(signal: SignalFacts) -> None:
    text = case_rows.encode(case_rows.facts_to_json(signal))
    assert json.loads(text) == _dumped(repository.facts_to_json(signal))
    assert repository.facts_from_json(json.loads(text)) == signal


def _cases() -> list[Case]:
    matcher = Matcher(POLICY, REGION)
    for s in SIGNALS[:2]:
        matcher.accept(s)
    case = matcher.case_of("a" * 32)
    attempt = ContactAttempt(Contactsoort.HUISBEZOEK, True, date(2026, 10, 9), Dagdeel.AVOND)
    contacted = record_contact_attempt(case, attempt)
    closed = close_case(contacted, Eindresultaat.GEEN_HULP_NODIG, date(2026, 10, 10))
    unrouted = Matcher(POLICY, REGION)
    fresh = unrouted.accept(SIGNALS[2]).case
    return [case, contacted, closed, replace(fresh, routing=None)]


@pytest.mark.parametrize("index", range(4))
def test_case_row_json_is_the_case_row(index: int) -> None:
    case = _cases()[index]
    text = case_rows.encode(case_rows.case_row(case))
    assert json.loads(text) == _dumped(case_rows.case_row(case))


def test_signal_row_json_is_the_match_signal_row() -> None:
    for signal in SIGNALS:
        link = LinkInput.of(signal)
        assignment = Assignment("3" * 32, "4" * 32)
        row = json.loads(case_rows.encode(case_rows.signal_row(link, assignment)))
        assert row == {
            "signal_ref": signal.signal_ref,
            "datum": signal.datum.isoformat(),
            "tokens": {k.value: v for k, v in signal.match_tokens.items()},
            "person_id": assignment.person_id,
            "household_id": assignment.household_id,
        }


def _one_update_per_alias(stored: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    out = dict(stored)
    for old, new in aliases.items():
        out = {k: (new if v == old else v) for k, v in out.items()}
    return out


@pytest.mark.parametrize(
    "aliases",
    [
        {"a": "b"},
        {"a": "c", "b": "c"},
        {"a": "b", "b": "b"},
        {"c": "a", "a": "b"},  # a later alias moves what an earlier one pointed to
        {"x": "y", "c": "a", "a": "b", "y": "z"},
    ],
)
def test_followed_aliases_do_what_one_update_per_alias_does(aliases: dict[str, str]) -> None:
    stored = {f"old-{v}": v for v in ("a", "b", "c", "x", "y", "z", "q")}
    followed = repository._followed(aliases)
    in_one_go = {k: followed.get(v, v) for k, v in stored.items()}
    assert in_one_go == _one_update_per_alias(stored, aliases)
