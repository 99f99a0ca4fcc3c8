"""The funnel counts the DDAS delivery's scope; the delivery reads personal data for its own
signals only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from eropaf_contracts.ddas import Contactsoort, Eindresultaat, validate_uitwisselmodel
from eropaf_matching.domain.cases import Case, CaseState, ContactAttempt
from eropaf_matching.domain.ddas_export import Organisatie, delivery
from eropaf_matching.domain.funnel import funnel

from .conftest import make_signal

pytestmark = pytest.mark.unit

JAN, FEB = date(2026, 1, 1), date(2026, 1, 31)


def case(name: str, *signals: tuple[str, date], pc4: str = "3431", **kw: object) -> Case:
    facts = {ref: make_signal(ref, datum=d, pc4=pc4) for ref, d in signals}
    opened = min(d for _, d in signals)
    return Case(case_id=name * 16, household_id="h" * 32, opened_on=opened, signals=facts, **kw)  # type: ignore[arg-type]


def reached(on: date) -> tuple[ContactAttempt, ...]:
    return (
        ContactAttempt(Contactsoort.HUISBEZOEK, False, on),
        ContactAttempt(Contactsoort.TELEFOON, True, on),
    )


CASES = [
    # picked up, reached, help accepted; one of its signals came before the period
    case(
        "a",
        ("a1", date(2025, 12, 20)),
        ("a2", date(2026, 1, 5)),
        opgepakt_on=date(2026, 1, 6),
        contactpogingen=reached(date(2026, 1, 8)),
        resultaat=Eindresultaat.BUDGETADVIES_OF_QUICK_FIX,
        state=CaseState.CLOSED,
        closed_on=date(2026, 1, 8),
    ),
    # picked up, reached, no help wanted
    case(
        "b",
        ("b1", date(2026, 1, 10)),
        opgepakt_on=date(2026, 1, 11),
        contactpogingen=reached(date(2026, 1, 12)),
        resultaat=Eindresultaat.GEEN_HULP_NODIG,
        state=CaseState.CLOSED,
        closed_on=date(2026, 1, 12),
    ),
    case("c", ("c1", date(2026, 1, 20))),  # not picked up (yet)
    case("d", ("d1", date(2025, 11, 1)), state=CaseState.CLOSED, closed_on=date(2025, 12, 1)),
    case("e", ("e1", date(2026, 2, 3))),  # after the period
    case("f", ("f1", date(2026, 1, 4)), pc4="3991"),  # another municipality
]


def test_the_funnel_of_a_period() -> None:
    f = funnel(CASES, gemeentecode="0356", start=JAN, end=FEB)
    assert (f.signals, f.cases, f.outreach, f.reached, f.help_accepted) == (3, 3, 2, 2, 1)
    document = delivery(
        CASES,
        gemeentecode="0356",
        start=JAN,
        end=FEB,
        organisatie=Organisatie(naam="Gemeente Nieuwegein"),
        code_gegevensleverancier="eropaf",
        aangeleverd_op=datetime(2026, 2, 2, tzinfo=UTC),
    )
    levering = document["leveringen"][0]
    assert (f.signals, f.cases) == (
        len(levering["vroegsignalen"]),
        len(levering["vroegsignaalzaken"]),
    )
    houten = funnel(CASES, gemeentecode="0321", start=JAN, end=FEB)
    assert (houten.signals, houten.cases, houten.outreach) == (1, 1, 0)
    with pytest.raises(ValueError):
        funnel(CASES, gemeentecode="0356", start=FEB, end=JAN)


def test_the_delivery_reads_personal_data_for_its_own_signals_only() -> None:
    asked: list[list[str]] = []

    def records(refs: list[str]) -> dict[str, tuple[dict[str, str], str | None]]:
        asked.append(refs)
        return {"a2": ({"Achternaam": "Dijk"}, "MITROS-7")}

    document = delivery(
        CASES,
        gemeentecode="0356",
        start=JAN,
        end=FEB,
        organisatie=Organisatie(naam="Gemeente Nieuwegein"),
        code_gegevensleverancier="eropaf",
        aangeleverd_op=datetime(2026, 2, 2, tzinfo=UTC),
        personal_records=records,
    )
    assert asked == [["a2", "b1", "c1"]]
    assert validate_uitwisselmodel(document) == []
    signals = {s["ID"]: s for s in document["leveringen"][0]["vroegsignalen"]}
    assert signals["MITROS-7"]["client"] == {"Achternaam": "Dijk"}
    assert signals["b1"]["client"] == {}
