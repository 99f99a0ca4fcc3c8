"""`eropaf up` pieces that need no processes: secrets, service settings, names, argument parsing."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from eropaf_cli import stack, stack_commands
from eropaf_cli.main import build_parser

pytestmark = pytest.mark.unit


def _context(secrets: dict[str, str]) -> stack.StackContext:
    return stack.StackContext(
        bootstrap_servers="127.0.0.1:9999",
        database_urls={name: f"postgresql+psycopg://db/eropaf_{name}" for name in stack.SERVICES},
        ports={name: 9000 + i for i, name in enumerate(stack.SERVICES)},
        smtp_host="127.0.0.1",
        smtp_port=2525,
        secrets=secrets,
    )


def test_secrets_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    first = stack.load_or_create_secrets(tmp_path)
    path = tmp_path / stack.SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) == set(stack.SECRET_GENERATORS)
    assert stack.load_or_create_secrets(tmp_path) == first
    other = tmp_path / "other"
    other.mkdir()
    assert stack.load_or_create_secrets(other)["pseudonym_key"] != first["pseudonym_key"]


def test_a_secret_added_later_is_generated_without_touching_the_others(tmp_path: Path) -> None:
    first = stack.load_or_create_secrets(tmp_path)
    stack.SECRET_GENERATORS["new_secret"] = lambda: "fresh"
    try:
        second = stack.load_or_create_secrets(tmp_path)
    finally:
        del stack.SECRET_GENERATORS["new_secret"]
    assert second == {**first, "new_secret": "fresh"}


def test_secret_formats_fit_the_services(tmp_path: Path) -> None:
    secrets = stack.load_or_create_secrets(tmp_path)
    assert len(secrets["pseudonym_key"]) >= 32
    key_id, _, encoded = secrets["master_keys"].partition(":")
    assert key_id and len(base64.b64decode(encoded, validate=True)) == 32
    assert len(secrets["internal_api_token"]) >= 32


def test_service_env_sets_the_stack_settings_over_the_callers(tmp_path: Path) -> None:
    secrets = stack.load_or_create_secrets(tmp_path)
    ctx = _context(secrets)
    base = {"EROPAF_LOG_LEVEL": "DEBUG", "EROPAF_DEV_MODE": "true", "EROPAF_DATABASE_URL": "x"}
    intake = stack.service_env(ctx, "intake", base)
    assert intake["EROPAF_LOG_LEVEL"] == "DEBUG"  # passes through
    assert intake["EROPAF_DEV_MODE"] == "false"  # never dev defaults
    assert intake["EROPAF_DATABASE_URL"] == "postgresql+psycopg://db/eropaf_intake"
    assert intake["EROPAF_HTTP_PORT"] == "9000"
    assert intake["EROPAF_SERVICE_NAME"] == "intake"
    assert intake["EROPAF_MASTER_KEYS"] == secrets["master_keys"]
    matching = stack.service_env(ctx, "matching", {})
    assert matching["EROPAF_PSEUDONYM_KEY"] == intake["EROPAF_PSEUDONYM_KEY"]
    assert matching["EROPAF_INTERNAL_API_TOKEN"] == intake["EROPAF_INTERNAL_API_TOKEN"]
    assert matching["EROPAF_INTAKE_URL"] == "http://127.0.0.1:9000"
    # the staff portal acts for staff members on scheduling's API with the same token
    scheduling = stack.service_env(ctx, "scheduling", {})
    assert scheduling["EROPAF_INTERNAL_API_TOKEN"] == intake["EROPAF_INTERNAL_API_TOKEN"]
    notification = stack.service_env(ctx, "notification", {})
    assert (notification["EROPAF_SMTP_HOST"], notification["EROPAF_SMTP_PORT"]) == (
        "127.0.0.1",
        "2525",
    )
    assert "EROPAF_PSEUDONYM_KEY" not in notification  # secrets only where needed
    portal = stack.service_env(ctx, "portal", {})
    assert portal["EROPAF_SCHEDULING_URL"] == "http://127.0.0.1:9002"
    assert portal["EROPAF_MATCHING_URL"] == "http://127.0.0.1:9001"
    assert portal["EROPAF_INTAKE_URL"] == "http://127.0.0.1:9000"
    assert portal["EROPAF_PUBLIC_URL"] == "http://127.0.0.1:9004"
    assert portal["EROPAF_INTERNAL_API_TOKEN"] == intake["EROPAF_INTERNAL_API_TOKEN"]
    assert portal["EROPAF_SESSION_SECRET"] == secrets["portal_session_key"]
    assert portal["EROPAF_SMTP_PORT"] == "2525"
    assert "EROPAF_MASTER_KEYS" not in portal and "EROPAF_PSEUDONYM_KEY" not in portal


def test_every_service_has_an_env_entry() -> None:
    assert set(stack.SERVICE_ENV) == set(stack.SERVICES)


def test_database_names_are_stable_per_data_dir_and_distinct_across(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    name = stack.database_name(a, "intake", shared_server=True)
    assert name == stack.database_name(a, "intake", shared_server=True)
    assert name != stack.database_name(b, "intake", shared_server=True)
    assert name.startswith("eropaf_") and name.endswith("_intake")
    assert stack.database_name(a, "intake", shared_server=False) == "eropaf_intake"


def test_selected_services() -> None:
    assert stack.selected_services({}) == stack.SERVICES
    only = stack.selected_services({stack.SERVICES_ENV: "notification, scheduling"})
    assert only == ("scheduling", "notification")
    with pytest.raises(ValueError, match="unknown"):
        stack.selected_services({stack.SERVICES_ENV: "nope"})


def test_commands_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "up",
            "--data-dir",
            "d",
            "--database-url",
            "postgresql://h/db",
            "--bootstrap-servers",
            "k:9092",
            "--http-base-port",
            "8100",
        ]
    )
    assert args.handler is stack_commands.cmd_up
    assert (args.data_dir, args.database_url, args.bootstrap_servers, args.http_base_port) == (
        "d",
        "postgresql://h/db",
        "k:9092",
        8100,
    )
    assert parser.parse_args(["down", "--data-dir", "d"]).handler is stack_commands.cmd_down
    assert parser.parse_args(["status", "--data-dir", "d"]).handler is stack_commands.cmd_status


def test_down_and_status_without_a_running_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    assert stack_commands.cmd_down(parser.parse_args(["down", "--data-dir", str(tmp_path)])) == 0
    assert (
        stack_commands.cmd_status(parser.parse_args(["status", "--data-dir", str(tmp_path)])) == 1
    )
    assert "no stack running" in capsys.readouterr().out


def test_data_dir_lock_is_exclusive(tmp_path: Path) -> None:
    with stack.data_dir_lock(tmp_path) as first:
        assert first
        assert stack.lock_holder(tmp_path) is not None
        with stack.data_dir_lock(tmp_path) as second:
            assert not second
    assert stack.lock_holder(tmp_path) is None


def test_a_stale_postmaster_pid_file_is_removed(tmp_path: Path) -> None:
    from eropaf_cli.postgres_process import PostgresProcess

    server = PostgresProcess(tmp_path / "pg", log_file=tmp_path / "pg.log")
    server.data_dir.mkdir()
    pid_file = server.data_dir / "postmaster.pid"
    for pid in (2**22 + 1, os.getpid()):  # a dead pid; a live process that is no postmaster
        pid_file.write_text(f"{pid}\n{server.data_dir}\n")
        server._clear_leftovers()
        assert not pid_file.exists()


def test_a_long_data_dir_gets_a_short_socket_dir(tmp_path: Path) -> None:
    from eropaf_cli.postgres_process import PostgresProcess

    deep = tmp_path / ("x" * 60) / ("y" * 60) / "postgres"
    server = PostgresProcess(deep, log_file=tmp_path / "pg.log")
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 100
    assert server.socket_dir == PostgresProcess(deep, log_file=tmp_path / "pg.log").socket_dir


def test_an_existing_smtp_server_replaces_the_local_sink(tmp_path: Path) -> None:
    from eropaf_cli.stack_runtime import Stack, parse_host_port

    args = build_parser().parse_args(
        ["up", "--data-dir", str(tmp_path), "--smtp-server", "mail.example:2525"]
    )
    assert args.smtp_server == "mail.example:2525"
    running = Stack(tmp_path, smtp_server=args.smtp_server)
    assert running._smtp() == ("mail.example", 2525)
    assert running.mail_sink is None  # nothing listens on DIR/mail
    assert parse_host_port("[::1]:25") == ("[::1]", 25)
    for bad in ("mail.example", "mail.example:0", ":25", "mail.example:smtp"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_host_port(bad)
