"""The platform's own tables (created by its Alembic migrations, never by create_all)."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

metadata = sa.MetaData()


class Xid8(UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id; read and written as its text form."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


outbox_message = sa.Table(
    "outbox_message",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", postgresql.JSON, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # The writing transaction: the relay publishes in (tx, seq) order, see eropaf_platform.outbox.
    sa.Column("tx", Xid8, nullable=False, server_default=sa.text("pg_current_xact_id()")),
)

# How far the relay has published: the (tx, seq) of the last row the broker acknowledged.
outbox_position = sa.Table(
    "outbox_position",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("tx", Xid8, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

processed_message = sa.Table(
    "processed_message",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

broker_epoch = sa.Table(
    "broker_epoch",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("epoch", sa.Text, nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
