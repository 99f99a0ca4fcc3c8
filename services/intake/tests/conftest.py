"""Intake's tests: a summary of how many values the door's fuzz tests tried, per channel."""

from __future__ import annotations

from collections import defaultdict

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests record ``("door_examples", (channel, count))`` in their user properties."""
    tried: dict[str, int] = defaultdict(int)
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "door_examples" and getattr(report, "when", "") == "call":
                    channel, count = value
                    tried[channel] += int(count)
    if tried:
        terminalreporter.section("partners' door: fuzz examples tried")
        for channel, count in sorted(tried.items()):
            terminalreporter.write_line(f"{channel}: {count}")
