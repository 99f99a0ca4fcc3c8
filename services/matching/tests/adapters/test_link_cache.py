"""The in-memory linking state against PostgreSQL: it follows its own commits without
reloading, drops what was rolled back (whole transactions and savepoints, as the batch
processor uses them) and reloads when anyone else wrote ``match_signal``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_matching.adapters import repository
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.linking import LinkIndex
from eropaf_matching.domain.signals import MatchTokenKind, SignalFacts
from eropaf_platform.db import _alembic_config, make_engine, make_sessions, migrate_async

from .conftest import POLICY, REGION, signal

pytestmark = pytest.mark.integration

BSN, ADDRESS = MatchTokenKind.BSN, MatchTokenKind.ADDRESS


async def accept(session: AsyncSession, cache: LinkCache, *signals: SignalFacts) -> None:
    """What the handler does with a batch of new signals, in the caller's transaction."""
    await repository.lock_matching(session)
    state = await repository.load_state(
        session,
        POLICY,
        REGION,
        tokens={t for s in signals for t in s.match_tokens.items()},
        signal_refs={s.signal_ref for s in signals},
        link_cache=cache,
    )
    for s in signals:
        state.matcher.accept(s)
    await state.save(session)


async def held(sessions: async_sessionmaker[AsyncSession], cache: LinkCache) -> set[str]:
    async with sessions() as session, session.begin():
        await repository.lock_matching(session)
        return set((await cache.index(session)).signals)


async def test_the_copy_follows_its_own_commits_without_loading_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = LinkCache()
    async with sessions() as s, s.begin():
        await accept(s, cache, signal("a", 1, bsn="1"))
    async with sessions() as s, s.begin():
        # b shares a's bsn: found in memory, so it joins a's household.
        await accept(s, cache, signal("b", 2, bsn="1", address="2"))
    assert await held(sessions, cache) == {"a" * 32, "b" * 32}
    assert cache.loads == 1
    async with sessions() as s, s.begin():
        await repository.lock_matching(s)
        index = await cache.index(s)
        assert index.assignments["a" * 32] == index.assignments["b" * 32]
        state = await repository.load_state(
            s, POLICY, REGION, tokens={(ADDRESS, "2" * 32)}, signal_refs=(), link_cache=cache
        )
    assert set(state.matcher.links.signals) == {"a" * 32, "b" * 32}
    assert cache.loads == 1


async def test_the_copy_is_what_a_fresh_load_gives_after_every_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = LinkCache()
    batches = [
        [signal("a", 1, bsn="1", address="x")],
        [signal("b", 2, bsn="2", address="x"), signal("c", 3, bsn="3", address="y")],
        [signal("a", 1, bsn="1", address="y")],  # a moves: x is b's alone again
        [signal("d", 4, bsn="2", address="z")],
    ]
    for batch in batches:
        async with sessions() as s, s.begin():
            await accept(s, cache, *batch)
        async with sessions() as s, s.begin():
            await repository.lock_matching(s)
            held, fresh = await cache.index(s), await LinkCache().index(s)
        assert held.signals == fresh.signals
        assert held.assignments == fresh.assignments
        tokens = {t for link in fresh.signals.values() for t in link.token_set()}
        tokens |= {(ADDRESS, "x" * 32), (ADDRESS, "y" * 32), (ADDRESS, "z" * 32)}
        assert {t: held.carriers(t) for t in tokens} == {t: fresh.carriers(t) for t in tokens}
    assert held.carriers((ADDRESS, "x" * 32)) == {"b" * 32}
    assert cache.loads == 1


async def test_a_rolled_back_batch_is_not_kept(sessions: async_sessionmaker[AsyncSession]) -> None:
    cache = LinkCache()
    async with sessions() as s, s.begin():
        await accept(s, cache, signal("a", 1, bsn="1"))
    async with sessions() as s:
        async with s.begin():
            await accept(s, cache, signal("b", 2, bsn="1"))
            await s.rollback()
    assert await held(sessions, cache) == {"a" * 32}
    assert cache.loads == 1  # the copy was still the table's


async def test_savepoints_released_and_rolled_back_within_one_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """As the batch processor isolates a poison message: the whole batch in a savepoint that
    is rolled back, then one savepoint per message, kept or rolled back."""
    cache = LinkCache()
    async with sessions() as s, s.begin():
        whole = s.begin_nested()
        await whole.start()
        await accept(s, cache, signal("a", 1, bsn="1"), signal("b", 2, bsn="2"))
        await whole.rollback()
        async with s.begin_nested():
            await accept(s, cache, signal("a", 1, bsn="1"))
        poison = s.begin_nested()
        await poison.start()
        await accept(s, cache, signal("b", 2, bsn="2"))
        await poison.rollback()
        async with s.begin_nested():
            await accept(s, cache, signal("c", 3, bsn="1"))
    assert await held(sessions, cache) == {"a" * 32, "c" * 32}
    async with sessions() as s:
        stored = set((await s.execute(sa.text("SELECT signal_ref FROM match_signal"))).scalars())
    assert stored == {"a" * 32, "c" * 32}


