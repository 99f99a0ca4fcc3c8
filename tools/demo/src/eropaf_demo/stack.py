"""The local stack for the demo: `eropaf up` in a child process, readiness, a clean stop,
and the operator commands (`eropaf ...`) run as the operator would run them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eropaf_cli.stack import read_stack_info

READY_TIMEOUT_S = 150.0
_IN_PROCESS = threading.Lock()
STOP_TIMEOUT_S = 60.0


class DemoError(RuntimeError):
    """A demo step failed; the message says which and why."""


def eropaf(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `eropaf ARGS...` with this interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "eropaf_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def eropaf_here(*args: str) -> Done:
    """Run `eropaf ARGS...` in this process (no interpreter start-up, which costs seconds on a
    busy machine); output captured. An unknown command answers like argparse: code 2."""
    import contextlib
    import io

    from eropaf_cli.main import build_parser

    out, err = io.StringIO(), io.StringIO()
    # sys.stdout is global: one in-process command at a time.
    with _IN_PROCESS, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = build_parser().parse_args(list(args))
            code = int(parsed.handler(parsed) or 0)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Done(code, out.getvalue(), err.getvalue())


def eropaf_start(*args: str) -> subprocess.Popen[str]:
    """Start `eropaf ARGS...` without waiting (several operator commands at once)."""
    return subprocess.Popen(
        [sys.executable, "-m", "eropaf_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def unknown_command(result: subprocess.CompletedProcess[str] | Done) -> bool:
    """argparse's answer to a command that is not installed (yet)."""
    return result.returncode == 2 and "invalid choice" in result.stderr


@dataclass
class Stack:
    data_dir: Path
    log: Path
    up_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            command = [sys.executable, "-m", "eropaf_cli", "up", "--data-dir", str(self.data_dir)]
            self.process = subprocess.Popen(
                [*command, *self.up_args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"eropaf up exited with {self.process.returncode}:\n{self.tail()}")
            info = read_stack_info(self.data_dir)
            if info is not None and info.get("supervisor_pid") == self.process.pid:
                self.info = info
                return info
            time.sleep(0.2)
        raise DemoError(f"the stack was not ready within {timeout:.0f}s:\n{self.tail()}")

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (0 = clean), None when it had to be killed."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()  # the children die with it (PR_SET_PDEATHSIG)
            self.process.wait()
            return None

    def tail(self, limit: int = 3000) -> str:
        try:
            lines = self.log.read_text(errors="replace")[-limit:].splitlines()
        except OSError:
            return ""
        out = []
        for line in lines:  # keep JSON log lines short and readable
            try:
                event = json.loads(line)
                out.append(f"  {event.get('event')} {event.get('error', '')}".rstrip())
            except ValueError:
                out.append(f"  {line}")
        return "\n".join(out)
