"""outbox: no index on published_at

Every row is inserted and then marked published; the index made both writes dearer for the
sake of the hourly retention purge, which can afford a scan.

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "platform_0002"
down_revision = "platform_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_published_at", table_name="outbox_message")


def downgrade() -> None:
    op.create_index("ix_outbox_published_at", "outbox_message", ["published_at"])
