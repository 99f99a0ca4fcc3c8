"""The daily sweep of cases not picked up, on the real PostgreSQL (and the broker the module's
matching service reads its signals from): it closes what is due, tells downstream and the
creditors through the outbox, and does so once however often, or however concurrently, it
runs."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest

from eropaf_contracts.ddas import Eindresultaat
from eropaf_contracts.events import CreditorFeedbackRequested, CreditorStatus
from eropaf_contracts.region import load_region
from eropaf_contracts.topics import CREDITOR_FEEDBACK_TOPIC
from eropaf_matching.domain.cases import Case, CaseState
from eropaf_matching.handlers import NotPickedUpSweep
from eropaf_matching.policy import load_policy
from eropaf_platform.service import Service
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import Household, case_of, closure_told, outbox_events, publish

pytestmark = pytest.mark.integration

REGION = load_region()
POLICY = load_policy(region=REGION)
WAIT = timedelta(days=POLICY.for_gemeente("0356").niet_opgepakt_sluiten_na_dagen)


@pytest.fixture(scope="module")
def matching_options() -> dict[str, Any]:
    return {"consume_visits": False}


@pytest.fixture
def sweep() -> NotPickedUpSweep:
    return NotPickedUpSweep(POLICY, REGION)


async def _cases(
    matching: Service, bootstrap: str, h: Household, opened: date
) -> tuple[Case, Case]:
    """A case below the minimum (not picked up) and one picked up, both opened on ``opened``."""
    await publish(
        bootstrap,
        h.accepted("small", bedrag=20, datum=opened, bsn="small", address="s-1"),
        h.accepted("big", bedrag=2000, datum=opened, bsn="big", address="b-1"),
    )

    async def both() -> tuple[Case, Case] | None:
        small, big = await case_of(matching, h.ref("small")), await case_of(matching, h.ref("big"))
        return (small, big) if small is not None and big is not None else None

    small, big = await wait_until_async(both, timeout=30, interval=0.1)
    assert small.opened_on == big.opened_on == opened
    assert small.opgepakt_on is None and big.opgepakt_on is not None
    return small, big


async def _state(matching: Service, signal_ref: str) -> CaseState | None:
    case = await case_of(matching, signal_ref)
    return None if case is None else case.state


async def _closing_events(matching: Service, case: Case, signal_ref: str) -> tuple[list, list]:
    closed = await outbox_events(matching, containing=f"case-closed:{case.case_id}")
    feedback = await outbox_events(
        matching, containing=f"creditor-feedback:{signal_ref}:not_picked_up"
    )
    return closed, feedback


async def test_the_sweep_closes_a_case_not_picked_up_once_its_wait_is_over(
    matching: Service, kafka_bootstrap_servers: str, household: Household, sweep: NotPickedUpSweep
) -> None:
    h = household
    opened = date(2026, 3, 2)
    small, big = await _cases(matching, kafka_bootstrap_servers, h, opened)

    early = await sweep.run(matching.sessions, opened + WAIT - timedelta(days=1))
    assert small.case_id not in early
    assert await _state(matching, h.ref("small")) is CaseState.OPEN

    due = opened + WAIT
    assert small.case_id in await sweep.run(matching.sessions, due)
    after = await case_of(matching, h.ref("small"))
    assert after is not None and after.state is CaseState.CLOSED
    assert after.resultaat is Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN and after.closed_on == due
    picked = await case_of(matching, h.ref("big"))
    assert picked is not None and picked.state is big.state  # picked up: not the sweep's

    closed, feedback = await _closing_events(matching, small, h.ref("small"))
    event = await closure_told(matching, small.case_id)
    assert event.case_ref == small.case_id and event.signal_refs == [h.ref("small")]
    assert event.resultaat is Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN
    assert [e.topic for e in feedback] == [CREDITOR_FEEDBACK_TOPIC]
    assert feedback[0].payload(CreditorFeedbackRequested).status is CreditorStatus.NOT_PICKED_UP
    assert closed[0].key == feedback[0].key == small.household_id  # in order per household

    # The next day's run (or the same day's again) finds nothing more to do for it.
    assert small.case_id not in await sweep.run(matching.sessions, due)
    assert small.case_id not in await sweep.run(matching.sessions, due + timedelta(days=1))
    assert await _closing_events(matching, small, h.ref("small")) == (closed, feedback)


async def test_a_sweep_that_crashes_before_its_commit_leaves_nothing_behind(
    matching: Service, kafka_bootstrap_servers: str, household: Household, sweep: NotPickedUpSweep
) -> None:
    h = household
    opened = date(2026, 4, 1)
    small, _ = await _cases(matching, kafka_bootstrap_servers, h, opened)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with matching.sessions() as session, session.begin():
            assert small.case_id in await sweep(session, opened + WAIT)
            raise Crash  # the process dies before the commit
    assert await _state(matching, h.ref("small")) is CaseState.OPEN
    assert await _closing_events(matching, small, h.ref("small")) == ([], [])

    assert small.case_id in await sweep.run(matching.sessions, opened + WAIT)
    closed, feedback = await _closing_events(matching, small, h.ref("small"))
    assert len(closed) == 2 and len(feedback) == 1  # the closure for downstream and for intake
    await closure_told(matching, small.case_id)


async def test_two_sweeps_at_once_close_a_case_once(
    matching: Service, kafka_bootstrap_servers: str, household: Household, sweep: NotPickedUpSweep
) -> None:
    h = household
    opened = date(2026, 5, 4)
    small, _ = await _cases(matching, kafka_bootstrap_servers, h, opened)
    on = opened + WAIT
    # E.g. the service's own run and an operator's, or two runs on different days.
    first, second = await asyncio.gather(
        sweep.run(matching.sessions, on), sweep.run(matching.sessions, on + timedelta(days=3))
    )
    assert (small.case_id in first) != (small.case_id in second)
    closed, feedback = await _closing_events(matching, small, h.ref("small"))
    assert len(closed) == 2 and len(feedback) == 1  # the closure for downstream and for intake
    await closure_told(matching, small.case_id)


async def test_operators_run_the_sweep_from_the_command_line(
    matching: Service,
    kafka_bootstrap_servers: str,
    household: Household,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from eropaf_cli.main import main

    h = household
    opened = date(2026, 6, 1)
    small, _ = await _cases(matching, kafka_bootstrap_servers, h, opened)
    url = matching.settings.database_url
    on = (opened + WAIT).isoformat()
    # In a thread: the command runs its own event loop.
    code = await asyncio.to_thread(main, ["matching", "sweep", "--database-url", url, "--on", on])
    assert code == 0
    assert "not picked up closed as of " + on in capsys.readouterr().err
    after = await case_of(matching, h.ref("small"))
    assert after is not None and after.state is CaseState.CLOSED
    await closure_told(matching, small.case_id)

    future = (date.today() + timedelta(days=30)).isoformat()
    code = await asyncio.to_thread(
        main, ["matching", "sweep", "--database-url", url, "--on", future]
    )
    assert code == 2
    assert "after today" in capsys.readouterr().err
