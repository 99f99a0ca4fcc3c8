"""The report every benchmark adds to: the raw-broker yardstick and later sections, each
expressed as a ratio to the yardstick so that figures from different machines compare.

A run writes ``bench/results/<UTC timestamp>.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import signal
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_RESULTS_DIR = Path("bench/results")


def ratio(value: float, yardstick: float) -> float:
    """`value` as a fraction of the yardstick (1.0 = as fast as the raw broker)."""
    return value / yardstick if yardstick > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with at least
    q % of the values at or below it; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


@dataclass
class Figure:
    """One measured throughput."""

    name: str
    messages: int
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "messages": self.messages,
            "seconds": round(self.seconds, 4),
            "msgs_per_s": round(self.msgs_per_s, 1),
        }


@dataclass
class BenchSection:
    """A later benchmark (e.g. intake -> matching) reported against the yardstick."""

    name: str
    figures: list[Figure]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> Figure:
        """The figure compared with the yardstick: the last (end-to-end) one."""
        return self.figures[-1]


@dataclass
class BenchReport:
    started_at: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    yardstick: list[Figure]
    sections: list[BenchSection] = field(default_factory=list)

    @property
    def yardstick_msgs_per_s(self) -> float:
        """End-to-end raw broker throughput: produce all, then consume all."""
        return next(f.msgs_per_s for f in self.yardstick if f.name == "end-to-end")

    def ratio(self, msgs_per_s: float) -> float:
        return ratio(msgs_per_s, self.yardstick_msgs_per_s)

    def add_section(self, section: BenchSection) -> None:
        self.sections.append(section)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "machine": self.machine,
            "settings": self.settings,
            "yardstick_msgs_per_s": round(self.yardstick_msgs_per_s, 1),
            "yardstick": [f.to_dict() for f in self.yardstick],
            "sections": [
                {
                    "name": s.name,
                    "figures": [f.to_dict() for f in s.figures],
                    "ratio_to_yardstick": round(self.ratio(s.headline.msgs_per_s), 4),
                    "notes": s.notes,
                }
                for s in self.sections
            ],
        }

    def write(self, results_dir: Path) -> Path:
        """Write `<results_dir>/<UTC timestamp>.json` atomically; return its path."""
        results_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = results_dir / f"{stamp}.json"
        if target.exists():  # two runs in the same second
            target = results_dir / f"{stamp}-{uuid.uuid4().hex[:6]}.json"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(target)
        return target


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        info["memory_gb"] = round(total_kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    try:
        import aiokafka

        info["aiokafka"] = aiokafka.__version__
    except (ImportError, AttributeError):
        pass
    return info


async def until_sigterm(work: Awaitable[T]) -> T:
    """Await ``work`` so that SIGTERM (a job's timeout, ``kill``) cancels it as Ctrl-C does:
    its ``finally`` blocks then stop the services and brokers it started and drop its
    databases, where the default handler ended the process and left them running."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
