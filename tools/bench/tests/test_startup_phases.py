"""The time-to-ready figure: phases read from the supervisor's log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eropaf_bench.startup import READY_GOAL_S, _phases, summary

pytestmark = pytest.mark.unit


def _line(event: str, at: str, **fields: str) -> str:
    return json.dumps({"event": event, "timestamp": f"2026-12-03T10:00:{at}Z", **fields})


def test_phases_are_seconds_since_start_first_or_last_as_they_mean(tmp_path: Path) -> None:
    output = tmp_path / "up.out"
    output.write_text(
        "\n".join(
            [
                _line("stack.child_started", "00.100000", child="broker"),
                _line("stack.broker_ready", "00.500000"),
                _line("stack.child_started", "01.000000", child="intake"),
                _line("stack.child_started", "01.200000", child="matching"),
                "not json: a service's plain log line",
                _line("stack.postgres_ready", "03.000000"),
                _line("stack.service_ready", "06.000000", service="intake"),
                _line("stack.service_ready", "08.000000", service="matching"),
                _line("stack.ready", "08.500000"),
            ]
        )
    )
    # stack.json was seen 9.0 s after the start: the start was at 10:00:-0.5.
    phases = _phases(output, 9.0)
    assert phases == {
        "broker_ready": 1.0,
        "services_spawned": 1.5,
        "postgres_ready": 3.5,
        "services_ready": 8.5,
    }


def test_no_ready_line_gives_no_phases(tmp_path: Path) -> None:
    output = tmp_path / "up.out"
    output.write_text(_line("stack.broker_ready", "00.500000") + "\n")
    assert _phases(output, 3.0) == {}


def test_summary_says_whether_the_goal_is_met() -> None:
    figures = {
        "ready_goal_s": READY_GOAL_S,
        "fresh": {"ready_s": 12.5, "load_1m": 6.5, "phases_s": {"services_ready": 12.4}},
        "again": {"ready_s": 9.7, "load_1m": 7.3, "phases_s": {}},
    }
    fresh, again = summary(figures).splitlines()
    assert "ready in 12.5 s" in fresh and "NOT met" in fresh and "services_ready 12.4" in fresh
    assert "ready in 9.7 s" in again and ": met" in again
