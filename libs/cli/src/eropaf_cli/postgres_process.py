"""The embedded PostgreSQL of `eropaf up`, run as a direct child of the supervisor.

`eropaf_platform.local.EmbeddedPostgres` starts the server through pgserver's `pg_ctl`, which
daemonises it: the postmaster would outlive a killed supervisor. Here the `postgres` binary
bundled in the pgserver wheel runs as our child with `PR_SET_PDEATHSIG`, so it shuts down
(fast) when the supervisor dies; an orphan or a stale `postmaster.pid` left by an older run is
dealt with before the next start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from eropaf_platform.local.process import pid_alive, wait_gone
from eropaf_platform.logging import get_logger

from .supervisor import ChildProcess, log_tail, send_signal

log = get_logger(__name__)

# postgres runs as this system user when we are root (it refuses to run as root); pgserver
# uses the same user, so a data dir made by either stays usable by both.
SYSTEM_USER = "pgserver"
_SOCKET_NAME = ".s.PGSQL.5432"
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes; keep a margin


class PostgresStartError(RuntimeError):
    """The server did not start or did not accept connections in time."""


def _pgserver_bin() -> Path:
    with warnings.catch_warnings():
        # pgserver's package import warns about XDG_RUNTIME_DIR; irrelevant here.
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


class PostgresProcess:
    """A PostgreSQL cluster in `data_dir`, served on a unix socket only (no TCP port)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        log_file: Path,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.bin_dir = _pgserver_bin()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.socket_dir = self._choose_socket_dir()
        self.child: ChildProcess | None = None

    # -- addresses ----------------------------------------------------------------------

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) of `database` on this server, over the unix socket."""
        return f"postgresql+psycopg://postgres@/{quote(database)}?host={self._host()}"

    def libpq_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{quote(database)}?host={self._host()}"

    def _host(self) -> str:
        return quote(str(self.socket_dir), safe="/")

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.running

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Initialise the cluster when new, clear leftovers of a dead run, start, wait ready.

        The caller must hold the data dir's lock: then any postmaster still on this data
        dir is an orphan of an earlier supervisor, never a live sibling stack.
        """
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._clear_leftovers()
        self.child = ChildProcess(
            "postgres",
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-c",
                "listen_addresses=",
                "-k",
                str(self.socket_dir),
            ],
            log_file=self.log_file,
            user=self.user,
            # SIGINT = "fast" shutdown: clients cut off, checkpoint written, clean next start.
            stop_signal=signal.SIGINT,
            stop_timeout=self.stop_timeout,
            death_signal=signal.SIGINT,
        )
        self.child.start()
        self._wait_ready(time.monotonic() + self.start_timeout, should_stop)
        log.info("stack.postgres_ready", pid=self.pid, socket_dir=str(self.socket_dir))

    def stop(self) -> None:
        child = self.child
        if child is None:
            return
        if child.running and child.pid is not None:
            # Fast, then immediate shutdown (SIGQUIT), before the plain kill in child.stop().
            send_signal(child.pid, signal.SIGINT)
            if not wait_gone(child.pid, self.stop_timeout):
                log.warning("stack.postgres_immediate_shutdown", pid=child.pid)
                send_signal(child.pid, signal.SIGQUIT)
                wait_gone(child.pid, 5.0)
        child.stop_timeout = 5.0
        child.stop()

    # -- helpers ------------------------------------------------------------------------

    def _choose_socket_dir(self) -> Path:
        if len(str(self.data_dir / _SOCKET_NAME).encode()) <= _MAX_SOCKET_PATH:
            return self.data_dir
        # Too long for a unix socket: a short directory, stable per data dir.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"eropaf-pg-{digest}"  # noqa: S108 - private, 0700, ours

    def _prepare_permissions(self) -> None:
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.user is None:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_folder_permissions, ensure_user_exists
        import pwd
        import stat

        ensure_user_exists(self.user)
        entry = pwd.getpwnam(self.user)
        # The postgres user must reach its data dir and the bundled binaries and libraries.
        read = stat.S_IRGRP | stat.S_IROTH
        for prefix in (*_prefixes(self.data_dir), *_prefixes(self.bin_dir)):
            mode = prefix.stat().st_mode
            if mode & (read | stat.S_IXGRP | stat.S_IXOTH) != read | stat.S_IXGRP | stat.S_IXOTH:
                prefix.chmod(mode | read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin_dir.parent / "lib", read)
        os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        # Into a side directory, renamed when complete: a crash mid-initdb leaves no half cluster.
        staging = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresStartError(
                f"{self.data_dir} exists but holds no PostgreSQL cluster (no PG_VERSION)"
            )
        log.info("stack.postgres_initdb", data_dir=str(self.data_dir))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            result = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(staging),
                    "--auth=trust",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                    # No fsync of the new, still empty cluster (seconds on a busy disk); the
                    # kernel writes it back within half a minute. An OS crash before that can
                    # leave it broken: then remove DIR/postgres, it held nothing yet.
                    "--no-sync",
                    "-U",
                    "postgres",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.user,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed: {log_tail(self.log_file)}")
        if self.data_dir.exists():
            self.data_dir.rmdir()  # empty, checked above
        staging.rename(self.data_dir)

    def _clear_leftovers(self) -> None:
        """Stop an orphaned postmaster on this data dir; drop a stale postmaster.pid."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0].strip())
        except (OSError, ValueError):
            return
        if pid_alive(pid) and self._is_our_postmaster(pid):
            log.warning("stack.postgres_orphan", pid=pid)
            send_signal(pid, signal.SIGINT)
            if not wait_gone(pid, self.stop_timeout):
                send_signal(pid, signal.SIGQUIT)
                if not wait_gone(pid, 5.0):
                    send_signal(pid, signal.SIGKILL)
                    wait_gone(pid, 5.0)
        if pid_file.exists() and not (pid_alive(pid) and self._is_our_postmaster(pid)):
            # The pid is dead or now belongs to an unrelated process (pid reuse), which
            # postgres itself would mistake for a running server.
            log.info("stack.postgres_stale_pid_file", pid=pid)
            pid_file.unlink(missing_ok=True)

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return bool(argv) and argv[0].endswith(b"postgres") and str(self.data_dir).encode() in argv

    def _wait_ready(self, deadline: float, should_stop: Callable[[], bool]) -> None:
        import psycopg

        assert self.child is not None
        last: Exception | None = None
        while time.monotonic() < deadline and not should_stop():
            if not self.child.running:
                raise PostgresStartError(
                    f"postgres exited with code {self.child.returncode}: {log_tail(self.log_file)}"
                )
            try:
                with psycopg.connect(self.libpq_url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as error:
                last = error
            time.sleep(0.1)
        if should_stop():
            return  # the caller notices the stop request itself
        raise PostgresStartError(
            f"postgres did not accept connections within {self.start_timeout}s ({last}): "
            f"{log_tail(self.log_file)}"
        )


def _prefixes(path: Path) -> list[Path]:
    """The directories above `path` (which must be traversable for the postgres user)."""
    return [path.parent, *path.parent.parents]
