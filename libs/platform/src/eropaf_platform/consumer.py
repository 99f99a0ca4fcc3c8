"""Reliable batch consumption: effects exactly once on top of at-least-once delivery.

For every batch the processor, in ONE database transaction: records the messages' own ids as
processed, drops those recorded before, runs the handler on the rest and queues its events
(and dead letters) in the outbox. Only after that commit are offsets committed.

- transient faults (database or broker unavailable) retry the whole batch with backoff,
  forever, without committing: nothing is skipped;
- any other error isolates the failing message (the batch is re-run one message per savepoint);
  a message that fails ``poison_max_attempts`` times, or raises ``PoisonMessage``, goes to
  ``<topic>.dlq`` with headers naming its origin and cause, and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.cloudevents import CE_ID, CORRELATION_ID
from eropaf_contracts.envelope import Envelope
from eropaf_platform import bulk, metrics, outbox
from eropaf_platform.logging import bind_correlation, get_logger
from eropaf_platform.settings import ServiceSettings
from eropaf_platform.tables import processed_message

log = get_logger(__name__)


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never be processed (goes to the DLQ now)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def describe_error(exc: BaseException) -> str:
    """A cause for logs and DLQ headers that never repeats input values (they may be personal)."""
    if isinstance(exc, ValidationError):
        fields = sorted(
            {".".join(str(p) for p in e["loc"]) + ": " + e["type"] for e in exc.errors()}
        )
        return f"{exc.title}: " + "; ".join(fields)[:500]
    return str(exc)[:500]


MAX_MESSAGE_ID_CHARS = 256


def _text(raw: bytes) -> str:
    """Bytes as text PostgreSQL accepts: undecodable bytes and NUL replaced."""
    return raw.decode(errors="replace").replace("\x00", "\ufffd")


@dataclass(frozen=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int

    @property
    def message_id(self) -> str:
        """The message's own id: the CloudEvents id header, else a digest of its bytes, so a
        redelivered copy is recognised even when the broker has forgotten its offsets. A
        header that cannot be a database key as it is (NUL or other control characters, over
        ``MAX_MESSAGE_ID_CHARS``: a producer's mistake or a hostile one) counts as absent."""
        ce_id = self.headers.get(CE_ID)
        if ce_id:
            text = ce_id.decode(errors="replace")
            if len(text) <= MAX_MESSAGE_ID_CHARS and text.isprintable():
                return text
        digest = hashlib.sha256()
        for part in (self.topic.encode(), self.key or b"", self.value, ce_id or b""):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return "sha256:" + digest.hexdigest()

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode(errors="replace") if raw is not None else None

    def envelope(self) -> Envelope:
        try:
            return Envelope.from_bytes(self.value)
        except ValidationError as exc:
            raise PoisonMessage(describe_error(exc)) from exc

    @classmethod
    def from_record(cls, record: Any) -> Incoming:
        headers: dict[str, bytes] = {}
        for name, value in record.headers or ():
            headers[name] = value if value is not None else b""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value if record.value is not None else b"",
            headers=headers,
            timestamp_ms=record.timestamp,
        )


# Claims the ids: inserted rows come back, ids recorded before do not. The unique index
# decides, whatever the planner knows of the table (a lookup by ``= ANY(ids)`` was planned as
# a scan of every processed id where statistics were missing), and a copy of the message in
# another instance's open transaction waits for it and then counts as processed.
_CLAIM_PROCESSED = bulk.json_insert(
    processed_message, ("consumer", "message_id"), conflict=[], returning=("message_id",)
)

BatchHandler = Callable[[AsyncSession, Sequence[Incoming]], Awaitable[None]]
# What a dead letter carries instead of the message's own bytes (e.g. them encrypted, where
# they hold personal data); None keeps the bytes as they came.
DeadLetterSeal = Callable[[Incoming], bytes]
# Run in the dead letter's transaction, e.g. to answer the message's sender all the same.
DeadLetterHook = Callable[[AsyncSession, Incoming], Awaitable[None]]


