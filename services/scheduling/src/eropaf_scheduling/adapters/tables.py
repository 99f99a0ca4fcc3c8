"""Scheduling's tables (created by its Alembic migrations, never by create_all).

Staff data (codes, names, e-mail addresses, token hashes) and pseudonymous case data only.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel

TS = sa.DateTime(timezone=True)


class StaffRow(SQLModel, table=True):
    __tablename__ = "sched_staff"
    code: str = Field(primary_key=True)
    naam: str
    email: str
    organisatie: str
    rol: str
    gemeenten: list[str] = Field(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))
    beschikbaar: str
    max_per_dag: int
    max_per_week: int
    taal: str
    bericht: str
    active: bool = True
    token_hash: str | None = Field(default=None, index=True)


class AbsenceRow(SQLModel, table=True):
    __tablename__ = "sched_absence"
    code: str = Field(primary_key=True)
    first: date = Field(primary_key=True)
    last: date = Field(primary_key=True)


class CaseRow(SQLModel, table=True):
    __tablename__ = "sched_case"
    case_ref: str = Field(primary_key=True)
    gemeentecode: str = Field(index=True)
    team: str
    postcode_area: str
    outreach: str
    urgency: str
    deadline: date
    priority: int
    partner_codes: list[str] = Field(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))
    state: str = Field(index=True)
    attempt: int
    not_before: date | None = None
    avoid_parts: list[str] = Field(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))
    resultaat: str | None = None
    outreach_planned: bool = False


class CaseAliasRow(SQLModel, table=True):
    __tablename__ = "sched_case_alias"
    old_ref: str = Field(primary_key=True)
    case_ref: str = Field(index=True)


class VisitRow(SQLModel, table=True):
    __tablename__ = "sched_visit"
    visit_id: str = Field(primary_key=True)
    case_ref: str = Field(index=True)
    attempt: int
    datum: date = Field(index=True)
    part: str
    window: int
    staff: list[str] = Field(sa_column=Column(postgresql.ARRAY(sa.Text), nullable=False))
    status: str = Field(index=True)
    sequence: int


class AttemptRow(SQLModel, table=True):
    __tablename__ = "sched_contact_attempt"
    id: int | None = Field(default=None, primary_key=True)
    case_ref: str = Field(index=True)
    attempt: int
    contactsoort: str
    datum: date
    dagdeel: str | None = None
    bereikt: bool
    eindresultaat: str | None = None
    visit_id: str | None = None
    recorded_by: str | None = None


class BacklogRow(SQLModel, table=True):
    __tablename__ = "sched_backlog"
    case_ref: str = Field(primary_key=True)
    gemeentecode: str
    team: str
    deadline: date
    attempt: int
    reason: str


class ReplanRow(SQLModel, table=True):
    """One row: the change counter (raised by every change that needs a replan) and the
    counter the current plan was made for; they differ while a replan is due."""

    __tablename__ = "sched_replan"
    id: int = Field(primary_key=True)
    requested: int = 0
    planned: int = 0
    requested_at: datetime | None = Field(default=None, sa_column=Column(TS))
    # the first change since the last plan: a replan waits at most a maximum delay after it
    pending_since: datetime | None = Field(default=None, sa_column=Column(TS))
    planned_at: datetime | None = Field(default=None, sa_column=Column(TS))  # the last plan
