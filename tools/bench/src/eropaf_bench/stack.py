"""Stack timings for `make bench`: how long `eropaf up` takes to be ready, and to stop.

The goal: `stack.json` within 30 s, and no process left after SIGTERM. Tests only check that
the stack comes up; this reports the figure against the goal.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eropaf_cli.testing import start_stack, stop_stack
from eropaf_platform.local.process import pid_alive

READY_GOAL_S = 30.0


def measure_stack(runs: int = 1) -> dict[str, Any]:
    ready: list[float] = []
    stopped: list[float] = []
    leftovers = 0
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="eropaf-bench-stack-") as tmp:
            stack = start_stack(Path(tmp) / "data", name=f"run{run}")
            ready.append(stack.seconds_to_ready)
            pids = {s["pid"] for s in stack.info["services"].values()}
            pids |= {stack.info["broker"]["pid"], stack.info["postgres"]["pid"]}
            begun = time.monotonic()
            code = stop_stack(stack.process)
            stopped.append(time.monotonic() - begun)
            if code != 0:
                raise RuntimeError(f"eropaf up exited with {code} after SIGTERM")
            leftovers += sum(1 for pid in pids if pid and pid_alive(pid))
    return {
        "ready_s": round(max(ready), 1),
        "ready_goal_s": READY_GOAL_S,
        "stop_s": round(max(stopped), 1),
        "processes_left_after_sigterm": leftovers,
        "runs": runs,
    }


def main() -> int:
    figures = measure_stack()
    verdict = "within" if figures["ready_s"] <= READY_GOAL_S else "OVER"
    print(
        f"eropaf up: ready in {figures['ready_s']} s ({verdict} the {READY_GOAL_S:.0f} s goal), "
        f"stopped in {figures['stop_s']} s, "
        f"{figures['processes_left_after_sigterm']} processes left after SIGTERM"
    )
    return 0 if figures["processes_left_after_sigterm"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