class BatchProcessor:
    def __init__(
        self,
        *,
        consumer: str,
        handler: BatchHandler,
        sessions: async_sessionmaker[AsyncSession],
        settings: ServiceSettings,
        on_commit: Callable[[], None] | None = None,
        seal_dead_letter: DeadLetterSeal | None = None,
        wanted: Callable[[Incoming], bool] | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self.consumer = consumer
        self._on_dead_letter = on_dead_letter
        self._seal = seal_dead_letter
        self._wanted = wanted
        self._handler = handler
        self._sessions = sessions
        self._settings = settings
        self._on_commit = on_commit
        self._service = settings.service_name

    async def process(self, messages: Sequence[Incoming]) -> None:
        """Returns only when every message's effect (or its dead letter) is durable."""
        started = time.perf_counter()
        if self._wanted is not None:
            # Messages the handler would ignore have no effect to make exactly once: no
            # transaction, no processed-message record (most of a shared topic, typically).
            skipped = len(messages)
            messages = [m for m in messages if self._wanted(m)]
            skipped -= len(messages)
            if skipped:
                metrics.SKIPPED.labels(self._service, self.consumer).inc(skipped)
            if not messages:
                return
        backoff = self._settings.retry_initial_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._process_once(messages)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    # Should not happen (non-transient errors are isolated per message), but
                    # never skip: treat it as transient.
                    log.error(
                        "batch failed unexpectedly",
                        error=type(exc).__name__,
                        detail=describe_error(exc),
                    )
                metrics.FAILURES.labels(self._service, "transient").inc()
                log.warning(
                    "transient fault, batch retried",
                    consumer=self.consumer,
                    error=type(exc).__name__,
                    attempt=attempt,
                    backoff_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.retry_max_backoff_s)
        if self._on_commit is not None:
            self._on_commit()
        metrics.HANDLER_SECONDS.labels(self._service, self.consumer).observe(
            time.perf_counter() - started
        )

    async def _process_once(self, messages: Sequence[Incoming]) -> None:
        async with self._sessions() as session, session.begin():
            fresh = await self._claim(session, messages)
            if fresh:
                try:
                    async with session.begin_nested():
                        await self._handler(session, fresh)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    # Find the message(s) at fault: one savepoint per message.
                    for message in fresh:
                        await self._process_isolated(session, message)
        for m in messages:
            metrics.MESSAGES_IN.labels(self._service, m.topic).inc()

    async def _claim(self, session: AsyncSession, messages: Sequence[Incoming]) -> list[Incoming]:
        """Record the batch's message ids as processed (in this transaction) and return the
        messages whose id was not recorded before, once each."""
        unique: dict[str, Incoming] = {}
        for m in messages:
            unique.setdefault(m.message_id, m)
        claimed = set(
            (
                await session.execute(
                    _CLAIM_PROCESSED,
                    {
                        "rows": bulk.rows_json(
                            {"consumer": self.consumer, "message_id": mid} for mid in unique
                        )
                    },
                )
            ).scalars()
        )
        fresh = [m for mid, m in unique.items() if mid in claimed]
        dropped = len(messages) - len(fresh)
        if dropped:
            metrics.DUPLICATES.labels(self._service, messages[0].topic).inc(dropped)
            log.info("redelivered messages dropped", consumer=self.consumer, count=dropped)
        return fresh

    async def _process_isolated(self, session: AsyncSession, message: Incoming) -> None:
        # One message at a time: its logs (failures, dead letter) carry its correlation id.
        bind_message(message)
        failure: BaseException | None = None
        attempts = 0
        for attempts in range(1, self._settings.poison_max_attempts + 1):
            try:
                async with session.begin_nested():
                    await self._handler(session, [message])
                return
            except Exception as exc:
                if is_transient(exc):
                    raise
                failure = exc
                metrics.FAILURES.labels(self._service, "handler").inc()
                if isinstance(exc, PoisonMessage):
                    break
                await asyncio.sleep(min(0.05 * attempts, 0.5))
        assert failure is not None
        await self._dead_letter(session, message, failure, attempts)

    async def _dead_letter(
        self, session: AsyncSession, message: Incoming, exc: BaseException, attempts: int
    ) -> None:
        dlq_topic = f"{message.topic}.dlq"
        headers = [(_text(k.encode()), _text(v)) for k, v in message.headers.items()]
        headers += [
            ("dlq_original_topic", message.topic),
            ("dlq_original_partition", str(message.partition)),
            ("dlq_original_offset", str(message.offset)),
            ("dlq_error_class", type(exc).__name__),
            ("dlq_error_message", _text(describe_error(exc).encode())),
            ("dlq_attempts", str(attempts)),
            ("dlq_consumer", self.consumer),
        ]
        value = message.value
        if self._seal is not None:
            value = self._seal(message)
            headers.append(("dlq_sealed", "true"))
        await outbox.add(
            session,
            [
                outbox.OutgoingMessage(
                    topic=dlq_topic,
                    key=_text(message.key) if message.key is not None else None,
                    value=value,
                    headers=headers,
                    # One dead letter per message and consumer, however often it is redelivered.
                    event_id=f"dlq:{self.consumer}:{message.message_id}",
                )
            ],
        )
        if self._on_dead_letter is not None:
            await self._on_dead_letter(session, message)
        metrics.DLQ.labels(self._service, message.topic).inc()
        log.error(
            "message dead-lettered",
            consumer=self.consumer,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=type(exc).__name__,
            cause=describe_error(exc),
            attempts=attempts,
        )


def bind_message(message: Incoming) -> None:
    bind_correlation(message.header(CORRELATION_ID) or message.header(CE_ID))
