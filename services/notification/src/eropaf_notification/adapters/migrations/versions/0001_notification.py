"""notification tables

Revision ID: notification_0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "notification_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_staff",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("naam", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("organisatie", sa.Text, nullable=False),
        sa.Column("rol", sa.Text, nullable=False),
        sa.Column("gemeenten", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("taal", sa.Text, nullable=False),
        sa.Column("bericht", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_table(
        "notification_visit",
        sa.Column("visit_id", sa.Text, primary_key=True),
        sa.Column("case_ref", sa.Text, nullable=False),
        sa.Column("gemeentecode", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("datum", sa.Date, nullable=False),
        sa.Column("dagdeel", sa.Text, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("staff", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_index("ix_notification_visit_datum", "notification_visit", ["datum"])
    op.create_table(
        "notification_intent",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("fact", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("case_ref", sa.Text),
        sa.Column("facts", postgresql.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("finished_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("digest_id", sa.Text),
    )
    op.create_index(
        "ix_notification_intent_due",
        "notification_intent",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notification_intent_held",
        "notification_intent",
        ["recipient"],
        postgresql_where=sa.text("status = 'held'"),
    )
    op.create_table(
        "notification_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("notification_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index(
        "ix_notification_attempt_notification_id", "notification_attempt", ["notification_id"]
    )


def downgrade() -> None:
    op.drop_table("notification_attempt")
    op.drop_table("notification_intent")
    op.drop_table("notification_visit")
    op.drop_table("notification_staff")
