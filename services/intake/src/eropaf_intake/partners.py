"""Partner administration: registry, keys, tokens. Used by the CLI and by tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eropaf_contracts.ddas import Signaalpartner
from eropaf_contracts.topics import feedback_topic, signals_topic, validate_partner_code
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.tables import partner, partner_key
from eropaf_intake.http_api import token_hash


class PartnerAdminError(ValueError):
    """An administrative request that cannot be carried out (message says why)."""


@dataclass(frozen=True)
class OnboardedPartner:
    code: str
    kid: str
    token: str  # shown once; only its hash is stored
    private_key_pem: bytes | None  # when the key pair was generated here
    topics: tuple[str, str]


def partner_topics(code: str) -> tuple[str, str]:
    return signals_topic(code), feedback_topic(code)


def _kid_for(public_key: jws.Ed25519PublicKey) -> str:
    return jws.jwk_thumbprint(public_key)


async def onboard(
    session: AsyncSession,
    code: str,
    name: str,
    types: list[str],
    *,
    public_key_pem: bytes | None = None,
) -> OnboardedPartner:
    code = validate_partner_code(code)
    valid_types = {t.value for t in Signaalpartner}
    unknown = [t for t in types if t not in valid_types]
    if not types or unknown:
        raise PartnerAdminError(
            f"unknown partner types {unknown}; choose from {sorted(valid_types)}"
        )
    if await session.scalar(sa.select(partner.c.code).where(partner.c.code == code)):
        raise PartnerAdminError(f"partner {code!r} is already registered")
    private_pem: bytes | None = None
    if public_key_pem is None:
        private, public = jws.generate_key_pair()
        private_pem = jws.private_key_to_pem(private)
    else:
        public = jws.public_key_from_pem(public_key_pem)
    token = secrets.token_urlsafe(32)
    await session.execute(
        sa.insert(partner).values(
            code=code, name=name, types=list(types), token_hash=token_hash(token)
        )
    )
    kid = await _insert_key(session, code, public)
    return OnboardedPartner(code, kid, token, private_pem, partner_topics(code))


async def _insert_key(session: AsyncSession, code: str, public: jws.Ed25519PublicKey) -> str:
    kid = _kid_for(public)
    if await session.scalar(sa.select(partner_key.c.kid).where(partner_key.c.kid == kid)):
        raise PartnerAdminError(f"key {kid} is already registered")
    await session.execute(
        sa.insert(partner_key).values(
            kid=kid, partner_code=code, public_key_pem=jws.public_key_to_pem(public).decode()
        )
    )
    return kid


async def _require(session: AsyncSession, code: str) -> None:
    if not await session.scalar(sa.select(partner.c.code).where(partner.c.code == code)):
        raise PartnerAdminError(f"partner {code!r} is not registered")


async def add_key(
    session: AsyncSession, code: str, public_key_pem: bytes | None = None
) -> tuple[str, bytes | None]:
    """A further key; old and new are both valid until the old one is revoked (rotation)."""
    await _require(session, code)
    private_pem: bytes | None = None
    if public_key_pem is None:
        private, public = jws.generate_key_pair()
        private_pem = jws.private_key_to_pem(private)
    else:
        public = jws.public_key_from_pem(public_key_pem)
    return await _insert_key(session, code, public), private_pem


async def revoke_key(session: AsyncSession, code: str, kid: str) -> None:
    result = await session.execute(
        sa.update(partner_key)
        .where(
            partner_key.c.kid == kid,
            partner_key.c.partner_code == code,
            partner_key.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise PartnerAdminError(f"partner {code!r} has no active key {kid!r}")


async def set_disabled(session: AsyncSession, code: str, disabled: bool = True) -> None:
    await _require(session, code)
    await session.execute(
        sa.update(partner).where(partner.c.code == code).values(disabled=disabled)
    )


async def new_token(session: AsyncSession, code: str) -> str:
    """Replace the partner's HTTP token; the old one stops working at once."""
    await _require(session, code)
    token = secrets.token_urlsafe(32)
    await session.execute(
        sa.update(partner).where(partner.c.code == code).values(token_hash=token_hash(token))
    )
    return token


@dataclass(frozen=True)
class PartnerSummary:
    code: str
    name: str
    types: list[str]
    disabled: bool
    active_keys: list[str]
    revoked_keys: list[str]


async def list_partners(session: AsyncSession) -> list[PartnerSummary]:
    keys = (await session.execute(sa.select(partner_key))).all()
    result = []
    for row in (await session.execute(sa.select(partner).order_by(partner.c.code))).all():
        mine = [k for k in keys if k.partner_code == row.code]
        result.append(
            PartnerSummary(
                code=row.code,
                name=row.name,
                types=list(row.types),
                disabled=row.disabled,
                active_keys=[k.kid for k in mine if k.revoked_at is None],
                revoked_keys=[k.kid for k in mine if k.revoked_at is not None],
            )
        )
    return result
