"""The domain says what happened: the matcher's operations return the outcomes to tell, and
the rules behind them (creditor status, the kind of a case change, the canonical order of a
batch's signals) live here, not in a handler or a serialiser."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from eropaf_contracts.ddas import Contactsoort, Signaalpartner
from eropaf_contracts.events import CaseChange, CreditorStatus
from eropaf_contracts.region import Region
from eropaf_matching.domain import outcomes
from eropaf_matching.domain.cases import ContactAttempt, OutreachPlannedOn, creditor_status
from eropaf_matching.domain.matcher import Matcher, UnknownCase
from eropaf_matching.domain.signals import canonical_order
from eropaf_matching.domain.triage import RegionPolicy

from .conftest import MakeSignal

pytestmark = pytest.mark.unit

D = date(2026, 1, 5)


def kinds(happened: list[outcomes.Outcome]) -> list[str]:
    return [type(o).__name__ for o in happened]


def test_a_signal_opens_then_changes_a_case_and_a_stale_revision_is_dropped(
    signal: MakeSignal, policy: RegionPolicy, region: Region
) -> None:
    m = Matcher(policy, region)
    first = m.take_signal(signal("a" * 32, bedrag=1200, bsn="x"))
    assert kinds(first) == ["CaseOpened", "DecisionChanged", "CreditorStatusChanged"]
    status = first[-1]
    assert isinstance(status, outcomes.CreditorStatusChanged)
    assert status.status is CreditorStatus.PICKED_UP and status.signal_ref == "a" * 32

    again = m.take_signal(signal("a" * 32, bedrag=1300, bsn="x"))  # revision 1 again
    assert again == [outcomes.StaleRevisionDropped("a" * 32, 1)]

    energy = signal("b" * 32, partner="eneco", type=Signaalpartner.ENERGIE, bsn="x")
    changed = m.take_signal(energy)
    assert isinstance(changed[0], outcomes.CaseChanged)
    assert changed[0].change is CaseChange.SIGNAL_ADDED and changed[0].about == "b" * 32 + ":r1"


def test_a_resolution_of_the_last_open_signal_closes_and_tells_every_creditor(
    signal: MakeSignal, policy: RegionPolicy, region: Region
) -> None:
    m = Matcher(policy, region)
    m.take_signal(signal("a" * 32, bedrag=1200, bsn="x"))
    assert m.take_resolution("f" * 32, D) == [outcomes.UnknownSignalResolution("f" * 32)]
    closed = m.take_resolution("a" * 32, D + timedelta(days=2))
    assert kinds(closed) == ["CaseClosed", "CreditorStatusChanged"]
    assert m.take_resolution("a" * 32, D + timedelta(days=2)) == []  # told once


def test_reports_move_a_case_on_and_one_on_a_closed_case_is_ignored(
    signal: MakeSignal, policy: RegionPolicy, region: Region
) -> None:
    m = Matcher(policy, region)
    m.take_signal(signal("a" * 32, bedrag=20, bsn="x"))  # below the minimum: not picked up
    case = m.case_of("a" * 32)
    with pytest.raises(UnknownCase):
        m.take_report("f" * 32, OutreachPlannedOn(D))
    closed = m.take_not_picked_up(D + timedelta(days=365))
    assert kinds(closed) == ["CaseClosed", "CreditorStatusChanged"]
    assert creditor_status(m.cases[case.case_id], "a" * 32) is CreditorStatus.NOT_PICKED_UP
    attempt = ContactAttempt(Contactsoort.TELEFOON, True, D + timedelta(days=400))
    assert kinds(m.take_report(case.case_id, attempt)) == ["ReportOnClosedCaseIgnored"]


def test_signals_are_applied_by_business_date_between_resolutions() -> None:
    # (name, key or None for a resolution)
    items = [
        ("c1", (D + timedelta(days=3), "c")),
        ("a1", (D + timedelta(days=1), "a")),
        ("c2", (D, "c")),  # a revision of c: stays after c's first, whatever its date
        ("r", None),
        ("b1", (D + timedelta(days=9), "b")),
        ("a2", (D, "a")),
    ]
    ordered = canonical_order(items, key=lambda item: item[1])
    assert [name for name, _ in ordered] == ["a1", "c1", "c2", "r", "a2", "b1"]
