"""The local stack: the whole system on one machine, under one supervisor.

`up` starts a local Kafka-compatible broker (unless `--bootstrap-servers`), an SMTP sink
writing `DIR/mail/*.eml`, each service as its own process (`python -m eropaf_<service>`, log
in `DIR/logs/<service>.log`), and meanwhile an embedded PostgreSQL under `DIR/postgres`
(unless `--database-url`): the services import their code while it starts, then each waits
for the server, creates its database and migrates. When every service's `/health/ready`
answers 200 it writes `DIR/stack.json`.

Failure policy: a service that exits is restarted with exponential backoff (1 s doubling to
30 s, reset once it has stayed up for a minute) — operators want the rest of the stack to keep
going. Before the stack is first ready, a service that keeps crashing (a configuration or code
error) fails `up` instead. The broker and PostgreSQL are not restarted: the services' addresses
depend on them, so their loss stops the stack with exit code 1.

SIGINT/SIGTERM/SIGHUP stop it: services first, then the mail sink, the broker, PostgreSQL.
Every child carries `PR_SET_PDEATHSIG`, so none survives even a SIGKILLed supervisor.

This module holds what the supervisor (`stack_runtime`) and the commands (`stack_commands`:
`eropaf up | down | status`) share: the services and their settings, the data dir's files
and the readiness probe.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Only the standard library at the top: `eropaf` loads this module (through `stack_commands`)
# for every command. The supervisor and its imports are in `stack_runtime`, loaded by `up` alone.

# Every service of the system, in start order; each runs as `python -m eropaf_<name>`.
SERVICES: tuple[str, ...] = ("intake", "matching", "scheduling", "notification", "portal")
# Services with no database of their own (the portal shows what the others' APIs return).
WITHOUT_DATABASE: frozenset[str] = frozenset({"portal"})
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
    "portal_session_key": lambda: secrets.token_urlsafe(32),
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
    "EROPAF_DATABASE_URL": lambda ctx, service: ctx.database_urls.get(service, ""),
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
    # the staff API lets a service holding the internal token act for a staff member
    "scheduling": {"EROPAF_INTERNAL_API_TOKEN": _secret("internal_api_token")},
    "notification": {
        "EROPAF_SMTP_HOST": lambda ctx, _service: ctx.smtp_host,
        "EROPAF_SMTP_PORT": lambda ctx, _service: str(ctx.smtp_port),
    },
    "portal": {
        "EROPAF_INTAKE_URL": lambda ctx, _service: ctx.url("intake"),
        "EROPAF_MATCHING_URL": lambda ctx, _service: ctx.url("matching"),
        "EROPAF_SCHEDULING_URL": lambda ctx, _service: ctx.url("scheduling"),
        "EROPAF_INTERNAL_API_TOKEN": _secret("internal_api_token"),
        "EROPAF_SESSION_SECRET": _secret("portal_session_key"),
        "EROPAF_PUBLIC_URL": lambda ctx, _service: ctx.url("portal"),
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
