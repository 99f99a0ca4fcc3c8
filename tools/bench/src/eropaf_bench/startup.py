"""Time to ready of `eropaf up` for `make bench`, split into the stack's start-up phases.

Ready means `DIR/stack.json` exists (every service answers `/health/ready`, so each consumes).
Two starts are measured: on a fresh data dir (PostgreSQL's initdb included) and again on the
same data dir (migrations at head), as a newcomer's second `eropaf up`. The phases come from
the supervisor's own log events, seconds after `eropaf up` was started.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from eropaf_cli.testing import start_stack, stop_stack

READY_GOAL_S = 10.0

# supervisor log event -> phase name (the first occurrence counts, service_ready the last)
_PHASES = {
    "stack.broker_ready": "broker_ready",
    "stack.postgres_ready": "postgres_ready",
    "mail_sink.ready": "mail_sink_ready",
    "stack.service_ready": "services_ready",
}


def _phases(output: Path, seconds_to_ready: float) -> dict[str, float]:
    """Phase -> seconds since start, from the JSON log lines of the supervisor's output."""
    stamps: dict[str, datetime] = {}
    ready_at: datetime | None = None
    for line in output.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        name = event.get("event")
        if name == "stack.child_started" and event.get("child") not in ("broker", "postgres"):
            stamps.setdefault("services_spawned", at)
        elif name in _PHASES:
            phase = _PHASES[name]
            if phase == "services_ready" or phase not in stamps:
                stamps[phase] = at
        elif name == "stack.ready":
            ready_at = at
    if ready_at is None:
        return {}
    # The supervisor logs "ready" just before the caller sees stack.json.
    begun = ready_at.timestamp() - seconds_to_ready
    return {
        phase: round(at.timestamp() - begun, 2)
        for phase, at in sorted(stamps.items(), key=lambda item: item[1])
    }


def measure_startup() -> dict[str, Any]:
    """Start `eropaf up` on a fresh data dir, stop it, start it again on the same dir."""
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="eropaf-bench-startup-") as tmp:
        data_dir = Path(tmp) / "data"
        for name in ("fresh", "again"):
            load = os.getloadavg()[0]
            stack = start_stack(data_dir, name=name)
            try:
                runs[name] = {
                    "ready_s": round(stack.seconds_to_ready, 2),
                    "load_1m": round(load, 1),
                    "phases_s": _phases(stack.output, stack.seconds_to_ready),
                }
            finally:
                code = stop_stack(stack.process)
            if code != 0:
                raise RuntimeError(f"eropaf up exited with {code} after SIGTERM")
    return {"ready_goal_s": READY_GOAL_S, **runs}


def summary(figures: dict[str, Any]) -> str:
    """One line per run: time to ready against the goal, and its phases."""
    lines = []
    for name in ("fresh", "again"):
        run = figures[name]
        verdict = "met" if run["ready_s"] <= figures["ready_goal_s"] else "NOT met"
        phases = ", ".join(f"{phase} {s}" for phase, s in run["phases_s"].items())
        lines.append(
            f"eropaf up ({name} data dir): ready in {run['ready_s']} s "
            f"(goal {figures['ready_goal_s']:.0f} s: {verdict}; load {run['load_1m']}) "
            f"[{phases}]"
        )
    return "\n".join(lines)


def main() -> int:
    print(summary(measure_startup()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
