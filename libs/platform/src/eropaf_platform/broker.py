"""Kafka clients configured the same way in every service."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from eropaf_platform.settings import ServiceSettings

TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def uses_tls(settings: ServiceSettings) -> bool:
    return settings.kafka_security_protocol.upper() in TLS_PROTOCOLS


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    """The TLS context of a broker connection (SSL, SASL_SSL): the broker's certificate is
    verified against `kafka_ssl_cafile`, else the system's CAs, and its host name checked.
    None for a plaintext connection."""
    if not uses_tls(settings):
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=settings.kafka_ssl_cafile)


def connection_args(settings: ServiceSettings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "metadata_max_age_ms": settings.kafka_metadata_max_age_ms,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:  # aiokafka refuses SSL and SASL_SSL without one
        args["ssl_context"] = context
    if settings.kafka_sasl_mechanism:
        args["sasl_mechanism"] = settings.kafka_sasl_mechanism
        args["sasl_plain_username"] = settings.kafka_sasl_username
        args["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return args


def producer_args(settings: ServiceSettings) -> dict[str, Any]:
    # acks=all: an event counts as published only when every in-sync replica has it.
    return {
        "acks": "all",
        "linger_ms": settings.kafka_linger_ms,
        "max_batch_size": settings.kafka_max_batch_bytes,
        "enable_idempotence": settings.kafka_enable_idempotence,
        "client_id": f"eropaf-{settings.service_name}",
    }


def make_broker(settings: ServiceSettings, **kwargs: Any) -> KafkaBroker:
    security: BaseSecurity | None = None
    context = ssl_context(settings)
    if settings.kafka_sasl_mechanism:
        password = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
        username = settings.kafka_sasl_username or ""
        use_ssl = context is not None
        mechanism = settings.kafka_sasl_mechanism.upper()
        if mechanism == "SCRAM-SHA-512":
            security = SASLScram512(username, password, ssl_context=context, use_ssl=use_ssl)
        elif mechanism == "SCRAM-SHA-256":
            security = SASLScram256(username, password, ssl_context=context, use_ssl=use_ssl)
        else:
            security = SASLPlaintext(username, password, ssl_context=context, use_ssl=use_ssl)
    elif context is not None:
        security = BaseSecurity(ssl_context=context)
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
        security=security,
        **producer_args(settings),
        **kwargs,
    )


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(**connection_args(settings), **producer_args(settings))


async def ensure_topics(
    settings: ServiceSettings,
    topics: list[str],
    *,
    partitions: int | None = None,
    configs: dict[str, str] | None = None,
) -> None:
    """Create topics that do not exist yet; existing ones are left as they are."""
    if not topics:
        return
    admin = AIOKafkaAdminClient(**connection_args(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                t, partitions or settings.kafka_topic_partitions, 1, topic_configs=configs or {}
            )
            for t in dict.fromkeys(topics)
            if t not in existing
        ]
        if not new:
            return
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return
        for topic, code, message in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"cannot create topic {topic}: {code} {message}")
    finally:
        await admin.close()
