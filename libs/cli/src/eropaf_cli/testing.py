"""Driving a real `eropaf up` from tests (shared by the CLI's and the cross-service tests)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eropaf_cli import stack
from eropaf_platform.testing.wait import wait_until

# How long tests wait for a stack. The 30 s goal of the brief is a timing figure: `make bench`
# measures and reports it; tests only need the stack to come up.
READY_TIMEOUT_S = 90.0


def runnable_services() -> list[str]:
    """Services that can run as `python -m` today (some are still being written)."""
    return [s for s in stack.SERVICES if importlib.util.find_spec(f"eropaf_{s}.__main__")]


def stack_env() -> dict[str, str]:
    env = dict(os.environ)
    runnable = runnable_services()
    if stack.SERVICES_ENV not in env and runnable != list(stack.SERVICES):
        env[stack.SERVICES_ENV] = ",".join(runnable)
    return env


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    info: dict[str, Any]
    seconds_to_ready: float
    output: Path


def start_stack(
    data_dir: Path, *extra: str, name: str = "up", env: Mapping[str, str] | None = None
) -> RunningStack:
    """`eropaf up --data-dir DATA_DIR EXTRA...` until its stack.json names it; `env` is added
    to this process's environment (the services inherit it: EROPAF_* settings)."""
    output = data_dir.parent / f"{data_dir.name}-{name}.out"
    begun = time.monotonic()
    with output.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "eropaf_cli", "up", "--data-dir", str(data_dir), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**stack_env(), **(env or {})},
        )

    def stack_file() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"eropaf up exited with {process.returncode}: {tail(output)}")
        info = stack.read_stack_info(data_dir)
        # A stack.json left by a killed supervisor is stale until the new one replaces it.
        return info if info is not None and info["supervisor_pid"] == process.pid else None

    try:
        info = wait_until(stack_file, timeout=READY_TIMEOUT_S, interval=0.1)
    except BaseException:
        stop_stack(process)
        raise
    assert info is not None
    return RunningStack(process, data_dir, info, time.monotonic() - begun, output)


def stop_stack(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def tail(path: Path, limit: int = 3000) -> str:
    return path.read_bytes()[-limit:].decode(errors="replace") if path.exists() else ""
