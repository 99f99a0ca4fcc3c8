"""The visit-events handler reads three of scheduling's events on ``VISITS_TOPIC``
(OutreachPlanned, ContactAttemptRecorded, CaseOutcomeRecorded); the topic carries all of
scheduling's case events, and the others pass by: no error, no dead letter, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    BacklogReason,
    CaseOutcomeRecorded,
    CaseUnplanned,
    ContactAttemptRecorded,
    OutreachPlanned,
    SignalAccepted,
    VisitCancelled,
    VisitCancelReason,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
)
from eropaf_contracts.region import load_region
from eropaf_contracts.topics import VISITS_TOPIC
from eropaf_matching import handlers
from eropaf_matching.domain.cases import CaseState
from eropaf_matching.policy import load_policy
from eropaf_matching.service_layer import services
from eropaf_platform.consumer import Incoming, PoisonMessage

from ..conftest import Household
from ..service_layer.fakes import FakeMatchingUnitOfWork

pytestmark = pytest.mark.unit

REGION = load_region()
POLICY = load_policy(region=REGION)
AMS = timezone(timedelta(hours=1))
D = date(2026, 10, 5)


def visit(case_ref: str) -> dict[str, Any]:
    return {
        "visit_id": "a1b2c3d4e5f60718",
        "case_ref": case_ref,
        "gemeentecode": "0356",
        "team": "wil",
        "postcode_area": "3431",
        "datum": D + timedelta(days=2),
        "dagdeel": Dagdeel.OCHTEND,
        "start": datetime(2026, 10, 7, 9, 0, tzinfo=AMS),
        "end": datetime(2026, 10, 7, 10, 0, tzinfo=AMS),
        "staff": ["mitros-jan", "wil-anna"],
        "sequence": 0,
        "attempt": 1,
        "deadline": D + timedelta(days=14),
    }


def scheduling_only(case_ref: str) -> list[BaseModel]:
    """Scheduling's events matching has no use for."""
    return [
        VisitPlanned(**visit(case_ref)),
        VisitRescheduled(
            **(visit(case_ref) | {"sequence": 1, "staff": ["mitros-jan", "wil-bert"]}),
            previous_datum=D + timedelta(days=2),
            previous_dagdeel=Dagdeel.OCHTEND,
            previous_start=datetime(2026, 10, 7, 9, 0, tzinfo=AMS),
            previous_end=datetime(2026, 10, 7, 10, 0, tzinfo=AMS),
            previous_staff=["mitros-jan", "wil-anna"],
        ),
        VisitCancelled(**(visit(case_ref) | {"sequence": 2}), reason=VisitCancelReason.REPLANNED),
        VisitCompleted(
            visit_id="a1b2c3d4e5f60718",
            case_ref=case_ref,
            gemeentecode="0356",
            datum=D + timedelta(days=2),
            staff=["mitros-jan", "wil-anna"],
            attempt=1,
            bereikt=False,
        ),
        CaseUnplanned(
            case_ref=case_ref,
            gemeentecode="0356",
            team="wil",
            deadline=D + timedelta(days=14),
            attempt=1,
            reason=BacklogReason.CAPACITY_EXHAUSTED,
            detected_at=datetime(2026, 10, 6, tzinfo=UTC),
        ),
    ]


def incoming(household_ref: str, *payloads: BaseModel) -> list[Incoming]:
    out = []
    for offset, payload in enumerate(payloads):
        e = Envelope.wrap(payload, key=household_ref)
        out.append(
            Incoming(
                topic=VISITS_TOPIC,
                partition=0,
                offset=offset,
                key=e.key.encode(),
                value=e.to_bytes(),
                headers=dict(e.headers()),
                timestamp_ms=0,
            )
        )
    return out


class NoDatabase:
    """A session that fails on any use."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was used ({name})")


async def test_scheduling_events_matching_does_not_use_pass_by_without_the_database() -> None:
    handler = handlers.VisitEventsHandler(POLICY, REGION)
    messages = incoming("b" * 32, *scheduling_only("a" * 32))
    await handler(NoDatabase(), messages)  # type: ignore[arg-type]
    assert handlers.parse(messages, handlers.VISIT_EVENTS) == []


async def test_among_scheduling_events_the_reports_on_a_case_are_applied_in_order() -> None:
    uow = FakeMatchingUnitOfWork(POLICY, REGION)
    h = Household("visits")
    signal = h.accepted("huur", bedrag=1400, datum=D, bsn="p")
    await services.handle_signal_events(uow, [(signal, signal.payload(SignalAccepted))])
    case = uow.matching.cases.of_signal(h.ref("huur"))
    assert case is not None
    ours: list[BaseModel] = [
        OutreachPlanned(case_ref=case.case_id, planned_on=D + timedelta(days=1)),
        ContactAttemptRecorded(  # version 2, with the optional fields
            case_ref=case.case_id,
            soort=Contactsoort.HUISBEZOEK,
            bereikt=True,
            datum=D + timedelta(days=2),
            dagdeel=Dagdeel.OCHTEND,
            attempt=1,
            visit_id="a1b2c3d4e5f60718",
            gemeentecode="0356",
            recorded_by="wil-anna",
        ),
        CaseOutcomeRecorded(
            case_ref=case.case_id,
            resultaat=Eindresultaat.GEEN_HULP_NODIG,
            datum=D + timedelta(days=2),
        ),
    ]
    others = scheduling_only(case.case_id)
    mixed = [others[0], ours[0], others[1], others[3], ours[1], others[2], ours[2], others[4]]
    parsed = handlers.parse(incoming(case.household_id, *mixed), handlers.VISIT_EVENTS)
    assert [p for _, p in parsed] == ours
    await services.handle_visit_events(uow, parsed)
    closed = uow.matching.cases[case.case_id]
    assert closed.state is CaseState.CLOSED
    assert closed.resultaat is Eindresultaat.GEEN_HULP_NODIG
    assert [a.soort for a in closed.contactpogingen] == [Contactsoort.HUISBEZOEK]


def test_a_report_matching_reads_that_does_not_validate_is_poison() -> None:
    bad = Envelope(
        type=OutreachPlanned.EVENT_TYPE,
        version=OutreachPlanned.VERSION,
        key="b" * 32,
        data={"case_ref": "a" * 32},  # no planned_on
    )
    message = Incoming(VISITS_TOPIC, 0, 0, bad.key.encode(), bad.to_bytes(), {}, 0)
    with pytest.raises(PoisonMessage, match="planned_on"):
        handlers.parse([message], handlers.VISIT_EVENTS)


def test_a_message_that_is_no_envelope_is_poison() -> None:
    message = Incoming(VISITS_TOPIC, 0, 0, b"k", b"{not json", {}, 0)
    with pytest.raises(PoisonMessage):
        handlers.parse([message], handlers.VISIT_EVENTS)
