"""The chat webhook channel: a JSON POST signed with HMAC-SHA256.

Headers: ``X-Eropaf-Timestamp`` (Unix seconds) and ``X-Eropaf-Signature``
(``sha256=<hex HMAC of "<timestamp>." + body>``), so a receiver can check origin and
freshness; ``X-Eropaf-Notification-Id`` lets it drop a repeat. 2xx is delivered; 408, 429
and 5xx (and no answer) are temporary; any other 4xx is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

import httpx
from pydantic import BaseModel, ConfigDict

from eropaf_notification.domain.delivery import SendResult

__all__ = ["WebhookMessage", "WebhookSender", "sign"]

SIGNATURE_HEADER = "X-Eropaf-Signature"
TIMESTAMP_HEADER = "X-Eropaf-Timestamp"
ID_HEADER = "X-Eropaf-Notification-Id"


class WebhookMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notification_id: str
    message_id: str
    kind: str
    case_ref: str | None
    subject: str
    text: str
    sent_at: datetime


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    def __init__(self, secret: bytes, *, timeout_s: float = 10.0) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def post(self, url: str, message: WebhookMessage) -> SendResult:
        body = message.model_dump_json().encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            ID_HEADER: message.notification_id,
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult.temporary(f"webhook unavailable: {type(exc).__name__}")
        code = response.status_code
        if 200 <= code < 300:
            return SendResult.sent()
        if code in (408, 429) or code >= 500:
            return SendResult.temporary(f"webhook HTTP {code}")
        return SendResult.permanent(f"webhook HTTP {code}")

    async def close(self) -> None:
        await self._client.aclose()
