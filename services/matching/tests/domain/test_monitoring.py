from __future__ import annotations

from datetime import date

import pytest

from eropaf_contracts.ddas import Contactsoort, Eindresultaat, Signaalpartner
from eropaf_matching.domain.cases import ContactAttempt
from eropaf_matching.domain.matcher import Matcher
from eropaf_matching.domain.monitoring import monitoring_rows, rows_to_csv

pytestmark = pytest.mark.unit


def test_monitoring_figures(signal, policy, region):
    m = Matcher(policy, region)
    a = m.accept(signal("a", bedrag=1500, bsn="X", address="A")).case
    m.accept(
        signal("a2", partner="eneco", type=Signaalpartner.ENERGIE, bsn="X", datum=date(2026, 1, 20))
    )
    b = m.accept(
        signal("b", partner="eneco", type=Signaalpartner.ENERGIE, bedrag=300, bsn="Y", address="B")
    ).case
    m.accept(signal("c", bedrag=200, bsn="Z", address="C", datum=date(2026, 2, 3)))
    m.record_attempt(a.case_id, ContactAttempt(Contactsoort.HUISBEZOEK, True, date(2026, 1, 8)))
    m.close(a.case_id, Eindresultaat.BUDGETADVIES_OF_QUICK_FIX, date(2026, 1, 30))
    m.resolve("a", date(2026, 6, 1))
    m.resolve("a2", date(2026, 7, 1))
    m.record_attempt(b.case_id, ContactAttempt(Contactsoort.TELEFOON, False, date(2026, 1, 8)))

    rows = monitoring_rows(m.cases.values(), as_of=date(2026, 8, 1))
    table = {(r.maand, r.metric, r.dimension): r for r in rows if r.gemeentecode == "0356"}
    assert table[("2026-01", "signalen", "Huur")].value == 1
    assert table[("2026-01", "signalen", "Energie")].value == 2
    assert table[("2026-01", "zaken_geopend", "")].value == 2
    assert table[("2026-02", "zaken_geopend", "")].value == 1
    assert table[("2026-01", "outreach", "home_visit")].value == 1
    assert table[("2026-01", "outreach", "phone")].value == 1
    assert table[("2026-01", "bereik", "")].value == 0.5
    assert table[("2026-01", "hulp_geaccepteerd", "")].value == 1.0
    assert table[("2026-01", "eindresultaat", "(Budget)advies en/of quick fix")].value == 1
    resolved = table[("2026-01", "opgelost_binnen_12_maanden", "")]
    assert (resolved.numerator, resolved.denominator) == (1, 1)  # b has not matured yet
    assert table[("2026-02", "opgelost_binnen_12_maanden", "")].value is None

    csv_text = rows_to_csv(rows)
    header, first, *_ = csv_text.splitlines()
    assert header == "gemeentecode,maand,metric,dimension,value,numerator,denominator"
    assert first.startswith("0356,2026-01,")
