"""intake tables

Revision ID: intake_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "intake_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("types", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_hash", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "partner_key",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("partner_code", sa.Text, sa.ForeignKey("partner.code"), nullable=False, index=True),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", TS),
    )
    op.create_table(
        "signal",
        sa.Column("signal_ref", sa.Text, primary_key=True),
        sa.Column("partner_code", sa.Text, nullable=False),
        sa.Column("signal_id", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("signaaldatum", sa.Date),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("household_key", sa.Text, nullable=False, index=True),
        sa.Column("accepted_at", TS, nullable=False),
        sa.Column("resolved_on", sa.Date),
        sa.Column("case_closed_at", TS),
        sa.UniqueConstraint("partner_code", "signal_id"),
    )
    op.create_table(
        "household_key",
        sa.Column("household_key", sa.Text, primary_key=True),
        sa.Column("wrapped_key", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "personal_record",
        sa.Column("signal_ref", sa.Text, sa.ForeignKey("signal.signal_ref"), primary_key=True),
        sa.Column("household_key", sa.Text, nullable=False, index=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("accessor", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("signal_ref", sa.Text, index=True),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("accessed_at", TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("personal_data_access", "personal_record", "household_key", "signal", "partner_key", "partner"):
        op.drop_table(table)
