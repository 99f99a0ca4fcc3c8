"""`eropaf partner onboard --partner-bootstrap`: against a deployed broker (SCRAM users and
ACLs) onboarding also creates the partner's broker user and ACLs through the Kafka admin API
(`eropaf_platform.kafka_admin.onboard_partner`) and prints its connection settings once.

The local broker (Tansu) has no SCRAM or ACL admin API, so the admin client is a fake that
records what it is asked; the partner's registration is real (PostgreSQL). What the requests
look like on the wire is tested with `kafka_admin` itself (tests/deploy/test_kafka_admin.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eropaf_intake.adapters.tables import partner
from eropaf_platform import kafka_admin
from eropaf_platform.db import make_engine

pytestmark = pytest.mark.integration

ADMIN_BOOTSTRAP = "kafka.internal:9093"
PARTNER_BOOTSTRAP = "partners.example.org:9094"


class FakeAdmin:
    """Stands in for AIOKafkaAdminClient: records what onboarding asks of the broker."""

    instances: list[FakeAdmin] = []
    acl_error: tuple[int, str | None] = (0, None)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.created: list[Any] = []
        self.requests: list[Any] = []
        self.closed = False
        FakeAdmin.instances.append(self)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def list_topics(self) -> list[str]:
        return []

    async def create_topics(self, topics: list[Any]) -> Any:
        self.created += topics

        class Response:
            topic_errors = [(t.name, 0, None) for t in topics]

        return Response()

    async def _send_request(self, request: Any) -> Any:
        self.requests.append(request)
        if isinstance(request, kafka_admin.AlterUserScramCredentials):
            return kafka_admin.AlterUserScramCredentialsResponse_v0(0, [("u", 0, None, {})], {})
        error = self.acl_error

        class AclResponse:
            creation_responses = [error]

        return AclResponse()


@pytest.fixture
def fake_admin(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    import aiokafka.admin

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", FakeAdmin)
    FakeAdmin.instances = []
    FakeAdmin.acl_error = (0, None)
    # The deployed stack's admin user, as the admin container has it.
    monkeypatch.setenv("EROPAF_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("EROPAF_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("EROPAF_KAFKA_SASL_USERNAME", "eropaf-admin")
    monkeypatch.setenv("EROPAF_KAFKA_SASL_PASSWORD", "admin-password")
    return FakeAdmin


async def onboard(
    capsys: pytest.CaptureFixture[str], database_url: str, code: str, *extra: str
) -> tuple[int, str, str]:
    from eropaf_cli.main import main

    argv = [
        "partner", "onboard", code, "--name", "Corp", "--types", "Huur",
        "--database-url", database_url, "--bootstrap-servers", ADMIN_BOOTSTRAP,
        "--partner-bootstrap", PARTNER_BOOTSTRAP, *extra,
    ]  # fmt: skip
    capsys.readouterr()
    code_ = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    return code_, out, err


async def registered(database_url: str, code: str) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.select(sa.func.count()).select_from(partner).where(partner.c.code == code)
                )
                or 0
            )
    finally:
        await engine.dispose()


async def test_onboard_creates_the_partners_broker_user_and_acls_and_prints_its_settings(
    capsys: pytest.CaptureFixture[str],
    fresh_database_url: Callable[[], str],
    fake_admin: type[FakeAdmin],
    tmp_path: Path,
) -> None:
    database_url = fresh_database_url()
    code = f"corp-{uuid.uuid4().hex[:8]}"
    rc, out, err = await onboard(
        capsys, database_url, code, "--generate-key", str(tmp_path / "corp.pem")
    )
    assert rc == 0, err
    (admin,) = fake_admin.instances
    # As the admin user, on the admin listener; closed afterwards.
    assert admin.kwargs["bootstrap_servers"] == ADMIN_BOOTSTRAP
    assert admin.kwargs["sasl_plain_username"] == "eropaf-admin" and admin.closed
    assert {t.name for t in admin.created} == {
        f"arrears.signals.{code}", f"arrears.signals.{code}.dlq", f"arrears.feedback.{code}"
    }  # fmt: skip
    scram = [r for r in admin.requests if isinstance(r, kafka_admin.AlterUserScramCredentials)]
    acls = [r for r in admin.requests if not isinstance(r, kafka_admin.AlterUserScramCredentials)]
    assert len(scram) == 1
    assert len(acls) == len(kafka_admin.onboard_acls(code))
    # The partner's settings, once: its listener, its user and its new password.
    assert f"bootstrap.servers={PARTNER_BOOTSTRAP}" in out
    assert "security.protocol=SASL_SSL" in out and "sasl.mechanism=SCRAM-SHA-512" in out
    password = next(line.split("=", 1)[1] for line in out.splitlines() if "sasl.password=" in line)
    assert len(password) >= 32 and out.count(password) == 2  # JAAS line and librdkafka line
    assert f'username="partner.{code}"' in out
    assert "shown only this once" in err
    assert await registered(database_url, code) == 1


async def test_json_output_carries_the_connection(
    capsys: pytest.CaptureFixture[str],
    fresh_database_url: Callable[[], str],
    fake_admin: type[FakeAdmin],
    tmp_path: Path,
) -> None:
    code = f"corp-{uuid.uuid4().hex[:8]}"
    rc, out, err = await onboard(
        capsys, fresh_database_url(), code, "--generate-key", str(tmp_path / "k.pem"),
        "--partner-security-protocol", "SASL_PLAINTEXT", "--json",
    )  # fmt: skip
    assert rc == 0, err
    kafka = json.loads(out)["kafka"]
    assert kafka["bootstrap_servers"] == PARTNER_BOOTSTRAP
    assert kafka["security_protocol"] == "SASL_PLAINTEXT"
    assert kafka["username"] == f"partner.{code}" and kafka["password"]
    assert kafka["group_prefix"] == kafka_admin.partner_group_prefix(code)


async def test_a_refused_acl_registers_nothing(
    capsys: pytest.CaptureFixture[str],
    fresh_database_url: Callable[[], str],
    fake_admin: type[FakeAdmin],
    tmp_path: Path,
) -> None:
    fake_admin.acl_error = (31, "Cluster authorization failed.")
    database_url = fresh_database_url()
    code = f"corp-{uuid.uuid4().hex[:8]}"
    key = tmp_path / "corp.pem"
    rc, out, err = await onboard(capsys, database_url, code, "--generate-key", str(key))
    assert rc == 2
    assert "the broker refused" in err and "error 31" in err
    assert await registered(database_url, code) == 0  # one transaction: nothing half done
    assert not key.exists()
    assert "sasl.password" not in out
