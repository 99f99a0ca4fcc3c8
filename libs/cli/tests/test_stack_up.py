"""`eropaf up` for real: a subprocess running the broker, PostgreSQL, the mail sink and services.

One stack serves most tests; the last test of the module SIGKILLs it, checks that nothing
survives, starts it again on the same data dir and stops it with `eropaf down`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from eropaf_cli import stack
from eropaf_cli.testing import RunningStack, stack_env, start_stack, stop_stack, tail
from eropaf_platform.db import libpq_url
from eropaf_platform.local.process import pid_alive
from eropaf_platform.testing.wait import WaitTimeout, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A regression guard well above the 30 s goal (measured by `make bench`), so that a loaded
# machine does not make the test flaky while a start-up that serialises again still fails.
READY_GUARD_S = 60.0
GONE_BUDGET_S = 30.0


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc, so it also sees grandchildren)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def recorded_pids(info: dict[str, Any]) -> set[int]:
    pids = {info["broker"]["pid"], info["postgres"]["pid"]}
    pids |= {service["pid"] for service in info["services"].values()}
    return {pid for pid in pids if pid}


def assert_all_gone(pids: set[int]) -> None:
    wait_until(
        lambda: not {pid for pid in pids if pid_alive(pid)},
        timeout=GONE_BUDGET_S,
        interval=0.1,
        message=f"still alive: {sorted(pid for pid in pids if pid_alive(pid))}",
    )


def ready_status(url: str, within: float = 30.0) -> int:
    """The service's readiness answer: 200 as soon as it gives one within ``within`` seconds,
    else the last answer. One probe may time out on a busy machine (the check gives the
    database two seconds), which says nothing about the stack."""
    answers: list[int] = []

    def ready() -> bool:
        answers.append(httpx.get(f"{url}/health/ready", timeout=10).status_code)
        return answers[-1] == 200

    with contextlib.suppress(WaitTimeout):
        wait_until(ready, timeout=within, interval=0.5)
    return answers[-1]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    running = start_stack(data_dir)
    try:
        yield running
    finally:
        stop_stack(running.process)


# -- one running stack ------------------------------------------------------------------


def test_stack_json_within_budget_and_every_service_ready(running: RunningStack) -> None:
    info = running.info
    print(f"time to ready: {running.seconds_to_ready:.1f}s")
    assert running.seconds_to_ready < READY_GUARD_S
    assert set(info["services"]) == set(stack.selected_services(stack_env()))
    for key in ("bootstrap_servers", "intake_url", "mail_dir", "database_urls", "smtp"):
        assert info[key], key
    assert info["mail_dir"] == str(running.data_dir / "mail")
    assert info["intake_url"].startswith("http://127.0.0.1:")
    assert info["scheduling_url"].startswith("http://127.0.0.1:")
    assert info["scheduling_url"] == info["services"]["scheduling"]["url"]
    assert info["matching_url"] == info["services"]["matching"]["url"]
    assert info["portal_url"] == info["services"]["portal"]["url"]
    # the staff portal answers with its login page, in Dutch
    login = httpx.get(f"{info['portal_url']}/login", timeout=10)
    assert login.status_code == 200 and '<html lang="nl">' in login.text
    # the staff API (CONTRACT §4.2) answers, and only with a staff token
    assert httpx.get(f"{info['scheduling_url']}/v1/backlog", timeout=10).status_code == 401
    # matching's internal read API answers, and only with the internal token
    assert info["matching_url"] == info["services"]["matching"]["url"]
    funnel = (
        f"{info['matching_url']}/internal/v1/funnel?gemeente=0356&from=2026-01-01&to=2026-01-31"
    )
    assert httpx.get(funnel, timeout=10).status_code == 401
    secrets = json.loads((running.data_dir / "secrets.json").read_text())
    internal = {"Authorization": f"Bearer {secrets['internal_api_token']}"}
    assert httpx.get(funnel, headers=internal, timeout=10).status_code == 200
    for name, service in info["services"].items():
        assert ready_status(service["url"]) == 200, name
        assert (running.data_dir / "logs" / f"{name}.log").exists()
    assert info["supervisor_pid"] == running.process.pid


def test_one_database_per_service_on_the_embedded_server(running: RunningStack) -> None:
    urls = running.info["database_urls"]
    assert str(running.data_dir / "postgres") == running.info["postgres"]["data_dir"]
    for name, url in urls.items():
        assert make_url(url).database == f"eropaf_{name}"
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (f"eropaf_{name}",)


def test_services_get_the_data_dirs_secrets_not_dev_mode(running: RunningStack) -> None:
    secrets = json.loads((running.data_dir / stack.SECRETS_FILE).read_text())
    for name, service in running.info["services"].items():
        raw = Path(f"/proc/{service['pid']}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        assert env["EROPAF_DEV_MODE"] == "false"
        assert env["EROPAF_SERVICE_NAME"] == name
        if name in ("intake", "matching"):
            assert env["EROPAF_PSEUDONYM_KEY"] == secrets["pseudonym_key"]


def test_status_command_reports_every_service_ready(running: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eropaf_cli", "status", "--data-dir", str(running.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in running.info["services"]:
        assert name in result.stdout


def test_a_second_up_on_the_same_data_dir_is_refused(running: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eropaf_cli", "up", "--data-dir", str(running.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=stack_env(),
    )
    assert result.returncode == 1
    assert "another `eropaf up` is running" in result.stderr


def test_a_crashed_service_is_restarted(running: RunningStack) -> None:
    name, service = next(iter(running.info["services"].items()))
    os.kill(service["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        info = stack.read_stack_info(running.data_dir)
        if info is None or info["services"][name]["pid"] == service["pid"]:
            return None
        try:
            return info if ready_status(info["services"][name]["url"]) == 200 else None
        except httpx.HTTPError:
            return None

    info = wait_until(restarted, timeout=40, interval=0.2)
    assert info is not None
    running.info = info
    assert running.process.poll() is None


def test_sigkilled_supervisor_leaves_nothing_and_restart_keeps_the_data(
    running: RunningStack,
) -> None:
    """Runs last on the module's stack: kill it hard, check, start again, stop with `down`."""
    running.info = stack.read_stack_info(running.data_dir) or running.info
    database = next(iter(running.info["database_urls"].values()))
    with psycopg.connect(libpq_url(database)) as conn:
        conn.execute("CREATE TABLE stack_test_marker (note text)")
        conn.execute("INSERT INTO stack_test_marker VALUES ('kept across restarts')")
    children = descendants(running.process.pid) | recorded_pids(running.info)
    assert recorded_pids(running.info) <= children

    running.process.send_signal(signal.SIGKILL)
    running.process.wait(10)
    assert_all_gone(children)

    again = start_stack(running.data_dir, name="again")
    try:
        print(f"time to ready on restart: {again.seconds_to_ready:.1f}s")
        for service in again.info["services"].values():
            assert ready_status(service["url"]) == 200
        database = next(iter(again.info["database_urls"].values()))
        with psycopg.connect(libpq_url(database)) as conn:
            assert conn.execute("SELECT note FROM stack_test_marker").fetchall() == [
                ("kept across restarts",)
            ]
        children = descendants(again.process.pid) | recorded_pids(again.info)

        down = subprocess.run(
            [sys.executable, "-m", "eropaf_cli", "down", "--data-dir", str(again.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert again.process.wait(30) == 0, tail(again.output)
        assert_all_gone(children)
        assert not (again.data_dir / stack.STACK_FILE).exists()
    finally:
        stop_stack(again.process)


# -- existing infrastructure ------------------------------------------------------------


def test_up_on_an_existing_server_and_broker_then_sigterm(
    tmp_path: Path, postgres_server_url: str, kafka_bootstrap_servers: str
) -> None:
    data_dir = tmp_path / "data"
    running = start_stack(
        data_dir,
        "--database-url",
        postgres_server_url,
        "--bootstrap-servers",
        kafka_bootstrap_servers,
    )
    urls = running.info["database_urls"]
    try:
        assert running.info["bootstrap_servers"] == kafka_bootstrap_servers
        assert running.info["broker"]["local"] is False
        assert running.info["postgres"]["embedded"] is False
        assert not (data_dir / "postgres").exists()
        for name, url in urls.items():
            assert make_url(url).database == stack.database_name(data_dir, name, shared_server=True)
            assert ready_status(running.info["services"][name]["url"]) == 200
        children = descendants(running.process.pid) | recorded_pids(running.info)
        assert stop_stack(running.process) == 0, tail(running.output)
        assert_all_gone(children)
    finally:
        stop_stack(running.process)
        with psycopg.connect(libpq_url(postgres_server_url), autocommit=True) as conn:
            for url in urls.values():
                name = make_url(url).database
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
