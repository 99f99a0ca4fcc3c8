"""Scheduling's tests: how many cases the staff API's OpenAPI fuzz tried, per operation."""

from __future__ import annotations

from collections import defaultdict

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests record ``("openapi_examples", (operation, count))`` in their user properties."""
    tried: dict[str, int] = defaultdict(int)
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "openapi_examples" and getattr(report, "when", "") == "call":
                    operation, count = value
                    tried[operation] += int(count)
    if tried:
        terminalreporter.section("staff API: OpenAPI cases tried")
        for operation, count in sorted(tried.items()):
            terminalreporter.write_line(f"{operation}: {count}")
