"""matching tables

Revision ID: matching_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "matching_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "match_signal",
        sa.Column("signal_ref", sa.Text, primary_key=True),
        sa.Column("datum", sa.Date, nullable=False),
        sa.Column("tokens", postgresql.JSONB, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("household_id", sa.Text, nullable=False, index=True),
    )
    op.create_table(
        "match_token",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column("signal_ref", sa.Text, primary_key=True, index=True),
    )
    op.create_table(
        "match_case",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False, index=True),
        sa.Column("gemeentecode", sa.Text, nullable=False, index=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("opgepakt_on", sa.Date),
        sa.Column("outreach_planned_on", sa.Date),
        sa.Column("resultaat", sa.Text),
        sa.Column("closed_on", sa.Date),
        sa.Column("decision", postgresql.JSONB),
        sa.Column("routing", postgresql.JSONB),
        sa.Column("herhaalde_meldingen", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "case_signal",
        sa.Column("signal_ref", sa.Text, primary_key=True),
        sa.Column(
            "case_id",
            sa.Text,
            sa.ForeignKey("match_case.case_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("facts", postgresql.JSONB, nullable=False),
        sa.Column("resolved_on", sa.Date),
    )
    op.create_table(
        "case_contact_attempt",
        sa.Column(
            "case_id",
            sa.Text,
            sa.ForeignKey("match_case.case_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("soort", sa.Text, nullable=False),
        sa.Column("bereikt", sa.Boolean, nullable=False),
        sa.Column("datum", sa.Date, nullable=False),
        sa.Column("dagdeel", sa.Text),
    )
    op.create_table(
        "case_alias",
        sa.Column("old_case_id", sa.Text, primary_key=True),
        sa.Column("case_id", sa.Text, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in (
        "case_alias",
        "case_contact_attempt",
        "case_signal",
        "match_case",
        "match_token",
        "match_signal",
    ):
        op.drop_table(table)
