"""Intake's repositories: the signal register, the partner directory and the encrypted
personal data, each behind an abstract class the service layer's fakes implement too.

Intake is on the hot path: a batch costs one statement per table whatever its size
(``eropaf_platform.bulk``), never one per signal. Repositories stage what the service layer
adds and write it when the unit of work commits.
"""

from __future__ import annotations

import abc
import base64
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.signals import PartnerSignal
from eropaf_intake.adapters import crypto, jws
from eropaf_intake.adapters.personal_data import read_personal_data
from eropaf_intake.adapters.tables import (
    household_key,
    partner,
    partner_key,
    personal_record,
    signal,
)
from eropaf_intake.domain.admission import PartnerDirectory, PartnerKey
from eropaf_intake.domain.signals import StoredSignal, personal_fields
from eropaf_intake.domain.validation import PartnerPolicy
from eropaf_platform import bulk

__all__ = [
    "PartnerRepository",
    "PersonalDataRepository",
    "SignalRepository",
    "SqlPartnerRepository",
    "SqlPersonalDataRepository",
    "SqlSignalRepository",
    "load_wrapped_keys",
]

# One statement per table and batch. case_closed_at is never written here: a new signal has
# none, and an existing one keeps its own (it is not among the updated columns).
_SIGNAL_COLUMNS = (
    "signal_ref",
    "partner_code",
    "signal_id",
    "fingerprint",
    "signaaldatum",
    "revision",
    "household_key",
    "accepted_at",
    "resolved_on",
)
_UPSERT_SIGNAL = bulk.json_insert(
    signal,
    _SIGNAL_COLUMNS,
    conflict=["signal_ref"],
    update=(
        "fingerprint",
        "signaaldatum",
        "revision",
        "household_key",
        "accepted_at",
        "resolved_on",
    ),
)
_PERSONAL_COLUMNS = ("signal_ref", "household_key", "ciphertext", "updated_at")
_UPSERT_PERSONAL = bulk.json_insert(
    personal_record,
    _PERSONAL_COLUMNS,
    conflict=["signal_ref"],
    update=("household_key", "ciphertext", "updated_at"),
)
_HOUSEHOLD_KEY_COLUMNS = ("household_key", "wrapped_key")
_INSERT_HOUSEHOLD_KEY = bulk.json_insert(household_key, _HOUSEHOLD_KEY_COLUMNS, conflict=[])


# --- signals -------------------------------------------------------------------------------


class SignalRepository(abc.ABC):
    """The register of accepted signals, by signal ref."""

    def __init__(self) -> None:
        self._staged: dict[str, StoredSignal] = {}

    @abc.abstractmethod
    async def get(self, refs: Iterable[str]) -> dict[str, StoredSignal]:
        """The stored signals among ``refs`` (one lookup for them all)."""

    def add(self, stored: StoredSignal) -> None:
        """Stage a new or changed signal; the last one staged per ref is saved at commit."""
        self._staged[stored.signal_ref] = stored

    async def save(self) -> None:
        staged, self._staged = self._staged, {}
        if staged:
            await self._save(list(staged.values()))

    @abc.abstractmethod
    async def _save(self, signals: list[StoredSignal]) -> None: ...

    @abc.abstractmethod
    async def close_cases(self, refs: Iterable[str], closed_at: datetime) -> None:
        """Remember when the case of these signals closed (retention runs from there)."""


class SqlSignalRepository(SignalRepository):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session

    async def get(self, refs: Iterable[str]) -> dict[str, StoredSignal]:
        wanted = set(refs)
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(*(signal.c[name] for name in _SIGNAL_COLUMNS)).where(
                bulk.any_of(signal.c.signal_ref, wanted)
            )
        )
        return {row.signal_ref: StoredSignal(*row) for row in rows}

    async def _save(self, signals: list[StoredSignal]) -> None:
        # One statement for the batch. orjson writes the dataclasses as JSON objects itself
        # (dates in ISO 8601), as bulk.rows_json would write dicts of them.
        await self.session.execute(_UPSERT_SIGNAL, {"rows": orjson.dumps(signals).decode()})

    async def close_cases(self, refs: Iterable[str], closed_at: datetime) -> None:
        await self.session.execute(
            sa.update(signal)
            .where(bulk.any_of(signal.c.signal_ref, refs))
            .values(case_closed_at=closed_at)
        )


# --- partners ------------------------------------------------------------------------------


class PartnerRepository(abc.ABC):
    @abc.abstractmethod
    async def directory(self) -> PartnerDirectory:
        """Partners, their keys (ready to verify with) and token hashes, as stored now."""


