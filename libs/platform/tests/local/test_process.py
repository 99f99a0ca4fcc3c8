"""Process readings the benchmarks use: processes by name, the machine's busy time."""

from __future__ import annotations

import os
import sys
import time

import pytest

from eropaf_platform.local.process import machine_busy_seconds, pids_running, process_cpu_seconds

pytestmark = pytest.mark.unit


def test_pids_running_finds_this_process_by_its_program_file() -> None:
    assert os.getpid() in pids_running(sys.executable)
    assert pids_running("/no/such/program") == []


def test_machine_busy_time_counts_this_process_spinning() -> None:
    busy_before, own_before = machine_busy_seconds(), process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    busy, own = machine_busy_seconds() - busy_before, process_cpu_seconds(os.getpid()) - own_before
    # The machine was busy at least as long as this process (clock ticks: allow one or two).
    assert own >= 0.2
    assert busy >= own - 0.05
