"""Embedded PostgreSQL via the `pgserver` wheel, with its data in a directory we own.

pgserver keeps process-wide bookkeeping (an instance cache, a pid list in the data
dir, an atexit hook) that decides on its own whether to stop the server. We start
the server through pgserver but stop it ourselves, so `stop()` really stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import structlog

from .process import LocalServer, pid_alive, wait_gone

log = structlog.get_logger(__name__)

_POSTMASTER_PID = "postmaster.pid"


class EmbeddedPostgres(LocalServer):
    """A PostgreSQL server whose cluster lives in `data_dir` (kept across restarts).

    Listens only on a unix socket (no TCP port, so instances never collide). The
    socket sits in the data dir, or, when that path is too long for a unix
    socket, in a short per-data-dir runtime directory chosen by pgserver.
    Run as root, pgserver creates a `pgserver` system user (useradd), chowns the
    data dir to it, adds o+rx to every parent dir and runs postgres as that user;
    so every parent must stay traversable while the server runs (pytest resets its
    own basetemp root to 0700 when another session starts: keep data elsewhere).
    """

    def __init__(self, data_dir: Path | str, *, stop_timeout: float = 15.0) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.stop_timeout = stop_timeout
        self._server: Any = None
        self._socket_dir: Path | None = None
        self._pid: int | None = None

    # -- properties -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def pid(self) -> int | None:
        """Pid of the postmaster while running."""
        return self._pid

    @property
    def socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise RuntimeError("embedded postgres is not running")
        return self._socket_dir

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3) of the `postgres` database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) of `database` on this server, over the unix socket."""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql+psycopg://postgres@/{quote(database)}?host={host}"

    def libpq_url(self, database: str = "postgres") -> str:
        """Plain libpq URL, for psql and psycopg.connect()."""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://postgres@/{quote(database)}?host={host}"

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Initialise the cluster if new, else reuse it; start the server if not running."""
        if self._server is not None:
            return self
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is fine.
            warnings.simplefilter("ignore")
            import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: pgserver's own atexit stop only fires when its pid list
        # says this is the last user, which stale pids from a crash defeat. We stop it.
        server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        info = server.get_postmaster_info()
        self._server = server
        self._pid = int(info.pid)
        self._socket_dir = Path(info.socket_dir) if info.socket_dir is not None else None
        if self._socket_dir is None:
            raise RuntimeError(f"embedded postgres in {self.data_dir} has no unix socket")
        log.info(
            "embedded_postgres.ready",
            data_dir=str(self.data_dir),
            pid=self._pid,
            socket_dir=str(self._socket_dir),
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait until the postmaster is gone."""
        server, self._server = self._server, None
        if server is None:
            return
        import atexit

        from pgserver import postgres_server

        # Forget pgserver's per-process state, so a later start() in this process
        # starts a fresh server instead of returning this stopped handle.
        atexit.unregister(server._cleanup)
        postgres_server.PostgresServer._instances.pop(self.data_dir, None)
        (self.data_dir / ".handle_pids.json").unlink(missing_ok=True)

        pid = self._pid
        self._pid = None
        self._socket_dir = None
        if pid is None or not pid_alive(pid):
            return
        try:
            from pgserver import _commands

            # pgserver generates its command wrappers at import time, hence getattr.
            pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009
            # As root pgserver runs postgres as its own system user; pg_ctl must too.
            pg_ctl(
                ["-m", "fast", "-w", "-t", str(int(self.stop_timeout)), "stop"],
                pgdata=self.data_dir,
                user=server.system_user,
                timeout=self.stop_timeout + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            log.warning("embedded_postgres.pg_ctl_stop_failed", error=str(error))
        if wait_gone(pid, self.stop_timeout):
            log.info("embedded_postgres.stopped", pid=pid)
            return
        # pg_ctl failed or hung: escalate from "immediate" shutdown to kill.
        log.warning("embedded_postgres.kill", pid=pid)
        _signal(pid, signal.SIGQUIT)
        if not wait_gone(pid, 5.0):
            _signal(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)

    # -- databases ------------------------------------------------------------------

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; True when it was created."""
        return create_database_if_missing(self.libpq_url(), name)


def create_database_if_missing(server_url: str, name: str) -> bool:
    """Create `name` on the server at libpq URL `server_url` unless it exists."""
    import psycopg
    from psycopg import sql

    # CREATE DATABASE cannot run inside a transaction.
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False  # a concurrent creator won the race; fine
        return True


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
