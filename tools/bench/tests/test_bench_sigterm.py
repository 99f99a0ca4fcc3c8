"""A benchmark stopped with SIGTERM cleans up what it started, as after Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# A stand-in for a benchmark run: says when it runs, then waits; its finally block is where
# the real one stops its services and drops its databases.
_RUN = """
import asyncio
from eropaf_bench.report import until_sigterm

async def run():
    try:
        print("running", flush=True)
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0)  # cleanup may await
        print("cleaned up", flush=True)

try:
    asyncio.run(until_sigterm(run()))
except asyncio.CancelledError:
    print("cancelled", flush=True)
"""


def test_sigterm_runs_the_cleanup_of_a_benchmark() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "running"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert out.split() == ["cleaned", "up", "cancelled"], err
