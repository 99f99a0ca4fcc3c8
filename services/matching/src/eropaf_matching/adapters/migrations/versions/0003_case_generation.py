"""cases held in memory: the case tables' generation

Matching holds every case in memory as well (``adapters.case_cache``) instead of reading a
batch's cases back from the tables. Every statement that writes ``match_case``,
``case_signal`` or ``case_contact_attempt`` gives ``match_case_generation`` a new random
value (a trigger, so any writer does, a manual fix included); a service compares it with
the value its copy was made at, under the matching lock, and reloads when another writer
was there.

Revision ID: matching_0003
Revises: matching_0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0003"
down_revision = "matching_0002"
branch_labels = None
depends_on = None

_TABLES = ("match_case", "case_signal", "case_contact_attempt")


def upgrade() -> None:
    op.create_table(
        "match_case_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Uuid, nullable=False),
        sa.CheckConstraint("id = 1", name="match_case_generation_single_row"),
    )
    op.execute("INSERT INTO match_case_generation (id, generation) VALUES (1, gen_random_uuid())")
    op.execute(
        """
        CREATE FUNCTION match_case_generation_bump() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE match_case_generation SET generation = gen_random_uuid();
            RETURN NULL;
        END $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION match_case_generation_bump()
            """
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION match_case_generation_bump()")
    op.drop_table("match_case_generation")
