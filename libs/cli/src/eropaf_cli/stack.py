"""`eropaf up | down | status`: the whole system on one machine, under one supervisor.

`up` starts, in order, a local Kafka-compatible broker (unless `--bootstrap-servers`), an
embedded PostgreSQL under `DIR/postgres` (unless `--database-url`) with one database per
service, an SMTP sink writing `DIR/mail/*.eml`, and each service as its own process
(`python -m eropaf_<service>`, log in `DIR/logs/<service>.log`). When every service's
`/health/ready` answers 200 it writes `DIR/stack.json`.

Failure policy: a service that exits is restarted with exponential backoff (1 s doubling to
30 s, reset once it has stayed up for a minute) — operators want the rest of the stack to keep
going. Before the stack is first ready, a service that keeps crashing (a configuration or code
error) fails `up` instead. The broker and PostgreSQL are not restarted: the services' addresses
depend on them, so their loss stops the stack with exit code 1.

SIGINT/SIGTERM/SIGHUP stop it: services first, then the mail sink, the broker, PostgreSQL.
Every child carries `PR_SET_PDEATHSIG`, so none survives even a SIGKILLed supervisor.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import signal
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eropaf_platform.local.process import pid_alive
from eropaf_platform.logging import configure_logging, get_logger

from .supervisor import ChildProcess, log_tail

log = get_logger(__name__)

# Every service of the system, in start order; each runs as `python -m eropaf_<name>`.
SERVICES: tuple[str, ...] = ("intake", "matching", "scheduling", "notification")
# Development aid only: a comma-separated subset of SERVICES to start.
SERVICES_ENV = "EROPAF_STACK_SERVICES"

HTTP_HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0  # generous for slow machines; here the stack is ready in seconds
MAX_CRASHES_BEFORE_READY = 3
RESTART_BACKOFF_INITIAL_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a service up this long has its backoff reset
SERVICE_STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.25
DOWN_TIMEOUT_S = 90.0

STACK_FILE = "stack.json"
SECRETS_FILE = "secrets.json"
LOCK_FILE = "supervisor.lock"


# -- secrets --------------------------------------------------------------------------

# name -> generator; generated once per data dir and kept in DIR/secrets.json (mode 0600).
SECRET_GENERATORS: dict[str, Callable[[], str]] = {
    "pseudonym_key": lambda: secrets.token_hex(32),
    "master_keys": lambda: "local1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "internal_api_token": lambda: secrets.token_urlsafe(32),
}


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """The data dir's secrets; missing ones (first run, or a new setting) are generated.

    Reused on every restart: intake's stored data is encrypted and pseudonymised with them.
    """
    path = data_dir / SECRETS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    missing = [name for name in SECRET_GENERATORS if name not in stored]
    for name in missing:
        stored[name] = SECRET_GENERATORS[name]()
    if missing:
        write_atomic(path, json.dumps(stored, indent=2) + "\n", mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return stored


# -- service settings -----------------------------------------------------------------


@dataclass(frozen=True)
class StackContext:
    """What the services' settings are derived from."""

    bootstrap_servers: str
    database_urls: Mapping[str, str]
    ports: Mapping[str, int]
    smtp_host: str
    smtp_port: int
    secrets: Mapping[str, str]

    def url(self, service: str) -> str:
        return f"http://{HTTP_HOST}:{self.ports[service]}"


# An environment variable's value for one service; adding a setting is one line below.
Setting = Callable[[StackContext, str], str]


def _secret(name: str) -> Setting:
    return lambda ctx, _service: ctx.secrets[name]


COMMON_ENV: dict[str, Setting] = {
    "EROPAF_SERVICE_NAME": lambda _ctx, service: service,
    "EROPAF_DEV_MODE": lambda _ctx, _service: "false",  # real secrets, never dev defaults
    "EROPAF_DATABASE_URL": lambda ctx, service: ctx.database_urls[service],
    "EROPAF_KAFKA_BOOTSTRAP_SERVERS": lambda ctx, _service: ctx.bootstrap_servers,
    "EROPAF_HTTP_HOST": lambda _ctx, _service: HTTP_HOST,
    "EROPAF_HTTP_PORT": lambda ctx, service: str(ctx.ports[service]),
}

