"""PostgreSQL access: one database per service, async engine, migrations at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import sqlalchemy as sa
from psycopg.types.json import set_json_loads
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako and Pygments) is imported by `migrate` only: a starting service then
# loads it in the migration's thread while its consumer groups join, not before it serves.

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Every service talks psycopg 3 (sync and async with one driver)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"only PostgreSQL is supported, got {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


# psycopg prepares a statement on the server after a few runs, and PostgreSQL then may keep
# a generic plan made while the table was small: a sequential scan for ``= ANY(:array)``
# lookups (processed messages, signals, keys), each batch a full scan of a growing table.
# Measured: 390 ms per 500-id lookup at 40,000 rows, 6.6 ms with custom plans. Planning every
# statement costs well under a millisecond per batch.
_CONNECT_OPTIONS = "-c plan_cache_mode=force_custom_plan"

# json/jsonb columns (outbox headers, case facts) decoded by orjson: the stdlib decoder was
# ~8% of the outbox relay's process.
set_json_loads(orjson.loads)


def libpq_url(url: str) -> str:
    """The same server and database as a libpq URL, for ``psycopg.connect()``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=5,
        pool_pre_ping=True,
        connect_args={"options": _CONNECT_OPTIONS},
    )


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session, session.begin():
        yield session


def ensure_database(url: str) -> bool:
    """Create the service's database on its server when missing. Returns True if created."""
    target = make_url(normalise_url(url))
    name = target.database
    if not name:
        raise ValueError("database URL names no database")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote(name)
            try:
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            except sa.exc.ProgrammingError as exc:  # created concurrently by a sibling process
                if "already exists" not in str(exc):
                    raise
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(normalise_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(target.database or "")
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        admin.dispose()


def _alembic_config(script_location: Path, url: str, version_table: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    cfg.attributes["version_table"] = version_table
    return cfg


def migrate(url: str, service_migrations: Path | None = None, *, service: str = "service") -> None:
    """Bring the database to head: the platform's tables (outbox, processed messages,
    broker epoch) first, then the service's own, each with its own version table."""
    from alembic import command

    ensure_database(url)
    command.upgrade(_alembic_config(MIGRATIONS_DIR, url, "alembic_version_platform"), "head")
    if service_migrations is not None:
        command.upgrade(
            _alembic_config(service_migrations, url, f"alembic_version_{service}"), "head"
        )


async def migrate_async(
    url: str, service_migrations: Path | None = None, *, service: str = "service"
) -> None:
    await asyncio.to_thread(migrate, url, service_migrations, service=service)
