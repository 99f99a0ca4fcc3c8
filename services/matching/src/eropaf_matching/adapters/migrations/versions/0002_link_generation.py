"""linking state held in memory: match_token dropped, match_signal's generation kept

Matching holds the whole linking state (``match_signal``) in memory and searches clusters
there, so the token table is no longer read. Every statement that writes ``match_signal``
gives ``match_link_generation`` a new random value (a trigger, so any writer does, a manual
fix included); a service compares it with the value its copy was made at, under the
matching lock, and reloads when another writer was there.

Revision ID: matching_0002
Revises: matching_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0002"
down_revision = "matching_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("match_token")
    op.create_table(
        "match_link_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Uuid, nullable=False),
        sa.CheckConstraint("id = 1", name="match_link_generation_single_row"),
    )
    op.execute("INSERT INTO match_link_generation (id, generation) VALUES (1, gen_random_uuid())")
    op.execute(
        """
        CREATE FUNCTION match_link_generation_bump() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE match_link_generation SET generation = gen_random_uuid();
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER match_signal_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON match_signal
        FOR EACH STATEMENT EXECUTE FUNCTION match_link_generation_bump()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER match_signal_changed ON match_signal")
    op.execute("DROP FUNCTION match_link_generation_bump()")
    op.drop_table("match_link_generation")
    op.create_table(
        "match_token",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column("signal_ref", sa.Text, primary_key=True, index=True),
    )
    # The rows the earlier code kept: one per token of each signal.
    op.execute(
        """
        INSERT INTO match_token (kind, value, signal_ref)
        SELECT t.key, t.value, m.signal_ref
        FROM match_signal m CROSS JOIN LATERAL jsonb_each_text(m.tokens) AS t
        """
    )
