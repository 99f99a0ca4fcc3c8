"""Matching's tables (created by its Alembic migrations, never by create_all).

Pseudonymous only: signal refs, keyed match tokens, derived person/household/case ids,
municipality, PC4 area, amounts, dates and flags.

* ``match_signal``: the linking state (``domain.linking`` module docstring), which the service
  holds in memory and searches there; ``match_link_generation`` changes with every statement
  that writes it (a trigger), so a copy made at another generation is known to be stale.
* ``match_case`` + ``case_signal`` + ``case_contact_attempt``: one row per case and child
  rows for its signals and contact attempts (``domain.cases.Case`` maps one to one), held in
  memory as well; ``match_case_generation`` changes with every statement that writes them.
* ``case_alias``: case ids change when cases merge or an earlier signal joins; scheduling may
  still report on an old id, so old ids point to the current one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel


class MatchSignalRow(SQLModel, table=True):
    __tablename__ = "match_signal"
    signal_ref: str = Field(primary_key=True)
    datum: date  # business date: part of the canonical signal order
    tokens: dict[str, str] = Field(sa_column=Column(postgresql.JSONB, nullable=False))
    person_id: str
    household_id: str = Field(index=True)


class MatchLinkGenerationRow(SQLModel, table=True):
    __tablename__ = "match_link_generation"
    id: int = Field(primary_key=True)  # one row: id 1
    generation: uuid.UUID


class MatchCaseGenerationRow(SQLModel, table=True):
    __tablename__ = "match_case_generation"
    id: int = Field(primary_key=True)  # one row: id 1
    generation: uuid.UUID


class MatchCaseRow(SQLModel, table=True):
    __tablename__ = "match_case"
    case_id: str = Field(primary_key=True)
    household_id: str = Field(index=True)
    gemeentecode: str = Field(index=True)  # routed municipality: export and monitoring filter
    state: str
    opened_on: date
    opgepakt_on: date | None = None
    outreach_planned_on: date | None = None
    resultaat: str | None = None
    closed_on: date | None = None
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(postgresql.JSONB))
    routing: dict[str, Any] | None = Field(default=None, sa_column=Column(postgresql.JSONB))
    herhaalde_meldingen: list[str] = Field(
        sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False)
    )
    updated_at: datetime = Field(
        sa_column=Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())
    )


class CaseSignalRow(SQLModel, table=True):
    __tablename__ = "case_signal"
    # A signal is in exactly one case (a later revision of a closed case's signal stays there).
    signal_ref: str = Field(primary_key=True)
    case_id: str = Field(
        sa_column=Column(
            sa.Text, sa.ForeignKey("match_case.case_id", ondelete="CASCADE"), index=True
        )
    )
    facts: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB, nullable=False))
    resolved_on: date | None = None


class CaseContactAttemptRow(SQLModel, table=True):
    __tablename__ = "case_contact_attempt"
    case_id: str = Field(
        sa_column=Column(
            sa.Text,
            sa.ForeignKey("match_case.case_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    seq: int = Field(primary_key=True)  # position in the case's (sorted) attempts
    soort: str
    bereikt: bool
    datum: date
    dagdeel: str | None = None


class CaseAliasRow(SQLModel, table=True):
    __tablename__ = "case_alias"
    old_case_id: str = Field(primary_key=True)
    case_id: str = Field(index=True)


match_signal: sa.Table = MatchSignalRow.__table__  # type: ignore[attr-defined]
match_link_generation: sa.Table = MatchLinkGenerationRow.__table__  # type: ignore[attr-defined]
match_case_generation: sa.Table = MatchCaseGenerationRow.__table__  # type: ignore[attr-defined]
match_case: sa.Table = MatchCaseRow.__table__  # type: ignore[attr-defined]
case_signal: sa.Table = CaseSignalRow.__table__  # type: ignore[attr-defined]
case_contact_attempt: sa.Table = CaseContactAttemptRow.__table__  # type: ignore[attr-defined]
case_alias: sa.Table = CaseAliasRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
