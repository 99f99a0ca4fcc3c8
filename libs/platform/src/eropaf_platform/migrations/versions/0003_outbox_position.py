"""outbox: insert-only rows and one relay position instead of a published_at per row

Marking every row published cost a non-HOT UPDATE per message, and finding the unpublished
rows walked every published (and dead) row before them. Each row now records the
transaction that wrote it (``tx``); the relay publishes in (tx, seq) order up to the oldest
transaction still running, and keeps how far it got in ``outbox_position``.

Revision ID: platform_0003
Revises: platform_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0003"
down_revision = "platform_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows all get this migration's transaction id; their order stays that of seq.
    op.execute(
        "ALTER TABLE outbox_message ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.execute(
        "CREATE TABLE outbox_position ("
        " name text PRIMARY KEY, tx xid8 NOT NULL, seq bigint NOT NULL)"
    )
    # Carry on before the first row not yet published (a row published after it is sent
    # again: consumers deduplicate on the event id); with none, after the last row.
    op.execute(
        """
        INSERT INTO outbox_position (name, tx, seq)
        SELECT 'relay', pg_current_xact_id(), COALESCE(
            (SELECT min(seq) - 1 FROM outbox_message WHERE published_at IS NULL),
            (SELECT max(seq) FROM outbox_message),
            0)
        """
    )
    op.drop_index("ix_outbox_unpublished", table_name="outbox_message")
    op.drop_column("outbox_message", "published_at")
    op.create_index("ix_outbox_position", "outbox_message", ["tx", "seq"])


def downgrade() -> None:
    op.add_column(
        "outbox_message", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        """
        UPDATE outbox_message m SET published_at = now()
        FROM outbox_position p WHERE p.name = 'relay' AND (m.tx, m.seq) <= (p.tx, p.seq)
        """
    )
    op.drop_index("ix_outbox_position", table_name="outbox_message")
    op.drop_column("outbox_message", "tx")
    op.drop_table("outbox_position")
    op.create_index(
        "ix_outbox_unpublished",
        "outbox_message",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
