"""A service as its own operating-system process (``python -m eropaf_<service>``), for
benchmarks and crash tests: started, waited for, measured, stopped or killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from eropaf_platform.local.ports import free_port
from eropaf_platform.local.process import die_with_parent, process_cpu_seconds


class ServiceProcess:
    """``python -m <module>`` with the given ``EROPAF_*`` settings on a free HTTP port; its
    output (the JSON log) is appended to ``log_path``.

    ``wrapper`` runs the module under another module first, e.g. ``("cProfile", "-o", F)``.
    """

    def __init__(
        self,
        module: str,
        env: Mapping[str, str],
        log_path: Path,
        *,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "EROPAF_HTTP_PORT": str(self.port)}
        self.log_path = log_path
        self.wrapper = list(wrapper)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        prefix = ["-m", *self.wrapper] if self.wrapper else []
        self.process = subprocess.Popen(
            [sys.executable, *prefix, "-m", self.module],
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            # A benchmark or test killed outright takes its services with it: left running,
            # they took the CPU from later runs.
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until ``/health/ready`` answers 200; fails at once if the process exits."""
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            while True:
                if self.process is None or self.exited():
                    raise RuntimeError(f"{self.module} exited: {self.log_tail()}")
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.module} not ready in {timeout}s: {self.log_tail()}")
                await asyncio.sleep(0.2)

    async def metrics(self) -> str:
        """The service's ``/metrics`` page as it is now (read figures with :func:`metric_sum`)."""
        import httpx

        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            return (await client.get("/metrics")).text

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of a Prometheus metric's samples (with these labels) on ``/metrics``."""
        return metric_sum(await self.metrics(), name, **labels)

    def cpu_seconds(self) -> float:
        """CPU time the process used so far (user + system; Linux ``/proc``, else 0)."""
        return process_cpu_seconds(self.process.pid) if self.process is not None else 0.0

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self, timeout: float = 20.0, *, sig: int = signal.SIGTERM) -> None:
        """A clean stop (``sig``: SIGINT lets a profiler write its stats), SIGKILL after
        ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def metric_sum(page: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples (with these labels) on a ``/metrics`` page: several
    figures of one moment from one fetch."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
