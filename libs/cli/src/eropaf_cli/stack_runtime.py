"""The supervisor behind `eropaf up` (see :mod:`eropaf_cli.stack` for what it does).

Apart from `eropaf_cli.stack`, so that building the `eropaf` parser and the other commands
do not load logging, the process helpers and what they bring.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eropaf_platform.logging import configure_logging, get_logger

from .stack import (
    HTTP_HOST,
    MAX_CRASHES_BEFORE_READY,
    POLL_INTERVAL_S,
    RESTART_BACKOFF_INITIAL_S,
    RESTART_BACKOFF_MAX_S,
    SERVICE_STOP_TIMEOUT_S,
    SERVICES,
    STABLE_AFTER_S,
    STACK_FILE,
    START_TIMEOUT_S,
    WITHOUT_DATABASE,
    StackContext,
    data_dir_lock,
    database_name,
    load_or_create_secrets,
    lock_holder,
    selected_services,
    service_env,
    service_ready,
    write_atomic,
)
from .supervisor import ChildProcess, log_tail

# The name the supervisor has always logged under.
log = get_logger("eropaf_cli.stack")


# -- the supervisor -------------------------------------------------------------------


class StackError(RuntimeError):
    """The stack could not start (the message says which part and why)."""


class StopRequested(Exception):
    """SIGINT/SIGTERM arrived while starting."""


@dataclass
class ServiceRunner:
    """One service process plus its restart state."""

    name: str
    child: ChildProcess
    url: str
    crashes: int = 0
    backoff_s: float = RESTART_BACKOFF_INITIAL_S
    restart_at: float | None = None

    def check(self, now: float) -> bool:
        """Notice an exit and (re)start when due. True when the pid changed."""
        if self.child.running:
            return False
        if self.restart_at is None:
            uptime = now - self.child.started_at
            code = self.child.returncode
            self.child.reap()
            self.crashes += 1
            if uptime >= STABLE_AFTER_S:
                self.backoff_s = RESTART_BACKOFF_INITIAL_S
            self.restart_at = now + self.backoff_s
            log.error(
                "stack.service_exited",
                service=self.name,
                exit_code=code,
                restart_in_s=self.backoff_s,
                log_tail=log_tail(self.child.log_file, 1500),
            )
            self.backoff_s = min(self.backoff_s * 2, RESTART_BACKOFF_MAX_S)
            return False
        if now < self.restart_at:
            return False
        self.restart_at = None
        self.child.start()
        return True


@dataclass
class Stack:
    data_dir: Path
    database_url: str | None = None
    bootstrap_servers: str | None = None
    http_base_port: int | None = None
    smtp_server: str | None = None  # HOST:PORT of an existing SMTP server: no local sink
    services: tuple[str, ...] = SERVICES
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.logs_dir = self.data_dir / "logs"
        self.mail_dir = self.data_dir / "mail"
        self.broker: ChildProcess | None = None
        self.postgres: Any = None  # PostgresProcess, imported lazily (pgserver import is slow)
        self.mail_sink: Any = None
        self.runners: dict[str, ServiceRunner] = {}
        self.ctx: StackContext | None = None
        self.started_at: datetime | None = None

    # -- start ------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        if self.stop_event.is_set():
            raise StopRequested

    def start(self) -> None:
        """Bring everything up and wait until every service is ready; raise StackError."""
        begun = time.monotonic()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)  # stale from an earlier run
        secrets_ = load_or_create_secrets(self.data_dir)
        bootstrap = self.bootstrap_servers or self._start_broker()
        self._checkpoint()
        database_urls = self._database_urls()
        smtp_host, smtp_port = self._smtp()
        self.ctx = StackContext(
            bootstrap_servers=bootstrap,
            database_urls=database_urls,
            ports=self._ports(),
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            secrets=secrets_,
        )
        for name in self.services:
            child = ChildProcess(
                name,
                [sys.executable, "-m", f"eropaf_{name}"],
                log_file=self.logs_dir / f"{name}.log",
                env=service_env(self.ctx, name),
                stop_signal=signal.SIGTERM,
                stop_timeout=SERVICE_STOP_TIMEOUT_S,
                # Services are crash-safe by design (outbox, commit after effects): a hard kill
                # when the supervisor is gone loses nothing and cannot hang.
                death_signal=signal.SIGKILL,
            )
            self.runners[name] = ServiceRunner(name, child, self.ctx.url(name))
            child.start()
        # The services import their code (seconds each) while PostgreSQL starts; each waits
        # for its database before migrating (`Service.start`).
        self._start_databases(database_urls)
        self._checkpoint()
        self._wait_services_ready(begun + START_TIMEOUT_S)
        self.started_at = datetime.now(UTC)
        self.write_stack_file()
        log.info("stack.ready", seconds=round(time.monotonic() - begun, 2))

    def _smtp(self) -> tuple[str, int]:
        """The given SMTP server, else the local sink (started here) writing DIR/mail."""
        if self.smtp_server is not None:
            host, port = parse_host_port(self.smtp_server)
            return host, port
        from eropaf_platform.local import MailSink

        self.mail_sink = MailSink(self.mail_dir).start()
        return self.mail_sink.host, self.mail_sink.port

    def _ports(self) -> dict[str, int]:
        if self.http_base_port is not None:
            return {name: self.http_base_port + i for i, name in enumerate(SERVICES)}
        from eropaf_platform.local import free_port

        ports: dict[str, int] = {}
        for name in SERVICES:
            port = free_port(HTTP_HOST)
            while port in ports.values():
                port = free_port(HTTP_HOST)
            ports[name] = port
        return ports

    def _start_broker(self) -> str:
        from eropaf_platform.local.broker import broker_command, broker_env, probe_metadata
        from eropaf_platform.local.ports import free_port

        env = broker_env()
        log_file = self.logs_dir / "broker.log"
        for _attempt in range(3):  # a picked port can be taken before the broker binds it
            port = free_port(HTTP_HOST)
            url = f"tcp://{HTTP_HOST}:{port}"
            self.broker = ChildProcess(
                "broker",
                broker_command(url),
                log_file=log_file,
                env=env,
                stop_signal=signal.SIGTERM,
                stop_timeout=5.0,
                death_signal=signal.SIGKILL,
            )
            self.broker.start()
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline:
                self._checkpoint()
                if not self.broker.running:
                    break
                try:
                    if probe_metadata(HTTP_HOST, port, timeout=1.0):
                        log.info("stack.broker_ready", port=port, pid=self.broker.pid)
                        return f"{HTTP_HOST}:{port}"
                except (OSError, ValueError, struct.error):
                    pass
                time.sleep(0.05)
            self.broker.stop()
            if "AddrInUse" not in log_tail(log_file) and "Address in use" not in log_tail(log_file):
                break
        raise StackError(f"local broker did not start: {log_tail(log_file)}")

    def _database_urls(self) -> dict[str, str]:
        """Each service's database URL, known before the embedded server runs."""
        urls: dict[str, str] = {}
        if self.database_url:
            from sqlalchemy.engine import make_url

            from eropaf_platform.db import normalise_url

            server = make_url(normalise_url(self.database_url))
            for name in self._with_database():
                db = database_name(self.data_dir, name, shared_server=True)
                urls[name] = server.set(database=db).render_as_string(hide_password=False)
        else:
            from .postgres_process import PostgresProcess

            self.postgres = PostgresProcess(
                self.data_dir / "postgres", log_file=self.logs_dir / "postgres.log"
            )
            for name in self._with_database():
                urls[name] = self.postgres.url_for(
                    database_name(self.data_dir, name, shared_server=False)
                )
        return urls

    def _with_database(self) -> list[str]:
        return [name for name in self.services if name not in WITHOUT_DATABASE]

    def _start_databases(self, urls: dict[str, str]) -> None:
        """Start the embedded server (initdb on first use), or check the given server.

        Each service creates its own database when missing (`eropaf_platform.db.migrate`);
        on a given server that is done here too, so an unreachable server fails `up` at once.
        """
        if self.postgres is not None:
            self.postgres.start(should_stop=self.stop_event.is_set)
            return
        from eropaf_platform.db import ensure_database

        for url in urls.values():
            ensure_database(url)

    def _wait_services_ready(self, deadline: float) -> None:
        pending = dict(self.runners)
        # One probe per service at a time, all at once: a ready service's probe (database and
        # broker checks) takes a while on a busy machine, and one after the other they add up.
        with ThreadPoolExecutor(max_workers=max(1, len(pending))) as probes:
            while pending:
                self._checkpoint()
                self._check_infrastructure()
                now = time.monotonic()
                for name, runner in list(pending.items()):
                    runner.check(now)
                    if runner.crashes >= MAX_CRASHES_BEFORE_READY:
                        raise StackError(
                            f"service {name} exited {runner.crashes} times before it was "
                            f"ready; see {runner.child.log_file}"
                        )
                running = [name for name, runner in pending.items() if runner.child.running]
                urls = [pending[name].url for name in running]
                for name, ready in zip(running, probes.map(service_ready, urls), strict=True):
                    if ready:
                        log.info("stack.service_ready", service=name, url=pending[name].url)
                        del pending[name]
                if not pending:
                    return
                self._pause_or_time_out(deadline, pending)

    def _pause_or_time_out(self, deadline: float, pending: dict[str, ServiceRunner]) -> None:
        if time.monotonic() > deadline:
            raise StackError(
                f"not ready within {START_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}; "
                f"see their logs in {self.logs_dir}"
            )
        self.stop_event.wait(POLL_INTERVAL_S)

    def _check_infrastructure(self) -> None:
        if self.broker is not None and not self.broker.running:
            raise StackError(f"the local broker exited: {log_tail(self.broker.log_file, 1000)}")
        if self.postgres is not None and not self.postgres.running:
            raise StackError(f"PostgreSQL exited: {log_tail(self.postgres.log_file, 1000)}")

    # -- run --------------------------------------------------------------------------

    def supervise(self) -> None:
        """Keep services running until a stop is requested; StackError if infrastructure dies."""
        while not self.stop_event.is_set():
            self._check_infrastructure()
            now = time.monotonic()
            if any([runner.check(now) for runner in self.runners.values()]):
                self.write_stack_file()  # new pids
            self.stop_event.wait(POLL_INTERVAL_S * 2)

    def info(self) -> dict[str, Any]:
        assert self.ctx is not None
        return {
            "version": 1,
            "data_dir": str(self.data_dir),
            "supervisor_pid": os.getpid(),
            "started_at": (self.started_at or datetime.now(UTC)).isoformat(),
            "bootstrap_servers": self.ctx.bootstrap_servers,
            "intake_url": self.ctx.url("intake"),
            "scheduling_url": self.ctx.url("scheduling")
            if "scheduling" in self.ctx.ports
            else None,
            # matching's internal read API (/internal/v1/, the internal token)
            "matching_url": self.ctx.url("matching") if "matching" in self.ctx.ports else None,
            "portal_url": self.ctx.url("portal") if "portal" in self.services else None,
            "mail_dir": str(self.mail_dir) if self.mail_sink is not None else None,
            "logs_dir": str(self.logs_dir),
            "smtp": {"host": self.ctx.smtp_host, "port": self.ctx.smtp_port},
            # Passwords of an external server stay out of this file.
            "database_urls": {
                name: _hide_password(url) if self.database_url else url
                for name, url in self.ctx.database_urls.items()
            },
            "services": {
                name: {"url": runner.url, "pid": runner.child.pid}
                for name, runner in self.runners.items()
            },
            "broker": {"local": self.broker is not None, "pid": self.broker and self.broker.pid},
            "postgres": {
                "embedded": self.postgres is not None,
                "pid": self.postgres.pid if self.postgres is not None else None,
                "data_dir": str(self.postgres.data_dir) if self.postgres is not None else None,
            },
        }

    def write_stack_file(self) -> None:
        write_atomic(self.data_dir / STACK_FILE, json.dumps(self.info(), indent=2) + "\n")

    # -- stop -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Services first (they flush and disconnect), then what they depend on."""
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        for runner in self.runners.values():
            if runner.child.running and runner.child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(runner.child.pid, signal.SIGTERM)  # all at once, then wait for each
        for runner in self.runners.values():
            runner.child.stop()
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.mail_sink is not None:
            steps.append(("mail sink", self.mail_sink.stop))
        if self.broker is not None:
            steps.append(("broker", self.broker.stop))
        if self.postgres is not None:
            steps.append(("postgres", self.postgres.stop))
        for what, stop in steps:
            try:
                stop()
            except Exception as error:  # keep going: the next part must still be stopped
                log.error("stack.stop_failed", part=what, error=repr(error))
        log.info("stack.stopped")


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (the port 1..65535); ValueError otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- the command -------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    """`eropaf up`: start the stack, supervise it until a signal, stop it."""
    data_dir = Path(args.data_dir).expanduser().resolve()
    configure_logging("stack", os.environ.get("EROPAF_LOG_LEVEL", "INFO"))
    for chatty in ("mail.log", "httpx", "alembic"):  # per-connection / per-probe noise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.http_base_port is not None and not 1 <= args.http_base_port <= 65535 - len(SERVICES):
        print(f"--http-base-port must be 1..{65535 - len(SERVICES)}", file=sys.stderr)
        return 2
    try:
        services = selected_services()
        if args.smtp_server is not None:
            parse_host_port(args.smtp_server)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    with data_dir_lock(data_dir) as locked:
        if not locked:
            print(
                f"another `eropaf up` is running on {data_dir} (pid {lock_holder(data_dir)})",
                file=sys.stderr,
            )
            return 1
        stack = Stack(
            data_dir,
            database_url=args.database_url,
            bootstrap_servers=args.bootstrap_servers,
            http_base_port=args.http_base_port,
            smtp_server=args.smtp_server,
            services=services,
        )

        def request_stop(signum: int, _frame: object) -> None:
            log.info("stack.stop_requested", signal=signal.Signals(signum).name)
            stack.stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, request_stop)
        code = 0
        try:
            stack.start()
            info = stack.info()
            mail = info["mail_dir"] or f"smtp {args.smtp_server}"
            print(
                f"eropaf stack ready: intake {info['intake_url']}, portal {info['portal_url']}, "
                f"kafka {info['bootstrap_servers']}, mail {mail} "
                f"({data_dir / STACK_FILE})",
                flush=True,
            )
            stack.supervise()
        except StopRequested:
            pass
        except Exception as error:  # report any start/run failure, then still clean up
            log.error("stack.failed", error=str(error), error_type=type(error).__name__)
            print(f"eropaf up failed: {error}", file=sys.stderr, flush=True)
            code = 1
        finally:
            # A second signal during shutdown must not interrupt it half-way.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            stack.shutdown()
        return code
