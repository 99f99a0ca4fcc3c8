"""Wiring of the intake service: settings, subscribers, HTTP channel."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Self

from fastapi import FastAPI
from pydantic import Field, SecretStr, model_validator

from eropaf_contracts.region import load_region
from eropaf_contracts.topics import (
    CREDITOR_FEEDBACK_TOPIC,
    INTAKE_SIGNALS_TOPIC,
    SIGNALS_TOPIC_PATTERN,
)
from eropaf_intake.adapters.crypto import parse_keyring
from eropaf_intake.adapters.rate_limit import RateLimiter
from eropaf_intake.domain.decode import DecodeLimits
from eropaf_intake.domain.validation import Limits
from eropaf_intake.handlers import (
    MATCHING_EVENT_TYPES,
    PartnerSignalsHandler,
    dead_letter_feedback,
    handle_matching_events,
    of_types,
    partner_dead_letter_seal,
)
from eropaf_intake.http_api import build_router
from eropaf_intake.service_layer.services import IntakeConfig
from eropaf_platform.service import Service
from eropaf_platform.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    secret_fields = ("pseudonym_key", "master_keys", "internal_api_token")

    pseudonym_key: SecretStr | None = None  # HMAC key of pseudonyms and match tokens
    master_keys: SecretStr | None = (
        None  # keyring "kid:base64key[,kid:base64key]", first is current
    )
    internal_api_token: SecretStr | None = None  # for services reading personal data
    region_file: str | None = None  # None: the packaged Lekstroom region
    # Limits of the partners' door (docs/partners.md). A signal is ~0.5-1 KB of JSON, a CSV
    # row ~250 bytes: a month of a large health insurer (tens of thousands) fits one request.
    max_message_bytes: int = Field(64 * 1024, ge=1024)  # one Kafka message value
    max_http_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)  # one HTTP request body
    max_json_depth: int = Field(8, ge=3, le=64)  # nesting of one signal (it needs 3)
    max_string_chars: int = Field(1000, ge=64)  # one string value
    max_signals_per_request: int = Field(50_000, ge=1)  # items of one JSON array (HTTP)
    max_csv_rows: int = Field(50_000, ge=1)  # data rows of one CSV body (HTTP)
    http_rate_per_second: float = 10.0  # requests per partner token; 0 turns it off
    http_rate_burst: int = Field(20, ge=1)
    personal_data_retention_days: int = 365

    @model_validator(mode="before")
    @classmethod
    def _dev_keyring(cls, data: Any) -> Any:
        # The generic dev secret is not in keyring form; give dev mode a valid (public) one.
        if (
            isinstance(data, dict)
            and str(data.get("dev_mode", "")).lower() in ("1", "true")
            and not data.get("master_keys")
        ):
            key = base64.b64encode(hashlib.sha256(b"eropaf-dev-only:master").digest()).decode()
            data = {**data, "master_keys": f"dev:{key}"}
        return data

    @model_validator(mode="after")
    def _keyring_parses(self) -> Self:
        if self.master_keys is not None:
            parse_keyring(self.master_keys.get_secret_value())
        if self.pseudonym_key is not None and len(self.pseudonym_key.get_secret_value()) < 32:
            raise ValueError("EROPAF_PSEUDONYM_KEY must be at least 32 characters")
        return self

    def intake_config(self) -> IntakeConfig:
        assert self.pseudonym_key is not None and self.master_keys is not None
        return IntakeConfig(
            region=load_region(Path(self.region_file) if self.region_file else None),
            pseudonym_key=self.pseudonym_key.get_secret_value().encode(),
            keyring=parse_keyring(self.master_keys.get_secret_value()),
            limits=Limits(
                max_value_bytes=self.max_message_bytes,
                decode=DecodeLimits(
                    max_depth=self.max_json_depth, max_string_chars=self.max_string_chars
                ),
            ),
        )


def build(settings: IntakeSettings | None = None) -> tuple[Service, FastAPI]:
    settings = settings or IntakeSettings()
    config = settings.intake_config()
    service = Service(
        settings,
        migrations=MIGRATIONS,
        topics=[INTAKE_SIGNALS_TOPIC, CREDITOR_FEEDBACK_TOPIC],
    )
    service.subscribe(
        pattern=SIGNALS_TOPIC_PATTERN,
        consumer="intake-partner-signals",
        handler=PartnerSignalsHandler(config),
        seal_dead_letter=partner_dead_letter_seal(config.keyring),
        on_dead_letter=dead_letter_feedback(config),
    )
    # Matching's events for intake (creditor feedback and case closures) come on one topic
    # of their own, not on the cases topic: intake never fetches the case events it has no
    # use for. One consumer reads it once and handles both types in one transaction per
    # batch; other types are skipped before any transaction. The name is the creditor-feedback
    # consumer's of old, so its group's offsets and processed-message records carry on.
    service.subscribe(
        CREDITOR_FEEDBACK_TOPIC,
        consumer="intake-creditor-feedback",
        handler=handle_matching_events,
        wanted=of_types(*MATCHING_EVENT_TYPES),
    )
    app = FastAPI(
        title="Eropaf intake",
        version="1",
        description="The partners' door: arrears signals over HTTP (JSON or CSV). See CONTRACT §3.",
    )
    assert settings.internal_api_token is not None
    app.include_router(
        build_router(
            config,
            service.sessions,
            max_body_bytes=settings.max_http_body_bytes,
            internal_token=settings.internal_api_token.get_secret_value(),
            on_commit=service.relay.wake,
            max_signals=settings.max_signals_per_request,
            max_csv_rows=settings.max_csv_rows,
            rate_limiter=RateLimiter(settings.http_rate_per_second, settings.http_rate_burst),
        )
    )
    return service, service.http_app(app)


def main() -> None:
    service, app = build()
    service.run(app)
