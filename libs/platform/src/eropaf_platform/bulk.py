"""The one bulk-SQL helper: a batch of rows, or a list of keys, in ONE parameter.

* Writes: :func:`json_insert` + :func:`rows_json`. The rows travel as one JSON document that
  the server unpacks with ``json_to_recordset``: one statement per batch whatever its size,
  its text never changes (prepared once), encoded by orjson. Never ``executemany`` or one
  ``INSERT`` per row: each row would cost a bind, protocol round and executor start.
* Key lists: :func:`any_of`, ``column = ANY(CAST(:keys AS type[]))``; the rule and its figures
  are in ``docs/CONVENTIONS.md`` (``python -m eropaf_bench.keylists`` measures them).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()


def json_insert(
    table: sa.Table,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> sa.TextClause:
    """``INSERT INTO table (columns) SELECT ... FROM json_to_recordset(:rows)``; ``:rows`` is
    :func:`rows_json` of the rows. Rows are inserted in list order (``WITH ORDINALITY`` +
    ``ORDER BY``), so an identity column follows the order of the list.

    ``conflict``: the conflict target; with ``update`` the named columns take the new values
    (``DO UPDATE``), without it the row is skipped (``DO NOTHING``); ``conflict=[]`` is
    ``ON CONFLICT DO NOTHING`` on any constraint. ``returning``: columns of the rows actually
    inserted (or updated).
    """
    quote = _DIALECT.identifier_preparer.quote
    names = ", ".join(quote(n) for n in columns)
    definitions: list[str] = []
    selected: list[str] = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, sa.LargeBinary):
            # JSON has no bytes: base64 text (see rows_json), decoded by the server.
            definitions.append(f"{quote(name)} text")
            selected.append(f"decode(u.{quote(name)}, 'base64')")
        else:
            definitions.append(f"{quote(name)} {column_type.compile(_DIALECT)}")
            selected.append(f"u.{quote(name)}")
    # Only names and types from the table's metadata are spliced in; values are one parameter.
    sql = (
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {', '.join(selected)} "  # noqa: S608
        f"FROM ROWS FROM (json_to_recordset(CAST(:rows AS json)) AS ({', '.join(definitions)}))"
        f" WITH ORDINALITY AS u({names}, _ord) ORDER BY u._ord"
    )
    if conflict is not None:
        target = f" ({', '.join(quote(c) for c in conflict)})" if conflict else ""
        if update:
            sets = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
            sql += f" ON CONFLICT{target} DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT{target} DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(c) for c in returning)}"
    return sa.text(sql)


def _encode(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, date):  # datetime too: ISO 8601 with its offset
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be bulk-inserted")


def rows_json(rows: Iterable[Mapping[str, Any]]) -> str:
    """The ``:rows`` parameter of :func:`json_insert`: the rows as a JSON array of objects
    (keys the statement does not name are ignored by the server), encoded by orjson; dates
    and datetimes as ISO 8601."""
    return orjson.dumps(list(rows), default=_encode).decode()


def array_literal(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of the values as text (``{"a","b"}``): every element
    quoted, backslash and quote escaped. The value of an :func:`any_of` parameter; built here
    in one pass, as psycopg would dump a list element by element in Python."""
    items = [v if isinstance(v, str) else str(v) for v in values]
    joined = '","'.join(items)
    # Keys are pseudonyms and codes: nothing to escape, as a rule (each separator holds two
    # quotes, so a quote or backslash inside an element shows in the count).
    if "\\" in joined or joined.count('"') != 2 * (len(items) - 1):
        return "{" + ",".join(_array_element(v) for v in items) + "}"
    return '{"' + joined + '"}'


def _array_element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def any_of(
    column: sa.ColumnElement[Any],
    values: Iterable[object] | None = None,
    *,
    name: str | None = None,
) -> sa.ColumnElement[bool]:
    """``column = ANY(CAST(:array AS type[]))`` with the values in ONE parameter.

    Not ``column.in_(values)``, which binds one parameter per value and so makes a new,
    long statement for every batch size. With ``values`` the parameter is bound here; with
    ``name`` instead it is ``:name``, bound when executed to :func:`array_literal` of the
    keys, so that a statement built once (at import) serves every batch.
    """
    if (values is None) == (name is None):
        raise TypeError("any_of takes either values or a parameter name")
    array_type = postgresql.ARRAY(column.type)
    if name is not None:
        parameter = sa.bindparam(name, type_=sa.Text)
    else:
        parameter = sa.bindparam(None, array_literal(values or ()), type_=sa.Text)
    return column == sa.any_(sa.cast(parameter, array_type))