class SqlPartnerRepository(PartnerRepository):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def directory(self) -> PartnerDirectory:
        partners: dict[str, PartnerPolicy] = {}
        tokens: dict[str, str] = {}
        for row in (await self.session.execute(sa.select(partner))).all():
            partners[row.code] = PartnerPolicy(
                code=row.code,
                # As the enum: validation names the allowed types in its rejection message.
                types=frozenset(Signaalpartner(t) for t in row.types),
                disabled=row.disabled,
            )
            if row.token_hash:
                tokens[row.code] = row.token_hash
        keys: dict[str, PartnerKey] = {}
        for row in (await self.session.execute(sa.select(partner_key))).all():
            keys[row.kid] = PartnerKey(
                kid=row.kid,
                partner_code=row.partner_code,
                # libsodium's form: converted once per batch, used per message.
                public_key=jws.verify_key(jws.public_key_from_pem(row.public_key_pem.encode())),
                revoked=row.revoked_at is not None,
            )
        return PartnerDirectory(partners, keys, tokens, jws.DetachedSignatures())


# --- personal data -------------------------------------------------------------------------


class PersonalDataRepository(abc.ABC):
    """Personal data of signals, encrypted at rest under its household's data key."""

    def __init__(self) -> None:
        self._staged: dict[str, tuple[str, PartnerSignal, datetime]] = {}

    def add(
        self, signal_ref: str, household: str, signal: PartnerSignal, updated_at: datetime
    ) -> None:
        """Stage the personal data of a signal (:func:`personal_fields` of it, taken when it
        is saved: not kept through the batch); the last staged per ref is saved at commit."""
        self._staged[signal_ref] = (household, signal, updated_at)

    async def save(self) -> None:
        staged, self._staged = self._staged, {}
        if staged:
            await self._save(staged)

    @abc.abstractmethod
    async def _save(self, staged: dict[str, tuple[str, PartnerSignal, datetime]]) -> None: ...

    @abc.abstractmethod
    async def read(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]:
        """Decrypted personal fields per signal ref (shredded ones are absent); the read is
        recorded in the audit trail in the same transaction."""


class SqlPersonalDataRepository(PersonalDataRepository):
    def __init__(self, session: AsyncSession, keyring: crypto.Keyring | None) -> None:
        super().__init__()
        self.session = session
        self._keyring = keyring

    @property
    def keyring(self) -> crypto.Keyring:
        if self._keyring is None:
            raise RuntimeError("personal data is written only with the master keyring")
        return self._keyring

    async def _save(self, staged: dict[str, tuple[str, PartnerSignal, datetime]]) -> None:
        data_keys = await self._data_keys({h for h, _, _ in staged.values()})
        rows = []
        for ref, (household, sig, updated_at) in staged.items():
            plaintext = orjson.dumps(personal_fields(sig), option=orjson.OPT_SORT_KEYS)
            rows.append(
                {
                    "signal_ref": ref,
                    "household_key": household,
                    "ciphertext": crypto.encrypt(
                        data_keys[household], plaintext, crypto.record_aad(household, ref)
                    ),
                    "updated_at": updated_at,
                }
            )
        await self.session.execute(_UPSERT_PERSONAL, {"rows": bulk.rows_json(rows)})

    async def read(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]:
        return await read_personal_data(
            self.session, self.keyring, signal_refs, accessor=accessor, purpose=purpose
        )

    async def _data_keys(self, households: set[str]) -> dict[str, bytes]:
        """The data key of each household, creating the missing ones."""
        existing = await load_wrapped_keys(self.session, households)
        missing = households - set(existing)
        if missing:
            new_rows = [
                {
                    "household_key": h,
                    "wrapped_key": base64.b64encode(
                        crypto.wrap(crypto.new_data_key(), self.keyring.current, h.encode())
                    ).decode(),
                }
                for h in sorted(missing)
            ]
            await self.session.execute(_INSERT_HOUSEHOLD_KEY, {"rows": bulk.rows_json(new_rows)})
            existing = await load_wrapped_keys(self.session, households)
        return {
            h: crypto.unwrap(base64.b64decode(w), self.keyring, h.encode())
            for h, w in existing.items()
        }


async def load_wrapped_keys(session: AsyncSession, households: set[str]) -> dict[str, str]:
    rows = await session.execute(
        sa.select(household_key.c.household_key, household_key.c.wrapped_key).where(
            bulk.any_of(household_key.c.household_key, households)
        )
    )
    return {h: w for h, w in rows.all()}
