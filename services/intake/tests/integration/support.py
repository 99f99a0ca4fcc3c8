"""Running intake against the real broker and PostgreSQL, and talking to it as a partner."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eropaf_contracts.cloudevents import SIGNAL_SUBMITTED_TYPE, CloudEventHeaders
from eropaf_contracts.topics import feedback_topic, signals_topic
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.app import MIGRATIONS, IntakeSettings, build
from eropaf_platform.broker import ensure_topics
from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
from eropaf_platform.service import Service

PSEUDONYM_KEY = "test-pseudonym-key-" + "x" * 32
MASTER_KEYS = "t1:" + base64.b64encode(b"k" * 32).decode()
INTERNAL_TOKEN = "internal-test-token"


def intake_settings(bootstrap: str, database_url: str, **extra: Any) -> IntakeSettings:
    return IntakeSettings(
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
        **extra,
    )


@dataclass
class Partner:
    code: str
    kid: str
    key: Ed25519PrivateKey
    token: str


async def onboard(settings: IntakeSettings, code: str, types: Sequence[str] = ("Huur",)) -> Partner:
    await migrate_async(settings.database_url, MIGRATIONS, service="intake")
    engine = make_engine(settings.database_url)
    try:
        async with transaction(make_sessions(engine)) as session:
            result = await partners.onboard(session, code, code.title(), list(types))
    finally:
        await engine.dispose()
    await ensure_topics(settings, list(result.topics))
    assert result.private_key_pem is not None
    return Partner(code, result.kid, jws.private_key_from_pem(result.private_key_pem), result.token)


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
) -> list[tuple[str, bytes]]:
    signature = jws.sign_detached(value, key or partner.key, kid or partner.kid)
    headers = CloudEventHeaders.new(source or partner.code, ce_type).with_signature(signature)
    return headers.to_kafka()


async def publish(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
) -> list[str]:
    """Publish (key, value, headers); returns the ce_ids (or '' where absent)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [dict(h).get("ce_id", b"").decode() for _, _, h in messages]


async def publish_signals(
    bootstrap: str, partner: Partner, signals: Sequence[dict[str, Any]], **kw: Any
) -> list[str]:
    items = []
    for s in signals:
        value = json.dumps(s).encode()
        items.append((str(s.get("ID", "")).encode(), value, signed_message(partner, value, **kw)))
    return await publish(bootstrap, signals_topic(partner.code), items)


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expect and loop.time() < deadline:
            for recs in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                records.extend(recs)
        for recs in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def feedback_by_ce_id(
    bootstrap: str, partner: Partner, expect: int, timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    records = await read_topic(bootstrap, feedback_topic(partner.code), expect, timeout)
    result: dict[str, dict[str, Any]] = {}
    for r in records:
        body = json.loads(r.value)
        result[body.get("ce_id") or r.key.decode()] = body
    return result


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
