"""In-memory repositories and unit of work for intake's service-layer tests (no database).

They keep what the SQL ones keep and count what the SQL ones would send: the use cases
promise one lookup and one write per table for a whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.signals import PartnerSignal
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.repository import (
    PartnerRepository,
    PersonalDataRepository,
    SignalRepository,
)
from eropaf_intake.domain.admission import PartnerDirectory, PartnerKey
from eropaf_intake.domain.signals import StoredSignal, personal_fields
from eropaf_intake.domain.validation import PartnerPolicy
from eropaf_intake.service_layer.unit_of_work import AbstractIntakeUnitOfWork
from eropaf_platform.unit_of_work import FakeUnitOfWork


class FakeSignalRepository(SignalRepository):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StoredSignal] = {}
        self.case_closed_at: dict[str, datetime] = {}
        self.lookups = 0  # statements the SQL repository would send
        self.writes = 0

    async def get(self, refs: Iterable[str]) -> dict[str, StoredSignal]:
        self.lookups += 1
        return {r: self.rows[r] for r in refs if r in self.rows}

    async def _save(self, signals: list[StoredSignal]) -> None:
        self.writes += 1
        self.rows.update((s.signal_ref, s) for s in signals)

    async def close_cases(self, refs: Iterable[str], closed_at: datetime) -> None:
        self.writes += 1
        for ref in refs:
            if ref in self.rows:
                self.case_closed_at[ref] = closed_at


@dataclass
class FakePartner:
    code: str
    types: frozenset[Signaalpartner]
    disabled: bool = False
    token_hash: str | None = None
    keys: dict[str, tuple[jws.Ed25519PublicKey, bool]] = field(default_factory=dict)  # revoked


class FakePartnerRepository(PartnerRepository):
    def __init__(self) -> None:
        self.partners: dict[str, FakePartner] = {}
        self.loads = 0

    async def directory(self) -> PartnerDirectory:
        self.loads += 1
        keys = {
            kid: PartnerKey(kid, p.code, jws.verify_key(public), revoked)
            for p in self.partners.values()
            for kid, (public, revoked) in p.keys.items()
        }
        return PartnerDirectory(
            partners={
                p.code: PartnerPolicy(p.code, p.types, p.disabled) for p in self.partners.values()
            },
            keys=keys,
            token_hashes={p.code: p.token_hash for p in self.partners.values() if p.token_hash},
            signatures=jws.DetachedSignatures(),
        )

    def onboard(self, code: str, *types: Signaalpartner) -> tuple[jws.Ed25519PrivateKey, str]:
        """A partner with one key pair; its private key and kid."""
        self.partners[code] = FakePartner(code, frozenset(types))
        return self.add_key(code)

    def add_key(self, code: str) -> tuple[jws.Ed25519PrivateKey, str]:
        private, public = jws.generate_key_pair()
        kid = jws.jwk_thumbprint(public)
        self.partners[code].keys[kid] = (public, False)
        return private, kid

    def revoke(self, code: str, kid: str) -> None:
        public, _ = self.partners[code].keys[kid]
        self.partners[code].keys[kid] = (public, True)


@dataclass(frozen=True)
class PersonalRecord:
    household_key: str
    fields: dict[str, Any]  # in the clear here; the SQL repository encrypts them
    updated_at: datetime


class FakePersonalDataRepository(PersonalDataRepository):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, PersonalRecord] = {}
        self.writes = 0
        self.audit: list[tuple[str, str, str]] = []  # accessor, purpose, signal ref

    async def _save(self, staged: dict[str, tuple[str, PartnerSignal, datetime]]) -> None:
        self.writes += 1
        for ref, (household, signal, updated_at) in staged.items():
            self.records[ref] = PersonalRecord(household, personal_fields(signal), updated_at)

    async def read(
        self, signal_refs: list[str], *, accessor: str, purpose: str
    ) -> dict[str, dict[str, Any]]:
        self.audit.extend((accessor, purpose, ref) for ref in signal_refs)
        return {r: self.records[r].fields for r in signal_refs if r in self.records}


class FakeIntakeUnitOfWork(FakeUnitOfWork, AbstractIntakeUnitOfWork):
    """Repositories persist across units of work, as a database would; ``published`` holds
    every committed event and feedback in order."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: FakeSignalRepository = FakeSignalRepository()
        self.partners: FakePartnerRepository = FakePartnerRepository()
        self.personal_data: FakePersonalDataRepository = FakePersonalDataRepository()
