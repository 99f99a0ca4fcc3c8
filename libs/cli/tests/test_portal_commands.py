"""`eropaf staff login-link`: asks the running stack's portal, with the internal token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from eropaf_cli import stack
from eropaf_cli.main import build_parser, main
from eropaf_cli.portal_commands import LoginLinkError, login_link

pytestmark = pytest.mark.unit


class _Portal(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "auth": self.headers["Authorization"], **body})
        known = body["code"] == "anna"
        payload = json.dumps({"url": "http://portal/login/link?token=t", "expires_in_s": 900})
        self.send_response(201 if known else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode() if known else b'{"detail": "no"}')

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[Path]:
    server = HTTPServer(("127.0.0.1", 0), _Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secrets = stack.load_or_create_secrets(tmp_path)
    portal_url = f"http://127.0.0.1:{server.server_address[1]}"
    (tmp_path / stack.STACK_FILE).write_text(json.dumps({"portal_url": portal_url}))
    _Portal.requests = []
    yield tmp_path
    server.shutdown()
    assert all(r["auth"] == f"Bearer {secrets['internal_api_token']}" for r in _Portal.requests)


def test_login_link_is_under_the_staff_area() -> None:
    args = build_parser().parse_args(["staff", "login-link", "anna", "--data-dir", "d"])
    assert (args.code, args.data_dir, args.handler.__name__) == ("anna", "d", "cmd_login_link")
    args = build_parser().parse_args(["staff", "import", "roster.csv", "--data-dir", "d"])
    assert args.handler.__name__ == "staff_import"  # scheduling's commands stay


def test_the_portal_issues_the_link(
    running_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["staff", "login-link", "anna", "--data-dir", str(running_stack)]) == 0
    assert capsys.readouterr().out.strip() == "http://portal/login/link?token=t"
    assert _Portal.requests[0]["path"] == "/internal/v1/login-links"
    with pytest.raises(LoginLinkError, match="no active staff member"):
        login_link(running_stack, "nobody")


def test_no_stack_no_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "login-link", "anna", "--data-dir", str(tmp_path)]) == 1
    assert "no running stack" in capsys.readouterr().err
