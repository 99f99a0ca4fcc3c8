"""Child processes that never outlive their supervisor, and the polling helpers around them.

Every child is started from the supervisor's main thread with Linux `PR_SET_PDEATHSIG`, so the
kernel signals it when the supervisor dies for whatever reason (SIGKILL and OOM included).
Children get their own session: a Ctrl-C in the terminal reaches only the supervisor, which
then stops them in order (services before the broker and database they need).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from eropaf_platform.local.process import die_with_parent
from eropaf_platform.logging import get_logger

log = get_logger(__name__)


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def log_tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode(errors="replace")


class ChildProcess:
    """One supervised child: own session, output appended to a log file, dies with us.

    `stop_signal` asks it to stop; after `stop_timeout` it is killed. `death_signal` is what
    the kernel sends when the supervisor dies without stopping it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_file: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = 10.0,
        death_signal: signal.Signals = signal.SIGKILL,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.death_signal = death_signal
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def start(self) -> None:
        """Spawn; call from the main thread (PDEATHSIG fires when the spawning *thread* ends)."""
        if self.running:
            raise RuntimeError(f"{self.name} already running")
        self.reap()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            user=self.user,
            start_new_session=True,
            # Only a prctl call between fork and exec, prepared in the parent: thread-safe enough.
            preexec_fn=die_with_parent(self.death_signal),
        )
        self.started_at = time.monotonic()
        log.info("stack.child_started", child=self.name, pid=self.process.pid)

    def stop(self) -> None:
        """Ask to stop, kill after the timeout; always reaps. Safe to call when not running."""
        process = self.process
        if process is not None and process.poll() is None:
            log.info("stack.child_stopping", child=self.name, pid=process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.stop_signal)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("stack.child_kill", child=self.name, pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        self.reap()

    def reap(self) -> None:
        """Collect an exited process and close its log handle."""
        if self.process is not None and self.process.poll() is None:
            return
        if self._log is not None:
            self._log.close()
            self._log = None
