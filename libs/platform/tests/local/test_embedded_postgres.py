"""EmbeddedPostgres: long data paths, persistence across restarts, clean stop."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from eropaf_platform.local.postgres import EmbeddedPostgres


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A temp dir outside pytest's basetemp.

    Run as root, postgres runs as user `pgserver` and needs to traverse every
    parent; pytest resets its `pytest-of-<user>` dir to 0700 whenever another
    session starts, which would lock a running server out mid-test.
    """
    path = Path(tempfile.mkdtemp(prefix="eropaf-pgtest-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _postgres_processes_for(data_dir: Path) -> list[int]:
    pids = []
    for proc in psutil.process_iter(attrs=["name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(data_dir) in cmdline:
            pids.append(proc.pid)
    return pids


@pytest.mark.integration
def test_long_data_dir_persists_across_restart(private_dir: Path) -> None:
    data_dir = private_dir / ("d" * 60) / ("e" * 50) / "pgdata"
    assert len(str(data_dir)) > 100
    server = EmbeddedPostgres(data_dir)
    server.start()
    try:
        assert server.create_database("eropaf_intake") is True
        assert server.create_database("eropaf_intake") is False
        assert server.url_for("eropaf_intake").startswith("postgresql+psycopg://")
        engine = sa.create_engine(server.url_for("eropaf_intake"))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (value text)"))
            conn.execute(sa.text("INSERT INTO kept VALUES ('still here')"))
        engine.dispose()
        first_pid = server.pid
    finally:
        server.stop()
    assert first_pid is not None and _gone(first_pid)
    assert _postgres_processes_for(data_dir) == []

    again = EmbeddedPostgres(data_dir).start()
    try:
        assert again.pid != first_pid
        engine = sa.create_engine(again.url_for("eropaf_intake"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT value FROM kept")).scalar_one() == "still here"
        engine.dispose()
    finally:
        again.stop()
    assert _postgres_processes_for(data_dir) == []


@pytest.mark.integration
def test_stop_with_open_connection_still_stops(private_dir: Path) -> None:
    with EmbeddedPostgres(private_dir / "pg") as server:
        engine = sa.create_engine(server.url)
        conn = engine.connect()  # left open on purpose: fast shutdown must cut it
        conn.execute(sa.text("SELECT 1"))
        pid = server.pid
    assert pid is not None and _gone(pid)
    conn.invalidate()
    engine.dispose()


@pytest.mark.unit
def test_url_requires_running_server(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _ = EmbeddedPostgres(tmp_path / "never-started").url
