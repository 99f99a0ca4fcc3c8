"""The resilience suite: a table of what was injected and what was checked, at the end of the
run (in CI's output too)."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests record ``("resilience", (section, what, figure))`` in their user properties."""
    rows: list[tuple[str, str, str]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "resilience" and getattr(report, "when", "") == "call":
                    section, what, figure = value
                    rows.append((str(section), str(what), str(figure)))
    if not rows:
        return
    terminalreporter.section("resilience: injected and checked")
    width = max(len(what) for _, what, _ in rows)
    for section in ("input", "injected", "checked", "timing"):
        chosen = [(what, figure) for s, what, figure in rows if s == section]
        if chosen:
            terminalreporter.write_line(f"{section}:")
            for what, figure in chosen:
                terminalreporter.write_line(f"  {what:<{width}}  {figure}")
