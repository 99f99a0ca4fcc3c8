"""`make demo --keep` ends with the staff portal's address and a counsellor's login link."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from eropaf_cli import stack
from eropaf_demo.runner import PORTAL_COUNSELLOR, portal_note

pytestmark = pytest.mark.unit


class _Portal(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        known = body["code"] == PORTAL_COUNSELLOR
        self.send_response(201 if known else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        url = f"http://portal/login/link?token=for-{body['code']}"
        self.wfile.write(json.dumps({"url": url, "expires_in_s": 900}).encode())

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def portal_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Portal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_note_names_the_portal_and_a_login_link(tmp_path: Path, portal_url: str) -> None:
    stack.load_or_create_secrets(tmp_path)
    (tmp_path / stack.STACK_FILE).write_text(json.dumps({"portal_url": portal_url}))
    note = portal_note(tmp_path)
    assert note == (
        f"staff portal: {portal_url}\n"
        f"log in as {PORTAL_COUNSELLOR}: http://portal/login/link?token=for-{PORTAL_COUNSELLOR}"
    )
    assert "no login link for nobody" in portal_note(tmp_path, "nobody")
    (tmp_path / stack.STACK_FILE).write_text(json.dumps({"portal_url": None}))
    assert portal_note(tmp_path) == "staff portal: not running in this stack"