SERVICE_ENV: dict[str, dict[str, Setting]] = {
    "intake": {
        "EROPAF_PSEUDONYM_KEY": _secret("pseudonym_key"),
        "EROPAF_MASTER_KEYS": _secret("master_keys"),
        "EROPAF_INTERNAL_API_TOKEN": _secret("internal_api_token"),
    },
    "matching": {
        "EROPAF_PSEUDONYM_KEY": _secret("pseudonym_key"),
        "EROPAF_INTAKE_URL": lambda ctx, _service: ctx.url("intake"),
        "EROPAF_INTERNAL_API_TOKEN": _secret("internal_api_token"),
    },
    "scheduling": {},
    "notification": {
        "EROPAF_SMTP_HOST": lambda ctx, _service: ctx.smtp_host,
        "EROPAF_SMTP_PORT": lambda ctx, _service: str(ctx.smtp_port),
    },
}


def service_env(
    ctx: StackContext, service: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment of `service`: the caller's (log level and the like pass
    through), overridden by what the stack decides."""
    env = dict(os.environ if base is None else base)
    for name, value in {**COMMON_ENV, **SERVICE_ENV.get(service, {})}.items():
        env[name] = value(ctx, service)
    return env


def selected_services(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = (os.environ if environ is None else environ).get(SERVICES_ENV, "").strip()
    if not raw:
        return SERVICES
    wanted = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SERVICES))
    if unknown:
        raise ValueError(f"{SERVICES_ENV}: unknown services {unknown}")
    return tuple(name for name in SERVICES if name in wanted)


def database_name(data_dir: Path, service: str, *, shared_server: bool) -> str:
    """Per-service database name. On a shared server the name carries a short hash of the
    data dir, so two stacks on one server never collide, yet it stays stable per DIR."""
    if not shared_server:
        return f"eropaf_{service}"
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"eropaf_{digest}_{service}"


# -- files ----------------------------------------------------------------------------


def write_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_stack_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((data_dir / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[bool]:
    """Exclusive lock on the data dir, holding our pid; yields False when another `up` has it.

    An flock dies with its holder, so a SIGKILLed supervisor never leaves a stale lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield True
    finally:
        handle.close()


