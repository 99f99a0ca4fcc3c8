"""outbox: headers as json, not jsonb

The headers are written once and read back whole by the relay, never queried inside: jsonb
only cost a conversion on every row written (measured: about a quarter of the outbox
INSERT, the most frequent statement of every service). The change rewrites the outbox
table once, under a lock that holds the service's writes for that time; the outbox keeps
only its retention period of rows.

Revision ID: platform_0004
Revises: platform_0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "platform_0004"
down_revision = "platform_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox_message ALTER COLUMN headers TYPE json USING headers::json")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox_message ALTER COLUMN headers TYPE jsonb USING headers::jsonb")
