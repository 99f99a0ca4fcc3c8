"""The in-memory cases against PostgreSQL: after every batch the copy is what the tables
hold (merges, renames and contact attempts included), it follows its own commits without
reading the tables again, drops what was rolled back, and loads afresh after any other
writer or where it could not mirror a change exactly."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eropaf_contracts.ddas import Contactsoort, Dagdeel
from eropaf_matching.adapters import repository
from eropaf_matching.adapters.case_cache import CaseCache
from eropaf_matching.adapters.link_cache import LinkCache
from eropaf_matching.app import MIGRATIONS
from eropaf_matching.domain.cases import Case, ContactAttempt
from eropaf_matching.domain.matcher import CaseStore, Matcher
from eropaf_matching.domain.signals import SignalFacts
from eropaf_platform.db import _alembic_config, make_engine, migrate_async

from .conftest import POLICY, REGION, signal

pytestmark = pytest.mark.integration


class Process:
    """One matching process's copies, and a batch of new signals as the handler runs it."""

    def __init__(self) -> None:
        self.links = LinkCache()
        self.cases = CaseCache()

    async def accept(self, session: AsyncSession, *signals: SignalFacts) -> None:
        await repository.lock_matching(session)
        state = await repository.load_state(
            session,
            POLICY,
            REGION,
            tokens={t for s in signals for t in s.match_tokens.items()},
            signal_refs={s.signal_ref for s in signals},
            link_cache=self.links,
            case_cache=self.cases,
        )
        for s in signals:
            placement = state.matcher.accept(s).placement
            assert placement is not None
            for old in (*placement.absorbed_case_ids, placement.renamed_from):
                if old is not None and old != placement.case.case_id:
                    state.rename(old, placement.case.case_id)
        await state.save(session)

    async def held(self, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Case]:
        async with sessions() as session, session.begin():
            await repository.lock_matching(session)
            return dict(await self.cases.index(session))


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Case]:
    async with sessions() as session:
        return {c.case_id: c for c in await repository.load_cases(session)}


async def test_the_copy_is_what_the_tables_hold_after_every_batch_without_loading_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    process = Process()
    batches = [
        [signal("m", 1, bsn="1", address="x")],
        [signal("n", 2, bsn="2", address="y")],
        # Joins m's case; an earlier-dated signal of n's household renames n's case.
        [signal("o", 3, bsn="1", address="x"), signal("c", 1, bsn="2", address="y")],
        # Links both households through one address: their cases merge into one.
        [signal("p", 4, bsn="3", address="x"), signal("q", 4, bsn="3", address="y")],
    ]
    for batch in batches:
        async with sessions() as s, s.begin():
            await process.accept(s, *batch)
        assert await process.held(sessions) == await stored(sessions)
    held = await process.held(sessions)
    assert sorted(len(c.signals) for c in held.values()) == [6]  # all merged, none lost
    assert process.cases.loads == 1


async def test_contact_attempts_of_another_writer_in_the_process_are_followed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """As the visit handler does: its own matcher over the shared copy's cases."""
    process = Process()
    async with sessions() as s, s.begin():
        await process.accept(s, signal("a", 1, bsn="1", address="x"))
    async with sessions() as s, s.begin():
        await repository.lock_matching(s)
        held = await process.cases.index(s)
        case = next(iter(held.values()))
        state = repository.MatchingState(
            Matcher(POLICY, REGION), loaded_cases={case.case_id: case}, case_cache=process.cases
        )
        attempt = ContactAttempt(Contactsoort.TELEFOON, True, date(2026, 10, 5), Dagdeel.OCHTEND)
        state.matcher.cases.update(state.loaded_cases)
        state.matcher.record_attempt(case.case_id, attempt)
        await state.save(s)
    held_now = await process.held(sessions)
    assert held_now == await stored(sessions)
    assert held_now[case.case_id].contactpogingen == (attempt,)
    assert process.cases.loads == 1


