"""Running intake against the real broker and PostgreSQL, and talking to it as a partner."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.cloudevents import SIGNAL_SUBMITTED_TYPE, CloudEventHeaders
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC, feedback_topic, signals_topic
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.app import MIGRATIONS, IntakeSettings, build
from eropaf_intake.domain.match_tokens import signal_ref
from eropaf_platform.broker import ensure_topics
from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
from eropaf_platform.local.service_process import ServiceProcess
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

PSEUDONYM_KEY = "test-pseudonym-key-" + "x" * 32
MASTER_KEYS = "t1:" + base64.b64encode(b"k" * 32).decode()
INTERNAL_TOKEN = "internal-test-token"

Headers = list[tuple[str, bytes]]


def intake_settings(bootstrap: str, database_url: str, **extra: Any) -> IntakeSettings:
    values: dict[str, Any] = dict(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        pseudonym_key=PSEUDONYM_KEY,
        master_keys=MASTER_KEYS,
        internal_api_token=INTERNAL_TOKEN,
        kafka_metadata_max_age_ms=1000,
        kafka_topic_partitions=2,
        outbox_poll_interval_s=0.1,
        consumer_batch_timeout_ms=50,
        retry_initial_backoff_s=0.05,
    )
    values.update(extra)
    return IntakeSettings(**values)


def ref_of(code: str, signal_id: str) -> str:
    """The pseudonymous signal ref intake derives (with the tests' pseudonym key)."""
    return signal_ref(PSEUDONYM_KEY.encode(), code, signal_id)


@dataclass
class Partner:
    code: str
    kid: str
    key: Ed25519PrivateKey
    token: str


@asynccontextmanager
async def admin_session(settings: IntakeSettings) -> AsyncIterator[AsyncSession]:
    """A committed transaction on intake's database, as `eropaf partner ...` would use."""
    engine = make_engine(settings.database_url)
    try:
        async with transaction(make_sessions(engine)) as session:
            yield session
    finally:
        await engine.dispose()


async def onboard(settings: IntakeSettings, code: str, types: Sequence[str] = ("Huur",)) -> Partner:
    await migrate_async(settings.database_url, MIGRATIONS, service="intake")
    async with admin_session(settings) as session:
        result = await partners.onboard(session, code, code.title(), list(types))
    await ensure_topics(settings, list(result.topics))
    assert result.private_key_pem is not None
    return Partner(code, result.kid, jws.private_key_from_pem(result.private_key_pem), result.token)


def unique_code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def running_intake(settings: IntakeSettings) -> AsyncIterator[Service]:
    service, _app = build(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def signal(signal_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    client = {
        "Burgerservicenummer": "111222333",
        "Voorletters": "J.",
        "Voorvoegsel": "van",
        "Achternaam": "Dijk",
        "Geboortedatum": "1980-04-01",
        "Straatnaam": "Dorpsstraat",
        "Postcode": "3431 AB",
        "Huisnummer": "12",
        "Huisnummertoevoeging": "a",
        "Plaatsnaam": "Nieuwegein",
    }
    client.update(overrides.pop("client", {}))
    value: dict[str, Any] = {
        "ID": signal_id or f"S-{uuid.uuid4().hex[:12]}",
        "crisissignaal": False,
        "warmeOverdracht": False,
        "bedrag": 450,
        "ontstaansdatum": "2026-08-01",
        "signaaldatum": date.today().isoformat(),
        "signaalpartner": {"type": "Huur"},
        "client": client,
    }
    value.update(overrides)
    return value


def signed_message(
    partner: Partner,
    value: bytes,
    *,
    ce_type: str = SIGNAL_SUBMITTED_TYPE,
    key: Ed25519PrivateKey | None = None,
    kid: str | None = None,
    source: str | None = None,
    ce_id: str | None = None,
) -> Headers:
    signature = jws.sign_detached(value, key or partner.key, kid or partner.kid)
    headers = CloudEventHeaders.new(source or partner.code, ce_type, id=ce_id)
    return headers.with_signature(signature).to_kafka()


def unsigned_headers(code: str, ce_type: str = SIGNAL_SUBMITTED_TYPE) -> Headers:
    return CloudEventHeaders.new(code, ce_type).to_kafka()


Outgoing = tuple[bytes | None, bytes, Headers]


async def publish(bootstrap: str, topic: str, messages: Sequence[Outgoing]) -> list[str]:
    """Publish (key, value, headers); returns the ce_ids (or '' where absent)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(dict(h).get("ce_id") or b"").decode(errors="replace") for _, _, h in messages]


def signal_item(partner: Partner, body: Mapping[str, Any] | bytes, **kw: Any) -> Outgoing:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    key = str(body.get("ID", "")).encode() if isinstance(body, Mapping) else None
    return key, value, signed_message(partner, value, **kw)


async def publish_signals(
    bootstrap: str, partner: Partner, bodies: Sequence[dict[str, Any]], **kw: Any
) -> list[str]:
    items = [signal_item(partner, s, **kw) for s in bodies]
    return await publish(bootstrap, signals_topic(partner.code), items)


class TopicReader:
    """Reads a topic from the beginning, keeping everything; `catch_up` reads up to the end
    offsets of the moment, so a check after it is exact (no read-with-timeout guessing)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=500,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def _assign(self) -> None:
        parts = self._consumer.partitions_for_topic(self.topic)
        if not parts:
            await self._consumer._client.force_metadata_update()
            parts = self._consumer.partitions_for_topic(self.topic) or set()
        if len(parts) != len(self._partitions):
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(parts)]
            self._consumer.assign(self._partitions)
            await self._consumer.seek_to_beginning(*self._partitions)
            self.records.clear()

    async def catch_up(self, timeout: float = 30.0) -> list[ConsumerRecord[bytes, bytes]]:
        await self._assign()
        if not self._partitions:
            return self.records
        ends = await self._consumer.end_offsets(self._partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Fetch only while catching up: idle readers must not keep long-polling the broker.
        self._consumer.resume(*self._partitions)
        try:
            while not await self._reached(ends):
                if loop.time() > deadline:
                    raise TimeoutError(f"{self.topic}: not caught up within {timeout}s")
                batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
                for recs in batches.values():
                    self.records.extend(recs)
        finally:
            self._consumer.pause(*self._partitions)
        return self.records

    async def _reached(self, ends: Mapping[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    async def __aenter__(self) -> TopicReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def read_topic(
    bootstrap: str, topic: str, expect: int = 0, timeout: float = 30.0
) -> list[Any]:
    """Every record of `topic` now, waiting until there are at least `expect`."""
    async with TopicReader(bootstrap, topic) as reader:

        async def enough() -> bool:
            return len(await reader.catch_up()) >= expect

        await wait_until_async(enough, timeout=timeout, interval=0.2)
        return list(reader.records)


def feedback_bodies(records: Sequence[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


async def feedback_by_ce_id(
    bootstrap: str, partner: Partner, expect: int, timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    records = await read_topic(bootstrap, feedback_topic(partner.code), expect, timeout)
    result: dict[str, dict[str, Any]] = {}
    for r in records:
        body = json.loads(r.value)
        result[body.get("ce_id") or r.key.decode()] = body
    return result


@dataclass
class Observer:
    """Follows a partner's feedback topic and intake's event topic during a test."""

    bootstrap: str
    readers: dict[str, TopicReader] = field(default_factory=dict)

    async def reader(self, topic: str) -> TopicReader:
        if topic not in self.readers:
            self.readers[topic] = TopicReader(self.bootstrap, topic)
            await self.readers[topic].start()
        return self.readers[topic]

    async def feedback(
        self, partner: Partner, ce_ids: Sequence[str], timeout: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Feedback per ce_id, once every one of `ce_ids` has some."""
        reader = await self.reader(feedback_topic(partner.code))

        async def complete() -> dict[str, dict[str, Any]] | None:
            got = {b["ce_id"]: b for b in feedback_bodies(await reader.catch_up())}
            return got if all(c in got for c in ce_ids) else None

        result = await wait_until_async(
            complete, timeout=timeout, interval=0.2, message=f"feedback for {partner.code}"
        )
        assert result is not None
        return result

    async def events(
        self, match: Callable[[Envelope], bool], expect: int = 0, timeout: float = 30.0
    ) -> list[Envelope]:
        reader = await self.reader(INTAKE_SIGNALS_TOPIC)

        async def enough() -> tuple[list[Envelope]] | None:
            records = await reader.catch_up()
            found = [e for e in (Envelope.from_bytes(r.value) for r in records) if match(e)]
            return (found,) if len(found) >= expect else None  # a tuple: [] is a result too

        result = await wait_until_async(enough, timeout=timeout, interval=0.2)
        assert result is not None
        return result[0]

    async def close(self) -> None:
        for reader in self.readers.values():
            await reader.stop()
        self.readers.clear()


def reasons_of(feedback: Mapping[str, Any]) -> set[str]:
    return {r["code"] for r in feedback.get("reasons", [])}


# -- intake as a real process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def intake_process(settings: IntakeSettings, log_path: Path, **env: str) -> ServiceProcess:
    """`python -m eropaf_intake` with these settings; its JSON log appended to `log_path`."""
    return ServiceProcess(
        "eropaf_intake",
        {
            "EROPAF_DATABASE_URL": settings.database_url,
            "EROPAF_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "EROPAF_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "EROPAF_MASTER_KEYS": MASTER_KEYS,
            "EROPAF_INTERNAL_API_TOKEN": INTERNAL_TOKEN,
            "EROPAF_KAFKA_METADATA_MAX_AGE_MS": "1000",
            "EROPAF_KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
            "EROPAF_OUTBOX_POLL_INTERVAL_S": "0.1",
            "EROPAF_RETRY_INITIAL_BACKOFF_S": "0.05",
            **env,
        },
        log_path,
    )


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