def lock_holder(data_dir: Path) -> int | None:
    """Pid of the running supervisor on `data_dir`, None when none runs."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return None
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


# -- readiness probes -----------------------------------------------------------------


def http_status(url: str, timeout: float = 5.0) -> int | None:
    import httpx

    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


def service_ready(base_url: str) -> bool:
    return http_status(f"{base_url}/health/ready") == 200


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
        database_urls = self._start_databases()
        self._checkpoint()
        from eropaf_platform.local import MailSink

        self.mail_sink = MailSink(self.mail_dir).start()
        self.ctx = StackContext(
            bootstrap_servers=bootstrap,
            database_urls=database_urls,
            ports=self._ports(),
            smtp_host=self.mail_sink.host,
            smtp_port=self.mail_sink.port,
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
        self._wait_services_ready(begun + START_TIMEOUT_S)
        self.started_at = datetime.now(UTC)
        self.write_stack_file()
        log.info("stack.ready", seconds=round(time.monotonic() - begun, 2))

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
        from eropaf_platform.local.broker import broker_binary, probe_metadata
        from eropaf_platform.local.ports import free_port

        # Tansu reads these; an inherited value must not override our flags.
        tansu_env = {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}
        env = {k: v for k, v in os.environ.items() if k not in tansu_env}
        log_file = self.logs_dir / "broker.log"
        for _attempt in range(3):  # a picked port can be taken before the broker binds it
            port = free_port(HTTP_HOST)
            url = f"tcp://{HTTP_HOST}:{port}"
            self.broker = ChildProcess(
                "broker",
                [
                    str(broker_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    # Memory only: the services re-publish their retained outbox to a new broker.
                    "--storage-engine",
                    "memory://tansu/",
                ],
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

    def _start_databases(self) -> dict[str, str]:
        from sqlalchemy.engine import make_url

        from eropaf_platform.db import ensure_database, normalise_url

        urls: dict[str, str] = {}
        if self.database_url:
            server = make_url(normalise_url(self.database_url))
            for name in self.services:
                db = database_name(self.data_dir, name, shared_server=True)
                urls[name] = server.set(database=db).render_as_string(hide_password=False)
        else:
            from .postgres_process import PostgresProcess

            self.postgres = PostgresProcess(
                self.data_dir / "postgres", log_file=self.logs_dir / "postgres.log"
            )
            self.postgres.start(should_stop=self.stop_event.is_set)
            for name in self.services:
                urls[name] = self.postgres.url_for(
                    database_name(self.data_dir, name, shared_server=False)
                )
        for url in urls.values():
            ensure_database(url)
        return urls

    def _wait_services_ready(self, deadline: float) -> None:
        pending = dict(self.runners)
        while pending:
            self._checkpoint()
            self._check_infrastructure()
            now = time.monotonic()
            for name, runner in list(pending.items()):
                runner.check(now)
                if runner.crashes >= MAX_CRASHES_BEFORE_READY:
                    raise StackError(
                        f"service {name} exited {runner.crashes} times before it was ready; "
                        f"see {runner.child.log_file}"
                    )
                if runner.child.running and service_ready(runner.url):
                    log.info("stack.service_ready", service=name, url=runner.url)
                    del pending[name]
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
        from sqlalchemy.engine import make_url

        assert self.ctx is not None
        return {
            "version": 1,
            "data_dir": str(self.data_dir),
            "supervisor_pid": os.getpid(),
            "started_at": (self.started_at or datetime.now(UTC)).isoformat(),
            "bootstrap_servers": self.ctx.bootstrap_servers,
            "intake_url": self.ctx.url("intake"),
            "mail_dir": str(self.mail_dir),
            "logs_dir": str(self.logs_dir),
            "smtp": {"host": self.ctx.smtp_host, "port": self.ctx.smtp_port},
            # Passwords of an external server stay out of this file.
            "database_urls": {
                name: make_url(url).render_as_string(hide_password=True)
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


# -- commands -------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    configure_logging("stack", os.environ.get("EROPAF_LOG_LEVEL", "INFO"))
    for chatty in ("mail.log", "httpx", "alembic"):  # per-connection / per-probe noise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.http_base_port is not None and not 1 <= args.http_base_port <= 65535 - len(SERVICES):
        print(f"--http-base-port must be 1..{65535 - len(SERVICES)}", file=sys.stderr)
        return 2
    try:
        services = selected_services()
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
            print(
                f"eropaf stack ready: intake {info['intake_url']}, "
                f"kafka {info['bootstrap_servers']}, mail {info['mail_dir']} "
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


def cmd_down(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    pid = lock_holder(data_dir)
    if pid is None:
        print(f"no stack running on {data_dir}")
        return 0
    if pid <= 0:
        info = read_stack_info(data_dir) or {}
        pid = int(info.get("supervisor_pid") or 0)
        if pid <= 0:
            print(f"a stack holds {data_dir} but its pid is unknown", file=sys.stderr)
            return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while lock_holder(data_dir) is not None:
        if time.monotonic() > deadline:
            print(f"stack (pid {pid}) did not stop within {DOWN_TIMEOUT_S:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"stack on {data_dir} stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    pid = lock_holder(data_dir)
    if pid is None:
        print(f"no stack running on {data_dir}")
        return 1
    info = read_stack_info(data_dir)
    if info is None:
        print(f"stack on {data_dir} (pid {pid}) is starting")
        return 1
    print(
        f"stack on {data_dir}: supervisor pid {info['supervisor_pid']}, since {info['started_at']}"
    )
    print(f"  kafka  {info['bootstrap_servers']}")
    print(f"  smtp   {info['smtp']['host']}:{info['smtp']['port']} -> {info['mail_dir']}")
    all_ready = True
    for name, service in info["services"].items():
        code = http_status(f"{service['url']}/health/ready")
        ready = code == 200
        all_ready &= ready
        state = "ready" if ready else f"NOT READY ({code or 'no answer'})"
        alive = "" if pid_alive(int(service["pid"] or 0)) else " (process gone)"
        print(f"  {name:<13}{service['url']:<28}pid {service['pid']:<8}{state}{alive}")
    return 0 if all_ready else 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    up = subparsers.add_parser(
        "up",
        help="run the whole system on this machine",
        description=(
            "Run broker, PostgreSQL, SMTP sink and every service until SIGINT/SIGTERM; "
            "writes DIR/stack.json when ready. A crashed service is restarted with backoff."
        ),
    )
    up.add_argument("--data-dir", required=True, help="where data, mail and logs are kept")
    up.add_argument(
        "--database-url",
        help="an existing PostgreSQL server (each service gets its own database there)",
    )
    up.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="an existing Kafka instead of the local broker",
    )
    up.add_argument(
        "--http-base-port",
        type=int,
        metavar="N",
        help=f"HTTP ports N.. in the order {', '.join(SERVICES)} (default: free ports)",
    )
    up.set_defaults(handler=cmd_up)

    down = subparsers.add_parser("down", help="stop the stack running on a data dir")
    down.add_argument("--data-dir", required=True)
    down.set_defaults(handler=cmd_down)

    status = subparsers.add_parser("status", help="health of the stack running on a data dir")
    status.add_argument("--data-dir", required=True)
    status.set_defaults(handler=cmd_status)
