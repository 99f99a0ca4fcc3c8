"""Key lists in one parameter (``bulk.any_of``, ``bulk.array_literal``): the literal reads
back as the keys, the statement text never depends on them, and PostgreSQL finds exactly the
rows asked for, bound when built or when executed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from eropaf_platform import bulk
from eropaf_platform.db import make_engine

KEYS = sa.table("keys", sa.column("k", sa.Text))


@pytest.mark.unit
@pytest.mark.parametrize(
    "values",
    [[], [""], ["a" * 32], ["bsn", "address"], ['say "hi"', "back\\slash", "", "x,y", "{z}"]],
)
def test_array_literals_read_back_as_the_values(values: list[str]) -> None:
    assert _parse_pg_text_array(bulk.array_literal(iter(values))) == values


@pytest.mark.unit
def test_other_values_are_written_as_their_text() -> None:
    key = uuid.UUID(int=7)
    assert bulk.array_literal([1, key]) == f'{{"1","{key}"}}'


@pytest.mark.unit
def test_a_named_key_list_is_one_parameter_bound_when_executed() -> None:
    statement = sa.select(KEYS.c.k).where(bulk.any_of(KEYS.c.k, name="ids"))
    compiled = statement.compile(dialect=postgresql.dialect())
    sql = " ".join(str(compiled).split())
    assert "WHERE keys.k = ANY (CAST(%(ids)s" in sql and sql.endswith("AS TEXT[]))")
    assert list(compiled.params) == ["ids"]
    with pytest.raises(TypeError):
        bulk.any_of(KEYS.c.k)
    with pytest.raises(TypeError):
        bulk.any_of(KEYS.c.k, ["a"], name="ids")


@pytest.mark.integration
async def test_postgresql_finds_exactly_the_keys_asked_for(
    fresh_database_url: Callable[[], str],
) -> None:
    stored = ["a", 'say "hi"', "back\\slash", "x,y", "{z}", "", "other"]
    wanted = ['say "hi"', "back\\slash", "x,y", "{z}", "", "missing"]
    engine = make_engine(fresh_database_url())
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE keys (k text PRIMARY KEY)"))
            await conn.execute(sa.insert(KEYS), [{"k": k} for k in stored])
            named = sa.select(KEYS.c.k).where(bulk.any_of(KEYS.c.k, name="ids"))
            by_name = await conn.execute(named, {"ids": bulk.array_literal(wanted)})
            by_value = await conn.execute(sa.select(KEYS.c.k).where(bulk.any_of(KEYS.c.k, wanted)))
            none = await conn.execute(named, {"ids": bulk.array_literal([])})
            found = set(wanted) - {"missing"}
            assert set(by_name.scalars()) == found
            assert set(by_value.scalars()) == found
            assert list(none.scalars()) == []
    finally:
        await engine.dispose()


def _parse_pg_text_array(literal: str) -> list[str]:
    # PostgreSQL's array input for our literals: every element quoted, \\ and \" escaped.
    assert literal.startswith("{") and literal.endswith("}")
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        assert body[i] == '"'
        i, element = i + 1, []
        while body[i] != '"':
            if body[i] == "\\":
                i += 1
            element.append(body[i])
            i += 1
        out.append("".join(element))
        i += 2  # the closing quote and the comma
    return out
