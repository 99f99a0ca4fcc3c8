"""Intake's SQL repositories against PostgreSQL: what they store and read back, through the
unit of work the use cases run in."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.signals import PartnerSignal
from eropaf_intake import partners
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.crypto import parse_keyring
from eropaf_intake.adapters.tables import personal_data_access, personal_record
from eropaf_intake.adapters.tables import signal as signal_table
from eropaf_intake.app import MIGRATIONS
from eropaf_intake.domain.signals import StoredSignal
from eropaf_intake.service_layer.unit_of_work import IntakeUnitOfWork
from eropaf_platform.db import make_engine, make_sessions, migrate_async, transaction
from eropaf_platform.outbox import OutgoingMessage
from eropaf_platform.tables import outbox_message
from eropaf_platform.testing.fixtures import DatabaseRegistry

pytestmark = pytest.mark.integration

KEYRING = parse_keyring("r1:" + base64.b64encode(b"r" * 32).decode())
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def sessions(postgres_server_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    registry = DatabaseRegistry(postgres_server_url)
    url = registry.create("eropaf_intake_repository")
    await migrate_async(url, MIGRATIONS, service="intake")
    engine = make_engine(url)
    try:
        yield make_sessions(engine)
    finally:
        await engine.dispose()
        registry.drop_all()


def stored(ref: str, **changes: object) -> StoredSignal:
    base = StoredSignal(
        signal_ref=ref,
        partner_code="repo-corp",
        signal_id=f"ID-{ref[:4]}",
        fingerprint="f" * 64,
        signaaldatum=date(2026, 11, 10),
        revision=1,
        household_key="h" * 64,
        accepted_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def a_signal(signal_id: str) -> PartnerSignal:
    return PartnerSignal.model_validate(
        {
            "ID": signal_id,
            "bedrag": 120,
            "signaaldatum": "2026-11-10",
            "signaalpartner": {"type": "Huur"},
            "client": {"Achternaam": "Dijk", "Postcode": "3431AB", "Huisnummer": "1"},
        }
    )


async def test_signals_are_saved_at_commit_in_one_statement_and_read_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    one, two = "1a" * 32, "2b" * 32
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session, KEYRING)
        async with uow:
            uow.signals.add(stored(one))
            uow.signals.add(stored(two, signaaldatum=None))
            assert await uow.signals.get({one, two}) == {}  # staged, not yet saved
            uow.queue([OutgoingMessage(topic="t", key="k", value=b"{}", event_id="repo-1")])
            await uow.commit()
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session)
        got = await uow.signals.get([one, two, "3c" * 32])
        assert got == {one: stored(one), two: stored(two, signaaldatum=None)}
        assert await session.scalar(
            sa.select(sa.func.count()).where(outbox_message.c.event_id == "repo-1")
        )

    # A new revision replaces the row; the closure of its case stays.
    closed_at = datetime(2026, 12, 1, tzinfo=UTC)
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session)
        async with uow:
            await uow.signals.close_cases([one], closed_at)
            uow.signals.add(stored(one, revision=2, resolved_on=date(2026, 11, 18)))
            await uow.commit()
    async with transaction(sessions) as session:
        row = (
            await session.execute(sa.select(signal_table).where(signal_table.c.signal_ref == one))
        ).one()
        assert (row.revision, row.resolved_on, row.case_closed_at) == (
            2,
            date(2026, 11, 18),
            closed_at,
        )


async def test_personal_data_is_encrypted_per_household_and_every_read_audited(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ref, household = "4d" * 32, "e" * 64
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session, KEYRING)
        async with uow:
            uow.signals.add(stored(ref, household_key=household))
            uow.personal_data.add(ref, household, a_signal("P-1"), NOW)
            await uow.commit()
    async with transaction(sessions) as session:
        ciphertext = await session.scalar(
            sa.select(personal_record.c.ciphertext).where(personal_record.c.signal_ref == ref)
        )
        assert ciphertext is not None and b"Dijk" not in ciphertext
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session, KEYRING)
        data = await uow.personal_data.read([ref], accessor="test", purpose="checking")
        audited = await session.scalar(
            sa.select(sa.func.count()).where(personal_data_access.c.signal_ref == ref)
        )
    assert data[ref]["client"]["Achternaam"] == "Dijk"
    assert data[ref]["ID"] == "P-1"
    assert audited == 1
    # Without the master keyring nothing personal can be written.
    async with transaction(sessions) as session:
        uow = IntakeUnitOfWork(session)
        uow.personal_data.add(ref, household, a_signal("P-1"), NOW)
        with pytest.raises(RuntimeError, match="master keyring"):
            await uow.commit()


async def test_the_partner_directory_holds_keys_ready_to_verify(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        onboarded = await partners.onboard(session, "dir-corp", "Dir", ["Huur"])
        await partners.revoke_key(session, "dir-corp", onboarded.kid)
    assert onboarded.private_key_pem is not None
    private = jws.private_key_from_pem(onboarded.private_key_pem)
    async with transaction(sessions) as session:
        directory = await IntakeUnitOfWork(session).partners.directory()
    policy = directory.partners["dir-corp"]
    assert [t.value for t in policy.types] == ["Huur"] and not policy.disabled
    key = directory.keys[onboarded.kid]
    assert (key.partner_code, key.revoked) == ("dir-corp", True)
    assert directory.token_hashes["dir-corp"]
    signed = directory.signatures.read(jws.sign_detached(b"value", private, onboarded.kid))
    assert signed.kid == onboarded.kid
    assert directory.signatures.verify(signed, b"value", key)
    assert not directory.signatures.verify(signed, b"other", key)
    with pytest.raises(ValueError):
        directory.signatures.read("not a signature")
