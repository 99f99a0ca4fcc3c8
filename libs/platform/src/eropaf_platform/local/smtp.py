"""A local SMTP sink: every message it receives becomes an `.eml` file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = structlog.get_logger(__name__)


class _StoreHandler:
    """aiosmtpd handler that writes each accepted message to a directory."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(envelope.content, str) and not content:
            content = envelope.content.encode()
        try:
            path = await asyncio.to_thread(store_message, self.mail_dir, content)
        except OSError as error:
            log.error("mail_sink.store_failed", error=str(error))
            return "451 Requested action aborted: could not store message"
        log.info("mail_sink.stored", file=path.name, recipients=len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def store_message(mail_dir: Path, content: bytes, now: datetime | None = None) -> Path:
    """Write `content` atomically as `<UTC timestamp>-<hash>.eml` in `mail_dir`.

    The hash is of the Message-ID (or of the content when there is none), so the
    name identifies the message; the timestamp keeps names in arrival order.
    Readers never see a half-written file: we write a dot-file, then rename.
    """
    mail_dir.mkdir(parents=True, exist_ok=True)
    headers = BytesHeaderParser().parsebytes(content)
    message_id = headers.get("Message-ID")
    digest_source = message_id.strip().encode() if message_id else content
    digest = hashlib.sha256(digest_source).hexdigest()[:16]
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    target = mail_dir / f"{stamp}-{digest}.eml"
    if target.exists():  # same message twice in one microsecond: keep both
        target = mail_dir / f"{stamp}-{digest}-{os.urandom(3).hex()}.eml"
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=mail_dir)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


class _BoundController(Controller):
    """Controller that accepts port 0 and learns the port the OS picked.

    Stock aiosmtpd connects back to `self.port` to check the server; with port 0
    that would fail, so we record the bound port before that check.
    """

    def _create_server(self) -> Any:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class MailSink:
    """SMTP server on a background thread that stores mail under `mail_dir`."""

    def __init__(self, mail_dir: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mail_dir = Path(mail_dir)
        self.host = host
        self._requested_port = port
        self._controller: _BoundController | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("mail sink is not running")
        port: int = self._controller.port
        return port

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> Self:
        if self._controller is not None:
            return self
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        controller = _BoundController(
            _StoreHandler(self.mail_dir),
            hostname=self.host,
            port=self._requested_port,
            # Notifications may carry iCalendar attachments; allow roomy messages.
            data_size_limit=25 * 1024 * 1024,
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller
        log.info("mail_sink.ready", host=self.host, port=self.port, mail_dir=str(self.mail_dir))
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def messages(self) -> list[Path]:
        """Stored `.eml` files, oldest first."""
        if not self.mail_dir.exists():
            return []
        return sorted(self.mail_dir.glob("*.eml"))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
