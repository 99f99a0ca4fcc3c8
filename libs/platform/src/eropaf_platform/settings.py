"""Settings every service shares (environment variables with the ``EROPAF_`` prefix)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def dev_secret(name: str) -> SecretStr:
    """A fixed, clearly-not-secret value for explicit dev mode only."""
    return SecretStr(hashlib.sha256(f"eropaf-dev-only:{name}".encode()).hexdigest())


def fill_secrets(settings: BaseSettings, names: Iterable[str], dev_mode: bool) -> None:
    """Give each missing secret among ``names`` its dev value in dev mode; outside it, a
    missing secret is an error naming the environment variables to set."""
    missing = []
    for name in names:
        if getattr(settings, name) is None:
            if dev_mode:
                object.__setattr__(settings, name, dev_secret(name))
            else:
                missing.append(f"EROPAF_{name.upper()}")
    if missing:
        raise ValueError(f"secrets missing (no defaults outside dev mode): {', '.join(missing)}")


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it and adds its own fields.

    Fields named in ``secret_fields`` have no default: outside ``dev_mode`` a missing secret
    stops the service at start-up, in dev mode a fixed dev value is filled in.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ()

    model_config = SettingsConfigDict(env_prefix="EROPAF_", extra="ignore", env_file=None)

    service_name: str = "eropaf"
    dev_mode: bool = False
    log_level: str = "INFO"

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # The local broker (Tansu) does not support the idempotent producer; real Kafka does.
    kafka_enable_idempotence: bool = False
    kafka_linger_ms: int = 5
    kafka_max_batch_bytes: int = 512 * 1024
    # New partner topics are found by regex subscription only at a metadata refresh.
    kafka_metadata_max_age_ms: int = 5_000
    kafka_topic_partitions: int = 4
    # The local broker holds a group join for half the session timeout, and each subscriber
    # joins in turn at start-up: 6 s (Kafka's minimum by default) keeps start-up short.
    kafka_session_timeout_ms: int = 6_000
    kafka_heartbeat_interval_ms: int = 2_000
    # How long the broker may hold a fetch with no new records. Kafka answers as soon as
    # records arrive; the local broker (Tansu) holds the fetch for the full wait, so the
    # client default (500 ms) added ~250 ms to every hop.
    kafka_fetch_max_wait_ms: int = 50
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # CA bundle (PEM) that signed the broker's certificate, for SSL and SASL_SSL; unset: the
    # system's trusted CAs.
    kafka_ssl_cafile: str | None = None

    database_url: str = Field(
        default="", description="SQLAlchemy URL of this service's own PostgreSQL database"
    )

    # How long a starting service waits for its database server to accept connections.
    database_wait_s: float = 60.0

    http_host: str = "127.0.0.1"
    http_port: int = 8000

    consumer_max_records: int = 500
    # FastStream waits this long for records and, when none came, sleeps as long again: a
    # signal arriving in that sleep waited for it (100 ms cost ~100 ms per hop at 100/s).
    consumer_batch_timeout_ms: int = 20
    # How long a small batch may wait for more records on their way: every batch costs a
    # transaction and an offset commit, so bigger batches are most of the throughput.
    consumer_linger_ms: int = 20
    poison_max_attempts: int = 3
    retry_initial_backoff_s: float = 0.2
    retry_max_backoff_s: float = 10.0
    # How long stop() waits for the broker client and each background task: a client that
    # never returns (aiokafka's stop() can hang) must not keep a SIGTERM from ending it.
    shutdown_timeout_s: float = 15.0

    # How often tables that changed much get fresh planner statistics (see Service).
    analyze_interval_s: float = 10.0
    outbox_batch_size: int = 2_000
    outbox_poll_interval_s: float = 0.5
    outbox_retention_days: int = 30
    processed_retention_days: int = 60

    @model_validator(mode="after")
    def _secrets_present(self) -> Self:
        if not self.database_url:
            raise ValueError("EROPAF_DATABASE_URL is required")
        fill_secrets(self, self.secret_fields, self.dev_mode)
        return self
