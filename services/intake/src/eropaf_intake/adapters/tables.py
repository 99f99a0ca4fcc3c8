"""Intake's tables. Personal data lives only in ``personal_record``, encrypted per household."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel


class PartnerRow(SQLModel, table=True):
    __tablename__ = "partner"
    code: str = Field(primary_key=True)
    name: str
    types: list[str] = Field(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))
    disabled: bool = False
    token_hash: str | None = None  # sha256 of the HTTP token; the token itself is never stored
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class PartnerKeyRow(SQLModel, table=True):
    __tablename__ = "partner_key"
    kid: str = Field(primary_key=True)
    partner_code: str = Field(foreign_key="partner.code", index=True)
    public_key_pem: str
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    revoked_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True)))


class SignalRow(SQLModel, table=True):
    """What intake remembers of each accepted signal (no personal data)."""

    __tablename__ = "signal"
    __table_args__ = (sa.UniqueConstraint("partner_code", "signal_id"),)
    signal_ref: str = Field(primary_key=True)
    partner_code: str
    signal_id: str
    fingerprint: str
    signaaldatum: date | None = None
    revision: int = 1
    household_key: str = Field(index=True)
    accepted_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    resolved_on: date | None = None
    case_closed_at: datetime | None = Field(
        default=None, sa_column=Column(sa.DateTime(timezone=True))
    )


class HouseholdKeyRow(SQLModel, table=True):
    """One data key per household, wrapped by the master key. Deleting it shreds the data."""

    __tablename__ = "household_key"
    household_key: str = Field(primary_key=True)
    wrapped_key: str
    created_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


class PersonalRecordRow(SQLModel, table=True):
    __tablename__ = "personal_record"
    signal_ref: str = Field(primary_key=True, foreign_key="signal.signal_ref")
    household_key: str = Field(index=True)
    ciphertext: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    updated_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))


class PersonalDataAccessRow(SQLModel, table=True):
    """Audit trail: every read of personal data, who, what, when, why."""

    __tablename__ = "personal_data_access"
    id: int | None = Field(default=None, primary_key=True)
    accessor: str
    purpose: str
    signal_ref: str | None = Field(default=None, index=True)
    fields: str
    accessed_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )


partner = PartnerRow.__table__  # type: ignore[attr-defined]
partner_key = PartnerKeyRow.__table__  # type: ignore[attr-defined]
signal = SignalRow.__table__  # type: ignore[attr-defined]
household_key = HouseholdKeyRow.__table__  # type: ignore[attr-defined]
personal_record = PersonalRecordRow.__table__  # type: ignore[attr-defined]
personal_data_access = PersonalDataAccessRow.__table__  # type: ignore[attr-defined]