async def test_a_rolled_back_batch_is_not_kept(sessions: async_sessionmaker[AsyncSession]) -> None:
    process = Process()
    async with sessions() as s, s.begin():
        await process.accept(s, signal("a", 1, bsn="1", address="x"))
    before = await process.held(sessions)
    async with sessions() as s:
        async with s.begin():
            await process.accept(s, signal("b", 2, bsn="1", address="x"))
            await s.rollback()
    assert await process.held(sessions) == before == await stored(sessions)
    assert process.cases.loads == 1


async def test_savepoints_released_and_rolled_back_within_one_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """As the batch processor isolates a poison message (see test_link_cache)."""
    process = Process()
    async with sessions() as s, s.begin():
        whole = s.begin_nested()
        await whole.start()
        await process.accept(s, signal("a", 1, bsn="1"), signal("b", 2, bsn="2"))
        await whole.rollback()
        async with s.begin_nested():
            await process.accept(s, signal("a", 1, bsn="1"))
        poison = s.begin_nested()
        await poison.start()
        await process.accept(s, signal("b", 2, bsn="2"))
        await poison.rollback()
        async with s.begin_nested():
            await process.accept(s, signal("c", 3, bsn="1"))
    held = await process.held(sessions)
    assert held == await stored(sessions)
    assert {ref for c in held.values() for ref in c.signals} == {"a" * 32, "c" * 32}


async def test_another_writer_makes_the_copy_load_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ours, theirs = Process(), Process()  # e.g. two instances during a rollout
    loads_before = REGISTRY.get_sample_value("eropaf_matching_case_loads_total") or 0.0
    async with sessions() as s, s.begin():
        await ours.accept(s, signal("a", 1, bsn="1", address="x"))
    async with sessions() as s, s.begin():
        await theirs.accept(s, signal("b", 2, bsn="1", address="x"))
    assert await ours.held(sessions) == await stored(sessions)
    assert ours.cases.loads == 2
    # A manual fix in psql, say: any statement on any of the three tables counts.
    for statement in (
        "UPDATE match_case SET gemeentecode = gemeentecode",
        "UPDATE case_signal SET resolved_on = '2026-10-09'",
        "DELETE FROM case_contact_attempt",
    ):
        async with sessions() as s, s.begin():
            await s.execute(sa.text(statement))
        assert await ours.held(sessions) == await stored(sessions)
    assert ours.cases.loads == 5
    held = await ours.held(sessions)
    assert [set(c.resolved_on.values()) for c in held.values()] == [{date(2026, 10, 9)}]
    loads = REGISTRY.get_sample_value("eropaf_matching_case_loads_total")
    assert loads == loads_before + ours.cases.loads + theirs.cases.loads
    assert REGISTRY.get_sample_value("eropaf_matching_cases_held") == 1


async def test_every_statement_on_the_case_tables_gives_a_new_generation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = CaseCache()
    seen = set()
    async with sessions() as s, s.begin():
        seen.add(await cache.generation(s))
        for statement in (
            "INSERT INTO match_case (case_id, household_id, gemeentecode, state, opened_on,"
            " herhaalde_meldingen, updated_at)"
            " VALUES ('c', 'h', '0356', 'open', '2026-10-01', '{}', now())",
            "INSERT INTO case_signal VALUES ('r', 'c', '{}', NULL)",
            "UPDATE case_signal SET resolved_on = NULL WHERE false",  # no row: still a write
            "INSERT INTO case_contact_attempt VALUES ('c', 0, 'Telefoon', true, '2026-10-02')",
            "DELETE FROM match_case",  # its child rows go with it
            "TRUNCATE case_contact_attempt",
        ):
            await s.execute(sa.text(statement))
            seen.add(await cache.generation(s))
    assert len(seen) == 7


def _case(case_id: str, *refs: str) -> Case:
    facts = {ref: signal(ref, 1, bsn=ref) for ref in refs}
    return Case(
        case_id=case_id,
        household_id="h",
        opened_on=date(2026, 10, 1),
        signals={f.signal_ref: f for f in facts.values()},
    )


