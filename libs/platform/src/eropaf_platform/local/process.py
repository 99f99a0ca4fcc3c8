"""Process helpers shared by the local servers and the stack supervisor."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

_PR_SET_PDEATHSIG = 1
# Resolved once in the parent: the child (between fork and exec) must do as little as possible.
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when its parent dies.

    The parent may already have died between fork and prctl; then nobody would ever send the
    signal, so the child checks its parent pid afterwards and kills itself.

    Linux sends the signal when the *thread* that started the child ends: start children from
    the main thread, or from the event loop's executor (whose threads live as long as the
    loop), never from a thread of their own.
    """
    parent = os.getpid()
    signum = int(sig)

    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(127)  # without the guarantee the child must not run at all
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone (it is only waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``); 0 where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_running(executable: str | os.PathLike[str]) -> list[int]:
    """Processes running the program file ``executable`` (``/proc/<pid>/exe``)."""
    wanted = os.path.realpath(executable)
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/exe") == wanted:
                    pids.append(int(entry))
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (``/proc/stat``): the difference of two
    readings is everything the machine did meanwhile, measured or not."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until `pid` is gone or `timeout` passes; True when it is gone."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class LocalServer:
    """Context-manager protocol for a server with blocking ``start()``/``stop()``.

    The async forms run them in a thread: starting polls until the server answers, which
    must not block the caller's event loop.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
