"""SMTP delivery with aiosmtplib: a small pool of kept-open connections.

A reply code decides: 2xx sent; 4xx temporary (retried later); 5xx permanent. A refused or
lost connection, a timeout or a failed TLS upgrade is temporary: the mail server may be down,
and nothing is lost while it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.message import Message

import aiosmtplib

from eropaf_notification.domain.delivery import SendResult
from eropaf_platform.logging import get_logger

__all__ = ["Mailer", "SmtpMailer", "classify_smtp_error"]

log = get_logger(__name__)


class Mailer:
    """Port: hand one message to the mail system."""

    async def send(
        self, message: Message | bytes, *, sender: str, recipients: Sequence[str]
    ) -> SendResult:
        """``message``: a message, or one already serialised."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _by_code(code: int, text: str) -> SendResult:
    reason = f"SMTP {code}: {text}".strip()
    if 400 <= code < 500:
        return SendResult.temporary(reason)
    return SendResult.permanent(reason)


def classify_smtp_error(exc: BaseException) -> SendResult:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        if refused:
            worst = max(refused, key=lambda r: r.code)  # one 5xx makes it permanent
            return _by_code(worst.code, worst.message)
        return SendResult.temporary("SMTP recipients refused")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 400:
        return _by_code(exc.code, exc.message)
    return SendResult.temporary(f"SMTP unavailable: {type(exc).__name__}: {exc}")


class SmtpMailer(Mailer):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        use_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        pool_size: int = 4,
    ) -> None:
        self.host = host
        self.port = port
        self.starttls = starttls
        self.use_tls = use_tls
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout_s,
            use_tls=self.use_tls,
            start_tls=self.starttls,
            username=self.username,
            password=self.password,
        )
        await client.connect()
        return client

    async def send(
        self, message: Message | bytes, *, sender: str, recipients: Sequence[str]
    ) -> SendResult:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                if isinstance(message, bytes):
                    await client.sendmail(sender, list(recipients), message)
                else:
                    await client.send_message(message, sender=sender, recipients=list(recipients))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _close(client)
                return classify_smtp_error(exc)
            self._idle.append(client)
            return SendResult.sent()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _close(client)


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        if client.is_connected:
            async with asyncio.timeout(2.0):
                await client.quit()
    except Exception:  # a connection that failed is dropped whatever it answers
        client.close()
