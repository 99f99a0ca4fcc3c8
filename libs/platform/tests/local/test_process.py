"""Local processes: the readings the benchmarks use (processes by program file, the machine's
busy time) and children that end with the process that started them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eropaf_platform.local.process import (
    machine_busy_seconds,
    pid_alive,
    pids_running,
    process_cpu_seconds,
)


@pytest.mark.unit
def test_pids_running_finds_this_process_by_its_program_file() -> None:
    assert os.getpid() in pids_running(sys.executable)
    assert pids_running("/no/such/program") == []


@pytest.mark.unit
def test_machine_busy_time_counts_this_process_spinning() -> None:
    busy_before, own_before = machine_busy_seconds(), process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    busy, own = machine_busy_seconds() - busy_before, process_cpu_seconds(os.getpid()) - own_before
    # The machine was busy at least as long as this process (clock ticks: allow one or two).
    assert own >= 0.2
    assert busy >= own - 0.05


# A parent that starts a local broker and a service process, prints their pids, then waits to
# be killed.
_PARENT = """
import sys, time
from pathlib import Path
from eropaf_platform.local.broker import LocalBroker
from eropaf_platform.local.service_process import ServiceProcess

broker = LocalBroker().start()
service = ServiceProcess("sleeper", {"PYTHONPATH": sys.argv[1]}, Path(sys.argv[1]) / "log")
service.start()
print("pids", broker.pid, service.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.integration  # starts the real broker
def test_children_of_a_killed_parent_end_with_it(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(600)\n")
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    line = ""
    while not line.startswith("pids"):  # the broker logs its start on stdout first
        line = parent.stdout.readline()
        assert line, "the parent ended early"
    children = [int(pid) for pid in line.split()[1:]]
    assert len(children) == 2 and all(pid_alive(pid) for pid in children)
    parent.kill()  # SIGKILL: no cleanup of its own runs
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(pid) for pid in children)
