"""The webhook channel against a real local HTTP server: a signed JSON POST, the outcome by
status code."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eropaf_notification.adapters.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookMessage,
    WebhookSender,
    sign,
)
from eropaf_notification.domain.delivery import SendStatus

pytestmark = pytest.mark.unit

SECRET = b"webhook-test-secret"


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers.items()), body))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    Receiver.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def message() -> WebhookMessage:
    return WebhookMessage(
        notification_id="ab" * 16,
        message_id="<x@eropaf.test>",
        kind="visit_request",
        case_ref="cd" * 16,
        subject="Huisbezoek - casus " + "cd" * 16,
        text="Casus: " + "cd" * 16,
        sent_at=datetime(2026, 11, 2, 8, tzinfo=UTC),
    )


async def test_a_signed_post_that_the_receiver_can_verify(receiver: str) -> None:
    sender = WebhookSender(SECRET)
    try:
        result = await sender.post(receiver, message())
    finally:
        await sender.close()
    assert result.status is SendStatus.SENT
    [(headers, body)] = Receiver.received
    timestamp = headers[TIMESTAMP_HEADER]
    expected = (
        "sha256=" + hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    assert headers[SIGNATURE_HEADER] == expected == sign(SECRET, timestamp, body)
    assert headers[ID_HEADER] == "ab" * 16
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["case_ref"] == "cd" * 16
    assert sign(b"another secret", timestamp, body) != expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (204, SendStatus.SENT),
        (400, SendStatus.PERMANENT),
        (404, SendStatus.PERMANENT),
        (429, SendStatus.TEMPORARY),
        (503, SendStatus.TEMPORARY),
    ],
)
async def test_outcome_by_status(receiver: str, status: int, outcome: SendStatus) -> None:
    Receiver.status = status
    sender = WebhookSender(SECRET)
    try:
        result = await sender.post(receiver, message())
    finally:
        await sender.close()
    assert result.status is outcome
    if outcome is not SendStatus.SENT:
        assert result.reason == f"webhook HTTP {status}"


async def test_no_answer_is_temporary() -> None:
    sender = WebhookSender(SECRET, timeout_s=1)
    try:
        result = await sender.post("http://127.0.0.1:9/hook", message())
    finally:
        await sender.close()
    assert result.status is SendStatus.TEMPORARY


async def test_dispatcher_posts_a_team_message_to_the_team_webhook(receiver: str) -> None:
    from eropaf_contracts.events import DeliveryChannel, OutreachKind, StaffRole
    from eropaf_notification.adapters.dispatch import Dispatcher
    from eropaf_notification.adapters.mail import MailIdentity
    from eropaf_notification.adapters.rendering import Renderer
    from eropaf_notification.adapters.smtp import Mailer
    from eropaf_notification.domain import rules
    from eropaf_notification.service_layer.services import Job
    from eropaf_notification.service_layer.unit_of_work import Claimed

    from ..factories import TEAM, decided, member
    from ..privacy import leaks

    intents = rules.with_webhooks(
        rules.case_opened(
            decided(outreach=OutreachKind.PHONE), [member("coord", StaffRole.COORDINATOR)]
        ),
        {TEAM: receiver},
        team=TEAM,
    )
    hook = next(i for i in intents if i.channel is DeliveryChannel.WEBHOOK)
    assert hook.recipient == TEAM
    sender = WebhookSender(SECRET)
    dispatcher = Dispatcher(
        renderer=Renderer({"0356": "Nieuwegein"}),
        identity=MailIdentity("noreply@eropaf.test", "planning@eropaf.test", "eropaf.test"),
        mailer=Mailer(),
        webhooks=sender,
        webhook_urls={TEAM: receiver},
    )
    job = Job(Claimed(hook, 0, datetime(2026, 11, 2, tzinfo=UTC)), None, {}, None)
    try:
        result = await dispatcher.send(job, datetime(2026, 11, 2, 8, tzinfo=UTC))
    finally:
        await sender.close()
    assert result.status is SendStatus.SENT
    [(_, body)] = Receiver.received
    payload = json.loads(body)
    assert payload["kind"] == "case_opened" and hook.facts.case_ref in payload["subject"]
    assert payload["message_id"] == f"<{hook.notification_id}@eropaf.test>"
    assert leaks(body.decode()) == []
