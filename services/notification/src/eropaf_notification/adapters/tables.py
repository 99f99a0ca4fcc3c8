"""The notification service's tables (created by its Alembic migrations, never by create_all).

* ``notification_staff``: the roster as ``StaffChanged`` told it (staff data, not household
  data: names and addresses of staff may be kept here);
* ``notification_visit``: its own copy of the visits (for reminders and digests; the service
  never reads scheduling's database);
* ``notification_intent``: one row per message owed (fact, recipient, version, channel), its
  delivery status and schedule; written in the transaction that consumed the fact;
* ``notification_attempt``: every delivery attempt and its outcome.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["attempt", "intent", "metadata", "staff", "visit"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

staff = sa.Table(
    "notification_staff",
    metadata,
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

visit = sa.Table(
    "notification_visit",
    metadata,
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
    sa.Index("ix_notification_visit_datum", "datum"),
)

intent = sa.Table(
    "notification_intent",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("fact", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("case_ref", sa.Text),
    sa.Column("facts", postgresql.JSONB, nullable=False),
    # pending (due at next_attempt_at) | held (for the digest) | sent | failed | skipped |
    # digested (told in the digest named by digest_id)
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("next_attempt_at", TS, nullable=False),
    # A delivery loop holds a row it claimed until then; a crashed one's claim runs out.
    sa.Column("lease_until", TS),
    sa.Column("finished_at", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("digest_id", sa.Text),
    sa.Index(
        "ix_notification_intent_due",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_notification_intent_held",
        "recipient",
        postgresql_where=sa.text("status = 'held'"),
    ),
    # The latest decision told about a case (a changed one is told again, as a new version).
    sa.Index(
        "ix_notification_intent_case_opened",
        "fact",
        "version",
        postgresql_where=sa.text("kind = 'case_opened'"),
    ),
)

attempt = sa.Table(
    "notification_attempt",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("notification_id", sa.Text, nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),  # sent | retry | failed | skipped
    sa.Column("detail", sa.Text),
)
