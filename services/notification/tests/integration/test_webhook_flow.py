"""The chat webhook channel through the whole service, against a real local HTTP server: staff
members routed to a webhook get their messages there too, as a signed JSON POST; a 4xx ends as
one failed delivery with its reason; a 5xx and a refused connection are retried (the 5xx until
the receiver accepts, delivered once)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import sqlalchemy as sa

from eropaf_contracts.topics import NOTIFICATION_DELIVERIES_TOPIC
from eropaf_notification.adapters import tables
from eropaf_notification.adapters.webhook import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from eropaf_platform.service import Service
from eropaf_platform.testing.topics import read_to_end
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import SmtpServer, StartNotification, publish, wait_staff_known
from ..factories import envelope, planned, staff
from ..privacy import leaks

pytestmark = pytest.mark.integration

SECRET = "webhook-integration-secret"


class Hooks(BaseHTTPRequestHandler):
    """``/ok`` accepts; ``/bad`` answers 400; ``/flaky`` answers 503 twice, then accepts."""

    received: list[tuple[str, dict[str, str], bytes]] = []
    flaky_left = 2
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with Hooks.lock:
            Hooks.received.append((self.path, dict(self.headers.items()), body))
            status = 200
            if self.path == "/bad":
                status = 400
            elif self.path == "/flaky" and Hooks.flaky_left > 0:
                Hooks.flaky_left -= 1
                status = 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def hooks() -> Iterator[str]:
    Hooks.received = []
    Hooks.flaky_left = 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def webhook_rows(service: Service, tag: str) -> dict[str, dict]:
    i = tables.intent
    async with service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(i.c.recipient, i.c.status, i.c.attempts, i.c.last_error).where(
                i.c.recipient.startswith(tag), i.c.channel == "webhook"
            )
        )
        return {r.recipient: dict(r._mapping) for r in rows}


async def test_webhooks_signed_failed_on_4xx_retried_on_5xx_and_refused(
    start_notification: StartNotification,
    kafka_bootstrap_servers: str,
    smtp_server: SmtpServer,
    hooks: str,
    tag: str,
) -> None:
    ok, bad, flaky, down = (f"{tag}-{n}" for n in ("ok", "bad", "flaky", "down"))
    service = await start_notification(
        webhooks={
            ok: f"{hooks}/ok",
            bad: f"{hooks}/bad",
            flaky: f"{hooks}/flaky",
            down: f"http://127.0.0.1:{closed_port()}/hook",
        },
        webhook_secret=SECRET,
    )
    await publish(kafka_bootstrap_servers, *(envelope(staff(c)) for c in (ok, bad, flaky, down)))
    await wait_staff_known(service, ok, bad, flaky, down)
    first = planned(f"{tag}-v1", duo=(ok, bad), case=f"{tag}-c1")
    second = planned(f"{tag}-v2", duo=(flaky, down), case=f"{tag}-c2")
    await publish(kafka_bootstrap_servers, envelope(first), envelope(second))

    async def settled() -> dict[str, dict] | None:
        rows = await webhook_rows(service, tag)
        done = (
            rows.get(ok, {}).get("status") == "sent"
            and rows.get(bad, {}).get("status") == "failed"
            and rows.get(flaky, {}).get("status") == "sent"
            and rows.get(down, {}).get("attempts", 0) >= 2
        )
        return rows if done else None

    rows = await wait_until_async(settled, timeout=60, message="webhook outcomes")
    # 4xx: failed at once with its reason; 5xx: retried, then delivered; refused: retried.
    assert rows[bad]["attempts"] == 1 and rows[bad]["last_error"] == "webhook HTTP 400"
    assert rows[flaky]["attempts"] == 3
    assert rows[down]["status"] == "pending"
    assert rows[down]["last_error"].startswith("webhook unavailable")

    # What the receiver got: signed (HMAC-SHA256 of "<timestamp>." + body), fresh, no
    # household data, its Message-ID from its notification id (fact, recipient, version, channel).
    [(_, headers, body)] = [r for r in Hooks.received if r[0] == "/ok"]
    timestamp = headers[TIMESTAMP_HEADER]
    assert abs(time.time() - int(timestamp)) < 120
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], "sha256=" + mac.hexdigest())
    payload = json.loads(body)
    assert payload["kind"] == "visit_request" and payload["case_ref"] == first.case_ref
    assert first.case_ref in payload["subject"]
    assert headers[ID_HEADER] == payload["notification_id"]
    assert payload["message_id"] == f"<{payload['notification_id']}@eropaf.test>"
    assert leaks(body.decode()) == []
    assert len([r for r in Hooks.received if r[0] == "/flaky"]) == 3

    # Every member still got the e-mail; the failed webhook is one NotificationFailed event.
    async def mailed() -> bool:
        tos = {r for m in smtp_server.snapshot() for r in m.rcpt_tos if tag in r}
        return len(tos) == 4

    await wait_until_async(mailed, timeout=30, message="the four e-mails")

    async def failed_event() -> list[dict] | None:
        records = await read_to_end(kafka_bootstrap_servers, NOTIFICATION_DELIVERIES_TOPIC)
        events = [orjson.loads(r.value) for r in records]
        mine = [
            e["data"]
            for e in events
            if e["type"] == "eropaf.notification.failed" and e["data"]["recipient"] == bad
        ]
        return mine or None

    [failed] = await wait_until_async(failed_event, timeout=30, message="NotificationFailed")
    assert failed["channel"] == "webhook" and failed["reason"] == "webhook HTTP 400"
