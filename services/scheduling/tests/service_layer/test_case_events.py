"""Case events in a batch: one lock, bulk reads, one replan request, and exactly the outcome of
handling the same events one at a time (renames and merges chained within the batch, a
closure after an outreach decision, an outreach change that cancels a planned visit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eropaf_contracts.ddas import Contactsoort, Eindresultaat, Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    BacklogReason,
    CaseChange,
    CaseClosed,
    CaseUpdated,
    OutreachDecided,
    OutreachKind,
    Urgency,
)
from eropaf_contracts.region import load_region
from eropaf_scheduling.domain.case_book import CaseBook, backlog_after, composed
from eropaf_scheduling.domain.model import BacklogEntry, visit_id_for
from eropaf_scheduling.domain.schedule import (
    AttemptRecord,
    CaseRecord,
    CaseState,
    VisitRecord,
    VisitStatus,
)
from eropaf_scheduling.domain.time import PartOfDay
from eropaf_scheduling.service_layer import services
from eropaf_scheduling.service_layer.services import CaseEvent, PlanningConfig

from ..builders import ref
from .fakes import FakeSchedulingUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
CONFIG = PlanningConfig(region=load_region(), horizon_days=10)
REFS = [ref(f"case-{i}") for i in range(6)]


def decided(case_ref: str, outreach: OutreachKind, priority: int = 10) -> OutreachDecided:
    return OutreachDecided(
        case_ref=case_ref,
        household_ref=ref("hh-" + case_ref),
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        outreach=outreach,
        urgency=Urgency.NORMAL,
        deadline=date(2026, 6, 10),
        priority=priority,
        rule_ids=["huurachterstand"],
        decided_at=NOW,
        partner_codes=["mitros"],
    )


def updated(case_ref: str, previous: list[str], gemeente: str = "0356") -> CaseUpdated:
    return CaseUpdated(
        case_ref=case_ref,
        household_ref=ref("hh-" + case_ref),
        gemeentecode=gemeente,
        team="wil",
        postcode_area="3431",
        signal_refs=[ref("s-" + case_ref)],
        partner_types=[Signaalpartner.HUUR],
        change=CaseChange.MERGED if len(previous) > 1 else CaseChange.SIGNAL_ADDED,
        updated_at=NOW,
        previous_case_refs=previous,
    )


def closed(case_ref: str) -> CaseClosed:
    return CaseClosed(
        case_ref=case_ref,
        household_ref=ref("hh-" + case_ref),
        gemeentecode="0356",
        team="wil",
        signal_refs=[ref("s-" + case_ref)],
        resultaat=Eindresultaat.ZELF_BETAALD_OF_REGELING,
        closed_at=NOW,
    )


def wrapped(events: list[CaseEvent]) -> list[tuple[CaseEvent, Envelope]]:
    return [(e, Envelope.wrap(e, key=e.case_ref, id=f"cause-{i}")) for i, e in enumerate(events)]


@dataclass(frozen=True)
class Stored:
    """What is stored before the events: open home-visit cases with a planned visit (some
    with an attempt recorded and a backlog entry), an ended case, an alias."""

    home: tuple[int, ...]
    backlog: tuple[int, ...]
    ended: tuple[int, ...]
    alias: tuple[int, int] | None


def stored_state(stored: Stored) -> FakeSchedulingUnitOfWork:
    uow = FakeSchedulingUnitOfWork()
    repo = uow.repo
    for i in stored.home:
        case_ref = REFS[i]
        repo.cases[case_ref] = CaseRecord(
            case_ref, "0356", "wil", "3431", OutreachKind.HOME_VISIT, Urgency.NORMAL,
            date(2026, 6, 10), 10, ("mitros",), outreach_planned=True,
        )  # fmt: skip
        visit_id = visit_id_for(case_ref, 1)
        repo.visits[visit_id] = VisitRecord(
            visit_id, case_ref, 1, date(2026, 6, 3), PartOfDay.OCHTEND, 0, ("mitros-a", "wil-a")
        )
        repo.attempts.append(
            AttemptRecord(
                case_ref, 1, Contactsoort.TELEFOON, date(2026, 6, 1), None, False, None, None, "x"
            )
        )
    for i in stored.backlog:
        repo.backlog_rows.append(
            BacklogEntry(
                REFS[i], "0356", "wil", date(2026, 6, 10), 1, BacklogReason.NO_COUNSELLOR_AVAILABLE
            )
        )
    for i in stored.ended:
        if REFS[i] not in repo.cases:
            repo.cases[REFS[i]] = CaseRecord(
                REFS[i], "0356", "wil", "3431", OutreachKind.PHONE, Urgency.NORMAL,
                date(2026, 6, 10), 10, state=CaseState.ENDED,
            )  # fmt: skip
    if stored.alias is not None:
        old, current = stored.alias
        if REFS[current] in repo.cases and REFS[old] not in repo.cases:
            repo.aliases[REFS[old]] = REFS[current]
    return uow


def snapshot(uow: FakeSchedulingUnitOfWork) -> dict[str, Any]:
    repo = uow.repo
    return {
        "cases": repo.cases,
        "aliases": repo.aliases,
        "visits": repo.visits,
        "attempts": sorted(repo.attempts, key=repr),
        "backlog": sorted(repo.backlog_rows, key=repr),
        "published": [
            (m.topic, m.key, (env := Envelope.from_bytes(m.value)).type, env.causation_id, env.data)
            for m in uow.published
        ],
        "replan_due": repo.replan.due,
        "requested_at": repo.replan.requested_at,
    }


indices = st.integers(0, len(REFS) - 1)
events = st.one_of(
    st.builds(
        lambda i, kind, p: decided(REFS[i], kind, p),
        indices,
        st.sampled_from(list(OutreachKind)),
        st.integers(0, 3),
    ),
    st.builds(
        lambda i, previous, g: updated(REFS[i], [REFS[p] for p in previous], g),
        indices,
        st.lists(indices, max_size=3),
        st.sampled_from(["0356", "0321"]),
    ),
    st.builds(lambda i: closed(REFS[i]), indices),
)
stored_states = st.builds(
    Stored,
    st.lists(indices, max_size=4, unique=True).map(tuple),
    st.lists(indices, max_size=3, unique=True).map(tuple),
    st.lists(indices, max_size=2, unique=True).map(tuple),
    st.none() | st.tuples(indices, indices),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=stored_states, sequence=st.lists(events, min_size=1, max_size=12))
async def test_a_batch_ends_as_the_same_events_one_by_one(
    stored: Stored, sequence: list[CaseEvent]
) -> None:
    one_by_one = stored_state(stored)
    for event, cause in wrapped(sequence):
        await services.case_events(one_by_one, [(event, cause)], CONFIG, NOW)
    batch = stored_state(stored)
    await services.case_events(batch, wrapped(sequence), CONFIG, NOW)
    assert snapshot(batch) == snapshot(one_by_one)
    assert batch.locks == 1 and batch.commits == 1


async def test_renames_merges_and_a_closure_chained_in_one_batch() -> None:
    a, b, c, d = REFS[:4]
    uow = stored_state(Stored(home=(3,), backlog=(), ended=(), alias=None))
    await services.case_events(
        uow,
        wrapped(
            [
                decided(a, OutreachKind.HOME_VISIT),
                updated(b, [a]),  # renamed a -> b
                updated(c, [b]),  # renamed b -> c
                updated(c, [c, d]),  # c absorbs d, whose planned visit goes
                decided(a, OutreachKind.PHONE),  # under a former ref of c: older, ignored
                closed(b),  # b names c: closed
            ]
        ),
        CONFIG,
        NOW,
    )
    repo = uow.repo
    assert set(repo.cases) == {c}
    assert repo.cases[c].state == CaseState.CLOSED
    assert repo.cases[c].outreach is OutreachKind.HOME_VISIT
    assert repo.aliases == {a: c, b: c, d: c}
    [visit] = repo.visits.values()
    assert (visit.case_ref, visit.status) == (c, VisitStatus.CANCELLED)
    kinds = [(m.key, Envelope.from_bytes(m.value).type.rsplit(".", 2)[-2]) for m in uow.published]
    assert kinds == [(d, "visit")]  # d's visit cancelled; no phone task from the stale decision
    assert uow.locks == 1 and repo.replan.requested == 1


async def test_a_batch_reads_its_cases_and_visits_in_bulk() -> None:
    uow = stored_state(Stored(home=(0, 1, 2), backlog=(), ended=(), alias=None))

    async def one_by_one(case_ref: str) -> None:
        raise AssertionError(f"case {case_ref} read on its own")

    uow.repo.case = one_by_one  # type: ignore[method-assign]
    sequence: list[CaseEvent] = [decided(r, OutreachKind.LETTER) for r in REFS]
    sequence += [closed(r) for r in REFS[:3]]
    await services.case_events(uow, wrapped(sequence), CONFIG, NOW)
    assert uow.repo.visits_read == []  # no visits_of per case
    assert sum(c.state == CaseState.CLOSED for c in uow.repo.cases.values()) == 3
    cancelled = [v for v in uow.repo.visits.values() if v.status == VisitStatus.CANCELLED]
    assert len(cancelled) == 3


def test_rekeyings_compose_and_a_backlog_entry_gives_way_to_one_already_there() -> None:
    a, b, c = REFS[:3]
    assert composed([(a, b), (b, c)]) == {a: c, b: c}
    assert composed([(a, b), (b, a)]) == {b: a}
    entry = BacklogEntry(a, "0356", "wil", date(2026, 6, 10), 1, BacklogReason.CAPACITY_EXHAUSTED)
    there = BacklogEntry(b, "0356", "wil", date(2026, 6, 9), 2, BacklogReason.CAPACITY_EXHAUSTED)
    assert backlog_after({a: entry}, [(a, b)]) == {b: BacklogEntry(b, *_facts(entry))}
    assert backlog_after({a: entry, b: there}, [(a, b)]) == {b: there}
    book = CaseBook({}, {a: b}, [])
    book.rekey(b, c)
    assert book.written().aliases == {b: c} and book.case(a) is None


def _facts(entry: BacklogEntry) -> tuple[Any, ...]:
    return (entry.gemeentecode, entry.team, entry.deadline, entry.attempt, entry.reason)
