"""The matcher's lookups by signal (``CaseStore``, ``LinkIndex.household_of``) agree with the
plain definitions they replace: scanning every case / every assignment."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.region import Region
from eropaf_matching.domain.cases import Case
from eropaf_matching.domain.matcher import CaseStore, Matcher
from eropaf_matching.domain.triage import RegionPolicy

from .conftest import MakeSignal

pytestmark = pytest.mark.unit

PARTNERS = (
    ("mitros", Signaalpartner.HUUR),
    ("eneco", Signaalpartner.ENERGIE),
    ("zilveren-kruis", Signaalpartner.ZORG),
)


def _scan(cases: dict[str, Case], ref: str) -> Case | None:
    return next((c for c in cases.values() if ref in c.signals), None)


def test_lookups_agree_with_full_scans_through_merges_renames_and_closes(
    signal: MakeSignal, policy: RegionPolicy, region: Region
) -> None:
    rng = random.Random(3)
    matcher = Matcher(policy, region)
    refs: list[str] = []
    for n in range(400):
        person = rng.randrange(60)
        partner, kind = rng.choice(PARTNERS)
        ref = f"s{n}"
        matcher.accept(
            signal(
                ref,
                partner=partner,
                type=kind,
                bedrag=rng.choice((150, 600, 1500)),
                datum=date(2026, 1, 5) + timedelta(days=rng.randrange(60)),
                bsn=f"b{person}" if rng.random() < 0.7 else None,
                surname=f"n{person}",
                # Some persons move in with another: households merge, cases are renamed.
                address=f"a{person // 2 if rng.random() < 0.9 else rng.randrange(30)}",
            )
        )
        refs.append(ref)
        if rng.random() < 0.1:  # a household pays everything: its case closes
            case = matcher.case_of(rng.choice(refs))
            for open_signal in case.open_signals if case.is_open else ():
                matcher.resolve(open_signal.signal_ref, date(2026, 4, 1))

        if n % 50 == 49:
            plain = dict(matcher.cases)
            for r in refs:
                assert matcher.cases.of_signal(r) == _scan(plain, r)
                household = {
                    x
                    for x, a in matcher.links.assignments.items()
                    if a.household_id == matcher.links.assignments[r].household_id
                }
                assert matcher.links.household_of(r) == household
                assert matcher.cases.holding(household) == sorted(
                    (c for c in plain.values() if c.signals.keys() & household),
                    key=lambda c: c.case_id,
                )
    assert any(len(c.signals) > 2 for c in matcher.cases.values())
    assert any(not c.is_open for c in matcher.cases.values())


def test_case_store_keeps_its_index_through_every_dict_operation(signal: MakeSignal) -> None:
    a = Case("A", "h", date(2026, 1, 5), {"x": signal("x"), "y": signal("y")})
    b = Case("B", "h", date(2026, 1, 5), {"z": signal("z")})
    store = CaseStore({"A": a})
    store.update(B=b)
    assert store.of_signal("y") is a and store.of_signal("z") is b
    # A signal moves from A to B (the old version of A no longer holds it).
    store["B"] = replace(b, signals={**b.signals, "y": signal("y")})
    store["A"] = replace(a, signals={"x": signal("x")})
    assert store.of_signal("y") is store["B"]
    assert store.pop("A").case_id == "A" and store.of_signal("x") is None
    assert store.pop("A", None) is None
    del store["B"]
    assert store.of_signal("y") is None and store.holding(["x", "y", "z"]) == []
    store.setdefault("A", a)
    assert store.holding(["y"]) == [a]
    store.clear()
    assert store.of_signal("x") is None
