"""Fresh PostgreSQL databases for a benchmark run, and the CPU their backends use."""

from __future__ import annotations

import uuid

DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def create_database(server_url: str, name: str) -> str:
    """A new database ``name`` on the server; its SQLAlchemy URL."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from eropaf_platform.db import libpq_url

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    from eropaf_platform.db import libpq_url

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class BenchDatabase:
    """A fresh database on the server (created and dropped), or the given URL as it is."""

    def __init__(self, url: str | None) -> None:
        self.given = url
        self.name: str | None = None

    def create(self) -> str:
        if self.given:
            return self.given
        self.name = f"eropaf_bench_{uuid.uuid4().hex[:8]}"
        return create_database(DEFAULT_SERVER_URL, self.name)

    def drop(self) -> None:
        if self.name is not None:
            drop_database(DEFAULT_SERVER_URL, self.name)


def database_cpu_seconds(url: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to ``url``'s database (a pooled
    service keeps its connections, so the difference of two readings is its database's
    share); 0 when the server is not on this machine."""
    import psycopg
    from sqlalchemy.engine import make_url

    from eropaf_platform.db import libpq_url
    from eropaf_platform.local.process import process_cpu_seconds

    name = make_url(url).database
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    return sum(process_cpu_seconds(pid) for pid in pids)