async def test_another_writer_makes_the_copy_load_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ours, theirs = LinkCache(), LinkCache()  # e.g. two instances during a rollout
    loads_before = REGISTRY.get_sample_value("eropaf_matching_linking_loads_total") or 0.0
    async with sessions() as s, s.begin():
        await accept(s, ours, signal("a", 1, bsn="1"))
    async with sessions() as s, s.begin():
        await accept(s, theirs, signal("b", 2, bsn="1"))
    async with sessions() as s, s.begin():
        await repository.lock_matching(s)
        index = await ours.index(s)
        assert set(index.signals) == {"a" * 32, "b" * 32}
        assert index.assignments["a" * 32] == index.assignments["b" * 32]
    assert ours.loads == 2
    # A manual fix in psql, say: any statement on the table counts.
    async with sessions() as s, s.begin():
        await s.execute(sa.text("DELETE FROM match_signal WHERE signal_ref = :r"), {"r": "b" * 32})
    assert await held(sessions, ours) == {"a" * 32}
    assert ours.loads == 3
    # What operators see on /metrics: every load (ours and theirs), the signals held last.
    loads = REGISTRY.get_sample_value("eropaf_matching_linking_loads_total")
    assert loads == loads_before + ours.loads + theirs.loads
    assert REGISTRY.get_sample_value("eropaf_matching_linking_signals") == 1


async def test_every_statement_on_match_signal_gives_a_new_generation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = LinkCache()
    seen = set()
    async with sessions() as s, s.begin():
        seen.add(await cache.generation(s))
        for statement in (
            "INSERT INTO match_signal VALUES ('r', '2026-10-01', '{}', 'p', 'h')",
            "UPDATE match_signal SET person_id = 'q'",
            "UPDATE match_signal SET person_id = 'q' WHERE false",  # no row: still a write
            "DELETE FROM match_signal",
            "TRUNCATE match_signal",
        ):
            await s.execute(sa.text(statement))
            seen.add(await cache.generation(s))
    assert len(seen) == 6


async def test_migration_0002_drops_the_token_rows_and_its_downgrade_restores_them(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    await migrate_async(url)  # the platform's tables
    config = _alembic_config(MIGRATIONS, url, "alembic_version_matching")
    await asyncio.to_thread(command.upgrade, config, "matching_0001")
    engine = make_engine(url)
    tokens = "SELECT kind, value, signal_ref FROM match_token ORDER BY 1, 2, 3"
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO match_signal VALUES"
                    " ('r1', '2026-10-01', '{\"bsn\": \"b\", \"address\": \"a\"}', 'p', 'h'),"
                    " ('r2', '2026-10-02', '{\"address\": \"a\"}', 'q', 'h')"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO match_token VALUES"
                    " ('bsn', 'b', 'r1'), ('address', 'a', 'r1'), ('address', 'a', 'r2')"
                )
            )
            before = (await conn.execute(sa.text(tokens))).all()
        await engine.dispose()
        await asyncio.to_thread(command.upgrade, config, "head")
        sessions = make_sessions(engine)
        cache = LinkCache()
        assert await held(sessions, cache) == {"r1", "r2"}
        async with engine.connect() as conn:
            assert not await conn.scalar(sa.text("SELECT to_regclass('match_token') IS NOT NULL"))
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, config, "matching_0001")
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text(tokens))).all() == before
            assert not await conn.scalar(
                sa.text("SELECT to_regclass('match_link_generation') IS NOT NULL")
            )
    finally:
        await engine.dispose()


async def test_the_held_state_is_kept_out_of_the_garbage_collectors_passes(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full collection visits every tracked object: what the cache holds is frozen out
    of it once loaded and then every `freeze_every` signals."""
    monkeypatch.setattr(LinkCache, "freeze_every", 2)

    def collectable(index: LinkIndex) -> set[str]:
        tracked = {id(o) for o in gc.get_objects()}
        return {ref for ref, link in index.signals.items() if id(link) in tracked}

    cache = LinkCache()
    try:
        async with sessions() as s, s.begin():
            await accept(s, cache, signal("a", 1, bsn="1"))
        async with sessions() as s, s.begin():
            await repository.lock_matching(s)
            index = await cache.index(s)  # a applied: one signal, below freeze_every
            assert collectable(index) == {"a" * 32}
            await accept(s, cache, signal("b", 2, bsn="2"), signal("c", 3, bsn="3"))
        async with sessions() as s, s.begin():
            await repository.lock_matching(s)
            index = await cache.index(s)  # b and c applied: three since the last freeze
        assert set(index.signals) == {"a" * 32, "b" * 32, "c" * 32}
        assert collectable(index) == set()
        # A full load is frozen at once.
        fresh = LinkCache()
        async with sessions() as s, s.begin():
            await repository.lock_matching(s)
            assert collectable(await fresh.index(s)) == set()
    finally:
        gc.unfreeze()
