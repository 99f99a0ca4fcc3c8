"""Fixtures of the notification tests: a real SMTP server (aiosmtpd) whose answers a test
controls, the service in-process on the real broker and PostgreSQL, and a publisher."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from eropaf_contracts.envelope import Envelope as EventEnvelope
from eropaf_contracts.events import OutreachDecided, StaffChanged
from eropaf_contracts.topics import CASES_TOPIC, STAFF_TOPIC, VISITS_TOPIC
from eropaf_notification.app import NotificationSettings, build
from eropaf_notification.service_layer.unit_of_work import SqlNotificationUnitOfWork
from eropaf_platform.db import transaction
from eropaf_platform.local.ports import free_port
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from .mailparse import parse

# What the SMTP server answers to a message: None accepts it; else an SMTP reply line.
Answer = Callable[[bytes, list[str]], str | None]


@dataclass
class Received:
    raw: bytes
    rcpt_tos: list[str]
    at: float

    @property
    def message_id(self) -> str:
        return str(parse(self.raw)["Message-ID"])


@dataclass
class SmtpServer:
    """aiosmtpd on a thread: stores what it accepts, answers what ``answer`` says."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    answer: Answer = lambda _raw, _rcpt: None
    accepted: list[Received] = field(default_factory=list)
    refused: list[tuple[str, list[str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        rcpt = list(envelope.rcpt_tos)
        reply = self.answer(raw, rcpt)
        with self._lock:
            if reply is not None:
                self.refused.append((reply, rcpt))
                return reply
            self.accepted.append(Received(raw, rcpt, time.monotonic()))
        return "250 OK"

    def start(self) -> SmtpServer:
        # A fixed server name: aiosmtpd otherwise resolves the host's FQDN per connection.
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            ready_timeout=10,
            server_hostname="smtp.test",
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.accepted if address in m.rcpt_tos]

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.accepted)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tag() -> str:
    """A short unique prefix for staff codes: each test's staff are its own."""
    return "t" + uuid.uuid4().hex[:6]


def notification_settings(
    bootstrap: str, database_url: str, smtp: SmtpServer, **extra: Any
) -> NotificationSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        "dev_mode": True,
        "kafka_topic_partitions": 2,
        "retry_initial_backoff_s": 0.05,
        "retry_max_backoff_s": 0.5,
        "outbox_poll_interval_s": 0.1,
        "consumer_batch_timeout_ms": 50,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_timeout_s": 5.0,
        "retry_first_s": 0.2,
        "retry_longest_s": 1.0,
        "delivery_poll_interval_s": 0.05,
        "jobs_interval_s": 3600.0,
        "mail_domain": "eropaf.test",
        "consumer_group_prefix": f"test-{uuid.uuid4().hex[:8]}",
    }
    values.update(extra)
    return NotificationSettings(**values)


StartNotification = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_notification(
    kafka_bootstrap_servers: str, _database_registry: Any, smtp_server: SmtpServer
) -> AsyncIterator[StartNotification]:
    """Factory: a running notification service (own database, own consumer group)."""
    started: list[Service] = []

    async def start(**extra: Any) -> Service:
        db = _database_registry.create("eropaf_notification_test")
        service = build(notification_settings(kafka_bootstrap_servers, db, smtp_server, **extra))
        await service.start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            await service.stop()


async def wait_staff_known(service: Service, *codes: str, timeout: float = 30) -> None:
    """Wait until the service has stored these staff members. Staff and case events travel on
    different topics, so without this a case may be handled before its coordinator is known
    (and, rightly, not mailed to them)."""

    async def known() -> bool:
        async with transaction(service.sessions) as session:
            found = await SqlNotificationUnitOfWork(session).staff.get_many(codes)
        return set(found) == set(codes)

    await wait_until_async(known, timeout=timeout, message=f"staff {codes} not stored")


def topic_of(envelope: EventEnvelope) -> str:
    if envelope.type == StaffChanged.EVENT_TYPE:
        return STAFF_TOPIC
    if envelope.type == OutreachDecided.EVENT_TYPE or envelope.type.startswith("eropaf.matching."):
        return CASES_TOPIC
    return VISITS_TOPIC


async def publish(bootstrap: str, *envelopes: EventEnvelope) -> None:
    """Publish as the producing services' outbox relays would (topic by type, their key)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic_of(e), e.to_bytes(), key=e.key.encode(), headers=e.headers())
            for e in envelopes
        ]
        for future in sent:
            await future
    finally:
        await producer.stop()
