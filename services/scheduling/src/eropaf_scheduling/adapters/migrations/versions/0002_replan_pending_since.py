"""replan: the time of the first change since the last plan, and of the last plan

Revision ID: scheduling_0002
Revises: scheduling_0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "scheduling_0002"
down_revision = "scheduling_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sched_replan", sa.Column("pending_since", sa.DateTime(timezone=True)))
    op.add_column("sched_replan", sa.Column("planned_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("sched_replan", "planned_at")
    op.drop_column("sched_replan", "pending_since")
