from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from eropaf_platform.db import normalise_url
from eropaf_platform.settings import ServiceSettings

pytestmark = pytest.mark.unit


class WithSecret(ServiceSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("signing_key",)
    signing_key: SecretStr | None = None


def test_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("EROPAF_DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    monkeypatch.setenv("EROPAF_KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("EROPAF_SIGNING_KEY", "s3cret-value")
    settings = WithSecret()
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert settings.signing_key is not None
    assert settings.signing_key.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert settings.kafka_enable_idempotence is False  # off against the local broker


def test_a_missing_secret_stops_start_up_outside_dev_mode(monkeypatch) -> None:
    monkeypatch.delenv("EROPAF_SIGNING_KEY", raising=False)
    with pytest.raises(ValidationError, match="EROPAF_SIGNING_KEY"):
        WithSecret(database_url="postgresql://x/y")


def test_dev_mode_fills_in_a_dev_secret() -> None:
    settings = WithSecret(database_url="postgresql://x/y", dev_mode=True)
    assert settings.signing_key is not None and len(settings.signing_key.get_secret_value()) >= 32


def test_database_url_is_required() -> None:
    with pytest.raises(ValidationError, match="EROPAF_DATABASE_URL"):
        ServiceSettings()


def test_only_postgresql_is_accepted() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    with pytest.raises(ValueError, match="only PostgreSQL"):
        normalise_url("sqlite:///x.db")
