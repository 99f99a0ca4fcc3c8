"""index of the case messages by fact (the latest decision told about a case)

Revision ID: notification_0002
Revises: notification_0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "notification_0002"
down_revision = "notification_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_notification_intent_case_opened",
        "notification_intent",
        ["fact", "version"],
        postgresql_where=sa.text("kind = 'case_opened'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notification_intent_case_opened", table_name="notification_intent")