def test_a_change_the_copy_cannot_mirror_exactly_makes_it_load_again() -> None:
    """Without a database: what _apply does with each kind of staged change."""
    cache = CaseCache()
    store = CaseStore({"c1": _case("c1", "a", "b"), "c2": _case("c2", "d")})
    # A merge: c2 gone, its signal taken by c1 -- mirrored.
    merged = _case("c1", "a", "b", "d")
    assert cache._apply(store, ([merged], ["c2"])) == 3
    assert dict(store) == {"c1": merged}
    assert store.of_signal("d" * 32) == merged
    # c1 rewritten without b, which no written case takes: its row still names c1.
    assert cache._apply(store, ([_case("c1", "a", "d")], [])) is None
    # c3 takes d from c1, which the batch did not write: c1 would no longer list it.
    assert cache._apply(CaseStore({"c1": merged}), ([_case("c3", "d")], [])) is None


async def test_two_stages_without_an_index_between_make_the_copy_load_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    process = Process()
    async with sessions() as s, s.begin():
        await process.accept(s, signal("a", 1, bsn="1", address="x"))
    async with sessions() as s, s.begin():
        # A writer that did not take in what was pending first.
        await repository.lock_matching(s)
        process.cases.stage(await process.cases.generation(s), ([], ["nothing"]))
    assert await process.held(sessions) == await stored(sessions)
    assert process.cases.loads == 2


async def test_the_held_cases_are_kept_out_of_the_garbage_collectors_passes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    process = Process()
    async with sessions() as s, s.begin():
        await process.accept(s, signal("a", 1, bsn="1", address="x"))
    try:
        fresh = CaseCache()
        async with sessions() as s, s.begin():
            await repository.lock_matching(s)
            held = await fresh.index(s)
        tracked = {id(o) for o in gc.get_objects()}
        assert held and not any(id(c) in tracked for c in held.values())
    finally:
        gc.unfreeze()


async def test_migration_0003_downgrade_removes_the_generation_and_its_triggers(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    await migrate_async(url, MIGRATIONS, service="matching")
    config = _alembic_config(MIGRATIONS, url, "alembic_version_matching")
    await asyncio.to_thread(command.downgrade, config, "matching_0002")
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            assert not await conn.scalar(
                sa.text("SELECT to_regclass('match_case_generation') IS NOT NULL")
            )
            triggers = await conn.scalar(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%\\_changed'")
            )
            assert triggers == 1  # match_signal's own (matching_0002)
            await conn.execute(sa.text("DELETE FROM match_case"))  # no trigger left to fail
    finally:
        await engine.dispose()


async def test_a_full_load_reads_id_ranges_that_give_the_cases_read_by_id(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eropaf_matching.adapters import case_rows

    process = Process()
    async with sessions() as s, s.begin():
        await process.accept(
            s,
            *(signal(f"s{i}", 1 + i % 3, bsn=str(i % 5), address=f"a{i % 4}") for i in range(9)),
        )
        await process.accept(s, signal("t", 2, bsn="9", address="z"))
    async with sessions() as s:
        ids = list((await s.execute(sa.text("SELECT case_id FROM match_case"))).scalars())
        by_id = {c.case_id: c for c in await case_rows.load_cases_by_ids(s, ids)}
        assert len(by_id) == len(ids) >= 2
        sizes: list[int] = []

        def in_twos(items: list[str], size: int = 2) -> list[list[str]]:
            parts = [items[i : i + size] for i in range(0, len(items), size)]
            sizes.extend(len(p) for p in parts)
            return parts

        monkeypatch.setattr(case_rows, "chunks", in_twos)
        ranged = {c.case_id: c for c in await case_rows.load_cases(s)}
    assert ranged == by_id
    assert sum(sizes) == len(ids) and max(sizes) == 2
