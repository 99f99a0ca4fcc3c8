"""What the demo makes of matching's case events, in whatever order partitions deliver them."""

from __future__ import annotations

from typing import Any

import pytest

from eropaf_demo.replay import Publisher, Watcher

pytestmark = pytest.mark.unit


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": f"eropaf.matching.{kind}", "data": data}


def _watcher() -> Watcher:
    publisher = Publisher.__new__(Publisher)  # no keys, no broker: only its ce_id map is read
    publisher.ce_ids = {}
    return Watcher("unused:9092", [], publisher, signal_refs={"s1", "s2", "s3"})


def test_a_renamed_case_read_before_its_old_self_stays_renamed_and_keeps_its_decision() -> None:
    watcher = _watcher()
    # The partition of the new reference is read first.
    watcher._case_event(
        _event("case.updated", case_ref="B", signal_refs=["s1", "s2"], previous_case_refs=["A"])
    )
    watcher._case_event(_event("case.opened", case_ref="A", signal_refs=["s1"]))
    watcher._case_event(_event("outreach.decided", case_ref="A", outreach="home_visit"))
    observed = watcher.observed
    assert set(observed.open_cases()) == {"B"}
    assert observed.outreach == {"B": {"case_ref": "A", "outreach": "home_visit"}}


def test_a_merge_absorbs_both_cases_and_the_latest_decision_wins() -> None:
    watcher = _watcher()
    watcher._case_event(_event("case.opened", case_ref="A", signal_refs=["s1"]))
    watcher._case_event(_event("case.opened", case_ref="C", signal_refs=["s3"]))
    watcher._case_event(
        _event("outreach.decided", case_ref="A", outreach="letter", decided_at="2026-12-01T10:00Z")
    )
    watcher._case_event(
        _event(
            "case.updated",
            case_ref="M",
            signal_refs=["s1", "s2", "s3"],
            previous_case_refs=["A", "C"],
        )
    )
    watcher._case_event(
        _event(
            "outreach.decided", case_ref="M", outreach="home_visit", decided_at="2026-12-01T11:00Z"
        )
    )
    assert set(watcher.observed.open_cases()) == {"M"}
    assert watcher.observed.outreach["M"]["outreach"] == "home_visit"


def test_cases_of_other_signals_on_a_shared_broker_are_ignored() -> None:
    watcher = _watcher()
    watcher._case_event(_event("case.opened", case_ref="X", signal_refs=["someone-else"]))
    watcher._case_event(_event("case.closed", case_ref="X", resultaat="Verwijzing zonder contact"))
    assert watcher.observed.open_cases() == {}
    assert watcher.observed.closed == {"X": "Verwijzing zonder contact"}  # kept, never counted
