"""scheduling tables

Revision ID: scheduling_0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "scheduling_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
TEXTS = postgresql.ARRAY(sa.Text)


def upgrade() -> None:
    op.create_table(
        "sched_staff",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("naam", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("organisatie", sa.Text, nullable=False),
        sa.Column("rol", sa.Text, nullable=False),
        sa.Column("gemeenten", TEXTS, nullable=False),
        sa.Column("beschikbaar", sa.Text, nullable=False),
        sa.Column("max_per_dag", sa.Integer, nullable=False),
        sa.Column("max_per_week", sa.Integer, nullable=False),
        sa.Column("taal", sa.Text, nullable=False),
        sa.Column("bericht", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("token_hash", sa.Text, index=True),
    )
    op.create_table(
        "sched_absence",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("first", sa.Date, primary_key=True),
        sa.Column("last", sa.Date, primary_key=True),
    )
    op.create_table(
        "sched_case",
        sa.Column("case_ref", sa.Text, primary_key=True),
        sa.Column("gemeentecode", sa.Text, nullable=False, index=True),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("postcode_area", sa.Text, nullable=False),
        sa.Column("outreach", sa.Text, nullable=False),
        sa.Column("urgency", sa.Text, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("partner_codes", TEXTS, nullable=False),
        sa.Column("state", sa.Text, nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("not_before", sa.Date),
        sa.Column("avoid_parts", TEXTS, nullable=False),
        sa.Column("resultaat", sa.Text),
        sa.Column("outreach_planned", sa.Boolean, nullable=False),
    )
    op.create_table(
        "sched_case_alias",
        sa.Column("old_ref", sa.Text, primary_key=True),
        sa.Column("case_ref", sa.Text, nullable=False, index=True),
    )
    op.create_table(
        "sched_visit",
        sa.Column("visit_id", sa.Text, primary_key=True),
        sa.Column("case_ref", sa.Text, nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("datum", sa.Date, nullable=False, index=True),
        sa.Column("part", sa.Text, nullable=False),
        sa.Column("window", sa.Integer, nullable=False),
        sa.Column("staff", TEXTS, nullable=False),
        sa.Column("status", sa.Text, nullable=False, index=True),
        sa.Column("sequence", sa.Integer, nullable=False),
    )
    op.create_table(
        "sched_contact_attempt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_ref", sa.Text, nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("contactsoort", sa.Text, nullable=False),
        sa.Column("datum", sa.Date, nullable=False),
        sa.Column("dagdeel", sa.Text),
        sa.Column("bereikt", sa.Boolean, nullable=False),
        sa.Column("eindresultaat", sa.Text),
        sa.Column("visit_id", sa.Text),
        sa.Column("recorded_by", sa.Text),
    )
    op.create_table(
        "sched_backlog",
        sa.Column("case_ref", sa.Text, primary_key=True),
        sa.Column("gemeentecode", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "sched_replan",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("planned", sa.Integer, nullable=False),
        sa.Column("requested_at", TS),
    )
    op.execute("INSERT INTO sched_replan (id, requested, planned) VALUES (1, 0, 0)")


def downgrade() -> None:
    for table in (
        "sched_replan",
        "sched_backlog",
        "sched_contact_attempt",
        "sched_visit",
        "sched_case_alias",
        "sched_case",
        "sched_absence",
        "sched_staff",
    ):
        op.drop_table(table)
