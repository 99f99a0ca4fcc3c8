"""The runtime every service is built on: database + migrations, FastStream broker with
reliable batch subscribers, outbox relay, and the HTTP endpoint for health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from fastapi import FastAPI, Response
from faststream import Context
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eropaf_platform import kafka_internals, metrics
from eropaf_platform.broker import connection_args, ensure_topics, make_broker
from eropaf_platform.consumer import (
    BatchHandler,
    BatchProcessor,
    DeadLetterHook,
    DeadLetterSeal,
    Incoming,
)
from eropaf_platform.db import make_engine, make_sessions, migrate_async
from eropaf_platform.logging import configure_logging, get_logger
from eropaf_platform.outbox import OutboxRelay
from eropaf_platform.settings import ServiceSettings

log = get_logger(__name__)

DATABASE_POLL_S = 0.2  # while waiting for the database server at start-up


async def _raw_decoder(msg: Any) -> Any:
    # Bodies are parsed by the handlers themselves: a partner's invalid JSON must reach the
    # handler (it owes the partner a "rejected" feedback), not fail in the framework.
    return msg.body


def _decodable(record: Any) -> Any:
    """The record as it is, or a copy whose header values all decode as UTF-8."""
    headers = record.headers or ()
    try:
        for _name, value in headers:
            value.decode()
    except (UnicodeDecodeError, AttributeError):  # AttributeError: a header without a value
        return dataclasses.replace(
            record,
            headers=[(n, (v or b"").decode(errors="replace").encode()) for n, v in headers],
        )
    return record


async def _tolerant_parser(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """faststream decodes every header value as strict UTF-8: one producer's stray byte, or a
    header without a value, would fail the whole batch before any handler, and none of its
    messages would be answered. Its parser gets decodable copies; the handler reads the
    records as they came (``raw_message``)."""
    records = tuple(message) if isinstance(message, tuple | list) else (message,)
    safe = tuple(_decodable(r) for r in records)
    if all(a is b for a, b in zip(records, safe, strict=True)):
        return await original(message)
    parsed = await original(safe if isinstance(message, tuple | list) else safe[0])
    parsed.raw_message = message
    return parsed


class Service:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Path | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.migrations = migrations
        self.topics = list(topics)
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessions(self.engine)
        self.broker: KafkaBroker = make_broker(settings)
        self.relay = OutboxRelay(self.engine, settings)
        self.processors: dict[str, BatchProcessor] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[None]]]] = []
        self.started = False
        # Cleared while `start` migrates; a service driven without `start` (FastStream's
        # in-memory broker in tests, a database migrated by the caller) handles at once.
        self._migrated = asyncio.Event()
        self._migrated.set()

    # --- wiring -------------------------------------------------------------------------

    def subscribe(
        self,
        *topics: str,
        consumer: str,
        handler: BatchHandler,
        pattern: str | None = None,
        group_id: str | None = None,
        max_records: int | None = None,
        seal_dead_letter: DeadLetterSeal | None = None,
        wanted: Callable[[Incoming], bool] | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> BatchProcessor:
        """A batch subscriber that commits offsets only after the batch's effects are durable."""
        processor = BatchProcessor(
            consumer=consumer,
            handler=handler,
            sessions=self.sessions,
            settings=self.settings,
            on_commit=self.relay.wake,
            seal_dead_letter=seal_dead_letter,
            wanted=wanted,
            on_dead_letter=on_dead_letter,
        )
        self.processors[consumer] = processor
        service = self.settings.service_name

        limit = max_records or self.settings.consumer_max_records
        linger_s = self.settings.consumer_linger_ms / 1000

        async def consume(body: Any, message: Any = Context("message")) -> None:
            await self._migrated.wait()
            raw = message.raw_message
            records = await kafka_internals.top_up(
                message,
                list(raw if isinstance(raw, tuple | list) else (raw,)),
                limit,
                linger_s,
            )
            await processor.process([Incoming.from_record(r) for r in records])
            try:
                await message.ack()
            except (CommitFailedError, IllegalStateError) as exc:
                # Partitions moved to another member mid-batch: it will redeliver, and the
                # processed-message records make that harmless.
                log.warning(
                    "offset commit failed after rebalance",
                    consumer=consumer,
                    error=type(exc).__name__,
                )
            _record_lag(service, kafka_internals.message_consumer(message), records)

        consume.__name__ = f"consume_{consumer.replace('-', '_').replace('.', '_')}"
        self.broker.subscriber(
            *topics,
            pattern=pattern,
            batch=True,
            group_id=group_id or f"eropaf-{consumer}",
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_records=max_records or self.settings.consumer_max_records,
            batch_timeout_ms=self.settings.consumer_batch_timeout_ms,
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
            decoder=_raw_decoder,
            parser=_tolerant_parser,
            title=consumer,
        )(consume)
        return processor

    def every(self, interval_s: float, task: Callable[[], Awaitable[None]], *, name: str) -> None:
        """Run ``task`` every ``interval_s`` seconds while the service runs, the first time one
        interval after start (a start-up is busy enough). A failed run is logged; the next
        one comes as planned. Register before :meth:`start`."""
        if interval_s <= 0:
            raise ValueError(f"interval of {name!r} must be positive, got {interval_s}")
        self._periodic.append((name, interval_s, task))

    async def _run_every(
        self, name: str, interval_s: float, task: Callable[[], Awaitable[None]]
    ) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await task()
            except Exception as exc:
                log.warning(f"{name} failed", task=name, error=type(exc).__name__)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        # The consumer groups join while the database is migrated: the broker holds a join
        # for seconds. No batch is handled before the migrations are done (`consume`).
        self._migrated.clear()
        joining = asyncio.create_task(self._join(), name="broker-start")
        try:
            await self._migrate()
        except BaseException:
            joining.cancel()
            with contextlib.suppress(BaseException):
                await joining
            with contextlib.suppress(Exception):
                await self.broker.stop()
            raise
        self._migrated.set()
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        own = [
            ("retention run", 3600.0, self._apply_retention),
            ("statistics refresh", self.settings.analyze_interval_s, self._refresh_statistics),
        ]
        for name, interval_s, task in [*own, *self._periodic]:
            self._tasks.append(
                asyncio.create_task(self._run_every(name, interval_s, task), name=name)
            )
        await joining
        self.started = True
        log.info("service started", topics=self.topics)

    async def _join(self) -> None:
        await self._retry("create topics", lambda: ensure_topics(self.settings, self.topics))
        await self._retry("start broker", self._start_broker)

    async def _migrate(self) -> None:
        """Bring the database to head once its server accepts connections, waiting at most
        ``database_wait_s``: `eropaf up` starts the services while PostgreSQL is still being
        initialised, so their imports overlap its start. Only connection faults are waited
        out; a failing migration fails the start at once."""
        deadline = time.monotonic() + self.settings.database_wait_s
        waiting = False
        while True:
            try:
                await migrate_async(
                    self.settings.database_url, self.migrations, service=self.settings.service_name
                )
                return
            except sa.exc.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise
                if not waiting:
                    log.info("waiting for the database", error=type(exc).__name__)
                    waiting = True
                await asyncio.sleep(DATABASE_POLL_S)

    async def _start_broker(self) -> None:
        """Like ``KafkaBroker.start()``, but the subscribers join their groups at the same
        time: a group join takes seconds, and one after the other they add up at start-up."""
        await self.broker.connect()
        await asyncio.gather(*(sub.start() for sub in self.broker.subscribers))
        for publisher in self.broker.publishers:
            await publisher.start()
        kafka_internals.mark_running(self.broker)

    async def stop(self) -> None:
        self.started = False
        bound_s = self.settings.shutdown_timeout_s
        try:
            async with asyncio.timeout(bound_s):
                await self.broker.stop()
        except TimeoutError:
            log.error("broker client did not stop in time", timeout_s=bound_s)
        except Exception as exc:
            log.warning("broker client failed to stop", error=type(exc).__name__)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=bound_s)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("task ended with a fault", task=task.get_name())
            if pending:
                log.error(
                    "tasks did not stop in time",
                    tasks=sorted(t.get_name() for t in pending),
                    timeout_s=bound_s,
                )
        self._tasks.clear()
        await self.engine.dispose()
        log.info("service stopped")

    async def _retry(self, what: str, action: Any) -> None:
        backoff = self.settings.retry_initial_backoff_s
        while True:
            try:
                await action()
                return
            except Exception as exc:
                log.warning(f"{what} failed, retrying", error=type(exc).__name__, backoff_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_backoff_s)

    async def _refresh_statistics(self) -> None:
        """ANALYZE the service's tables that changed much since their last statistics.

        The planner needs row counts to choose an index for the per-batch ``= ANY(:keys)``
        lookups; without them it scans. Autovacuum provides them, but only after its first
        nap (a minute) and not at all where it is switched off (as on the CI machine); a
        fresh service taking a burst in that minute slowed down with every batch.
        """
        async with self.engine.connect() as conn:
            # Tables whose rows changed by half since their statistics, as they grow: a
            # handful of runs. The outbox and the processed-message records are only read in
            # ways that need none (and are the most written).
            stale = (
                await conn.execute(
                    sa.text(
                        "SELECT schemaname, relname FROM pg_stat_user_tables"
                        " WHERE n_mod_since_analyze > 1000 + 0.5 * n_live_tup"
                        " AND relname NOT IN ('outbox_message', 'processed_message')"
                    )
                )
            ).all()
            quote = self.engine.dialect.identifier_preparer.quote
            await conn.commit()
            for schema, table in stale:
                await conn.execute(sa.text(f"ANALYZE {quote(schema)}.{quote(table)}"))
                # One short transaction each: a writing transaction holds back every outbox
                # relay on the server until it ends (eropaf_platform.outbox).
                await conn.commit()
        if stale:
            log.debug("statistics refreshed", tables=[t for _, t in stale])

    async def _apply_retention(self) -> None:
        from eropaf_platform.tables import processed_message

        purged = await self.relay.purge()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(processed_message).where(
                    processed_message.c.processed_at
                    < sa.func.now()
                    - sa.text(f"interval '{int(self.settings.processed_retention_days)} days'")
                )
            )
        log.info("retention applied", outbox_purged=purged, processed_purged=result.rowcount)

    # --- health ---------------------------------------------------------------------------

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": False, "broker": False, "started": self.started}
        try:
            async with asyncio.timeout(2.0), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["database"] = True
        except Exception as exc:
            log.debug("readiness: database", error=type(exc).__name__)
        checks["broker"] = await broker_reachable(self.settings)
        return checks

    def http_app(self, app: FastAPI | None = None) -> FastAPI:
        """The service's HTTP app (given or new) with health and metrics; its lifespan runs
        the service."""

        @contextlib.asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = app or FastAPI(title=f"eropaf-{self.settings.service_name}")
        app.router.lifespan_context = lifespan

        @app.get("/health/live", tags=["operations"])
        async def live() -> dict[str, str]:
            return {"status": "alive"}

        @app.get("/health/ready", tags=["operations"])
        async def ready(response: Response) -> dict[str, Any]:
            checks = await self.readiness()
            ok = all(checks.values())
            response.status_code = 200 if ok else 503
            return {"status": "ready" if ok else "not ready", "checks": checks}

        @app.get("/metrics", tags=["operations"])
        async def prometheus() -> Response:
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(self.settings.service_name).set(
                    await self.relay.backlog()
                )
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        return app

    def run(self, app: FastAPI | None = None) -> None:
        """Entry point of ``python -m eropaf_<service>``: serve until SIGINT/SIGTERM."""
        configure_logging(self.settings.service_name, self.settings.log_level)
        tune_gc(self.settings.service_name)
        uvicorn.run(
            self.http_app(app),
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )


def tune_gc(service: str) -> None:
    """Fewer cyclic-GC passes: a batch keeps tens of thousands of objects alive while it runs,
    and the default thresholds re-scan them many times per batch. Objects that live as long
    as the process (modules, schemas, compiled statements) are frozen out of the scans. Every
    pause is reported as ``eropaf_gc_pause_seconds``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    started: list[float] = []

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pause = time.perf_counter() - started.pop()
            metrics.GC_PAUSE_SECONDS.labels(service, str(info["generation"])).observe(pause)

    gc.callbacks.append(observe)


async def broker_reachable(settings: ServiceSettings, timeout: float = 3.0) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**connection_args(settings), request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
        async with asyncio.timeout(timeout):
            await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await admin.close()


def _record_lag(service: str, consumer: Any, records: Sequence[Any]) -> None:
    if consumer is None:
        return
    last: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        last[tp] = max(last.get(tp, -1), r.offset)
    for tp, offset in last.items():
        with contextlib.suppress(Exception):
            high = consumer.highwater(tp)
            if high is not None:
                metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(
                    max(0, high - offset - 1)
                )
