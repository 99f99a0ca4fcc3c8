"""pytest plugin: a Kafka broker and PostgreSQL databases for integration tests.

Registered in the root `conftest.py` (`pytest_plugins = ["eropaf_platform.testing.fixtures"]`).

Where the infrastructure comes from, in order:

- broker: `KAFKA_BOOTSTRAP_SERVERS`; else a Kafka testcontainer when a Docker
  engine answers; else a `LocalBroker` (Tansu) for the session.
- PostgreSQL: `EROPAF_TEST_DATABASE_URL`; else a server on 127.0.0.1:5432
  (user postgres); else an `EmbeddedPostgres` in a private temp dir.

With `CI=true` a missing broker or database fails the run; elsewhere the tests
that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import structlog

from eropaf_platform.db import libpq_url

from .wait import WaitTimeout, wait_until, wait_until_async

__all__ = [
    "WaitTimeout",
    "database_url",
    "fresh_database_url",
    "kafka_bootstrap_servers",
    "postgres_server_url",
    "wait_until",
    "wait_until_async",
]

log = structlog.get_logger(__name__)

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENV = "EROPAF_TEST_DATABASE_URL"
DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.1"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so the markers exist wherever the plugin is loaded.
    config.addinivalue_line("markers", "unit: pure tests, no I/O")
    config.addinivalue_line("markers", "integration: needs the real broker and PostgreSQL")
    config.addinivalue_line("markers", "slow: long-running (crash/restart, large batches)")


# -- helpers ------------------------------------------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(what: str, reason: str) -> NoReturn:
    """Fail in CI (a missing dependency must never pass silently), skip elsewhere."""
    message = f"{what} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: integration infrastructure is required)", pytrace=False)
    pytest.skip(message)


def docker_engine_answers(timeout: float = 0.5) -> bool:
    """Cheap check for a Docker engine: `GET /_ping` on its socket, short timeout."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not Path(path).exists():
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif host.startswith("tcp://"):
            hostport = host.removeprefix("tcp://").rstrip("/")
            name, _, port = hostport.rpartition(":")
            sock = socket.create_connection((name, int(port)), timeout=timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(1024)
    except (OSError, ValueError):
        return False
    return reply.startswith(b"HTTP/") and b" 200 " in reply.split(b"\r\n", 1)[0]


def kafka_answers(bootstrap_servers: str, timeout: float = 10.0) -> bool:
    """True when any of the bootstrap servers answers a Kafka metadata request in time."""
    from ..local.broker import probe_metadata

    addresses = []
    for entry in bootstrap_servers.split(","):
        host, _, port = entry.strip().rpartition(":")
        if host and port.isdigit():
            addresses.append((host.strip("[]"), int(port)))

    def any_answers() -> bool:
        for host, port in addresses:
            try:
                if probe_metadata(host, port, timeout=1.0):
                    return True
            except (OSError, ValueError, struct.error):
                continue
        return False

    try:
        wait_until(any_answers, timeout=timeout, interval=0.2)
    except WaitTimeout:
        return False
    return True


def to_sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 SQLAlchemy dialect."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def postgres_answers(url: str, timeout: int = 2) -> bool:
    import psycopg

    try:
        with psycopg.connect(libpq_url(url), connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, OSError):
        return False
    return True


def unique_database_name(prefix: str = "eropaf_test") -> str:
    # pid + random: two runs side by side on one server never pick the same name.
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


class DatabaseRegistry:
    """Creates uniquely named databases on one server and drops them all at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create(self, prefix: str = "eropaf_test") -> str:
        import psycopg
        from psycopg import sql

        name = unique_database_name(prefix)
        with psycopg.connect(libpq_url(self.server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return with_database(self.server_url, name)

    def drop_all(self) -> None:
        import psycopg
        from psycopg import sql

        if not self.created:
            return
        with psycopg.connect(libpq_url(self.server_url), autocommit=True) as conn:
            for name in reversed(self.created):
                # FORCE: a leaked connection from a test must not keep the database alive.
                try:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
                except psycopg.Error as error:
                    log.warning("test_database.drop_failed", database=name, error=str(error))
        self.created.clear()


# -- broker -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _shared_kafka() -> Iterator[str | None]:
    """An external or containerised broker for the whole session; None: start local ones."""
    configured = os.environ.get(KAFKA_ENV, "").strip()
    if configured:
        if not kafka_answers(configured):
            unavailable("Kafka broker", f"{KAFKA_ENV}={configured} does not answer metadata")
        yield configured
        return
    if docker_engine_answers():
        yield from _kafka_testcontainer()
        return
    yield None


@pytest.fixture(scope="module")
def kafka_bootstrap_servers(_shared_kafka: str | None) -> Iterator[str]:
    """Bootstrap servers of a Kafka-compatible broker.

    With the local broker each test module gets a fresh one (it starts in well under a second):
    services read their topics from the start, and would otherwise wade through every message
    that earlier modules published (thousands, in the crash tests). An external broker is
    shared; test data there is kept apart by unique partner codes and consumer groups.
    """
    if _shared_kafka is not None:
        yield _shared_kafka
        return

    from ..local.broker import LocalBroker

    broker = LocalBroker()
    try:
        broker.start()
    except Exception as error:  # any start failure means "no broker here"
        unavailable("Kafka broker", f"local Tansu broker did not start: {error}")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def _kafka_testcontainer() -> Iterator[str]:
    try:
        from testcontainers.kafka import KafkaContainer

        container: Any = KafkaContainer(KAFKA_IMAGE)
        container.start()
    except Exception as error:  # image pull or engine trouble
        unavailable("Kafka broker", f"Kafka testcontainer did not start: {error}")
    try:
        yield str(container.get_bootstrap_server())
    finally:
        container.stop()


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """SQLAlchemy URL (psycopg 3) of a PostgreSQL server's maintenance database."""
    configured = os.environ.get(DATABASE_ENV, "").strip()
    if configured:
        url = to_sqlalchemy_url(configured)
        if not postgres_answers(url, timeout=5):
            unavailable("PostgreSQL", f"{DATABASE_ENV} is set but the server does not answer")
        yield url
        return

    if postgres_answers(DEFAULT_SERVER_URL):
        yield DEFAULT_SERVER_URL
        return

    yield from _embedded_postgres()


def _embedded_postgres() -> Iterator[str]:
    from ..local.postgres import EmbeddedPostgres

    # Short private dir: keeps the unix socket in the data dir, and apart per run.
    root = Path(tempfile.mkdtemp(prefix="eropaf-pg-"))
    server = EmbeddedPostgres(root / "data")
    try:
        server.start()
    except Exception as error:  # any start failure means "no database here"
        shutil.rmtree(root, ignore_errors=True)
        unavailable("PostgreSQL", f"embedded PostgreSQL did not start: {error}")
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def _database_registry(postgres_server_url: str) -> Iterator[DatabaseRegistry]:
    registry = DatabaseRegistry(postgres_server_url)
    try:
        yield registry
    finally:
        registry.drop_all()


@pytest.fixture(scope="session")
def database_url(_database_registry: DatabaseRegistry) -> str:
    """A database of its own for this test session (dropped at the end)."""
    return _database_registry.create()


@pytest.fixture
def fresh_database_url(_database_registry: DatabaseRegistry) -> Callable[..., str]:
    """Factory: each call creates a new, empty database and returns its URL.

    For tests that need isolation from the session database; all are dropped at
    session end.
    """
    return _database_registry.create
