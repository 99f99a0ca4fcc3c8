"""Reading, shredding and purging personal data. Every read is written to the audit trail
in the same transaction as the read, so there is no read without a record of it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_intake.adapters import crypto
from eropaf_intake.adapters.tables import (
    household_key,
    personal_data_access,
    personal_record,
    signal,
)


async def read_personal_data(
    session: AsyncSession,
    keyring: crypto.Keyring,
    signal_refs: list[str],
    *,
    accessor: str,
    purpose: str,
) -> dict[str, dict[str, Any]]:
    """Decrypted personal fields per signal ref (refs whose data was shredded are absent)."""
    if not accessor.strip() or not purpose.strip():
        raise ValueError("a read of personal data needs an accessor and a purpose")
    rows = (
        await session.execute(
            sa.select(
                personal_record.c.signal_ref,
                personal_record.c.household_key,
                personal_record.c.ciphertext,
                household_key.c.wrapped_key,
            )
            .join(household_key, household_key.c.household_key == personal_record.c.household_key)
            .where(personal_record.c.signal_ref.in_(signal_refs))
        )
    ).all()
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        data_key = crypto.unwrap(
            base64.b64decode(row.wrapped_key), keyring, row.household_key.encode()
        )
        plaintext = crypto.decrypt(
            data_key, row.ciphertext, crypto.record_aad(row.household_key, row.signal_ref)
        )
        result[row.signal_ref] = orjson.loads(plaintext)
    await session.execute(
        sa.insert(personal_data_access),
        [
            {
                "accessor": accessor,
                "purpose": purpose,
                "signal_ref": ref,
                "fields": "client,contactgegevens",
            }
            for ref in signal_refs
        ],
    )
    return result


async def shred_household(session: AsyncSession, household: str) -> int:
    """Crypto-shredding: without its data key a household's ciphertexts are unreadable; the
    ciphertexts go too. Returns how many personal records were removed."""
    result = await session.execute(
        sa.delete(personal_record).where(personal_record.c.household_key == household)
    )
    await session.execute(
        sa.delete(household_key).where(household_key.c.household_key == household)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def households_of(session: AsyncSession, signal_refs: list[str]) -> set[str]:
    rows = await session.execute(
        sa.select(signal.c.household_key).where(signal.c.signal_ref.in_(signal_refs))
    )
    return set(rows.scalars())


async def purge_expired(
    session: AsyncSession, retention_days: int, now: datetime | None = None
) -> int:
    """Remove personal data of signals whose case closed more than ``retention_days`` ago.
    A household's key is shredded once none of its records is left."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    expired = sa.select(signal.c.signal_ref).where(signal.c.case_closed_at < cutoff)
    result = await session.execute(
        sa.delete(personal_record).where(personal_record.c.signal_ref.in_(expired))
    )
    await session.execute(
        sa.delete(household_key).where(
            ~sa.exists().where(personal_record.c.household_key == household_key.c.household_key)
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
