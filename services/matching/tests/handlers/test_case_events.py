"""Matching encodes its events itself (``eropaf_matching.case_events``, orjson); these tests
hold it to what the contract models give: the same bytes, headers and ids as
``Envelope.follow(payload)`` + ``outbox.envelope_message``, and payloads that validate."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from eropaf_contracts.ddas import Eindresultaat, Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseChange,
    CaseClosed,
    CaseOpened,
    CaseUpdated,
    CreditorFeedbackRequested,
    OutreachDecided,
)
from eropaf_contracts.region import load_region
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC
from eropaf_matching import case_events
from eropaf_matching.domain.cases import (
    Case,
    close_case,
    creditor_status,
    evaluate,
    resolve_signal,
)
from eropaf_matching.domain.signals import SignalFacts
from eropaf_matching.policy import load_policy
from eropaf_platform import outbox

from ..domain.conftest import make_signal

pytestmark = pytest.mark.unit

D = date(2026, 1, 5)
AT = datetime(2026, 1, 7, 10, 30, 15, 250, tzinfo=UTC)
REGION = load_region()
POLICY = load_policy(region=REGION)
CAUSE = Envelope(
    id="signal:" + "a" * 32 + ":1",
    type="eropaf.intake.signal.accepted",
    version=1,
    key="a" * 32,
    correlation_id="7a0c1c1e-6b0e-4d7e-9f5c-3c1f2b9d8e01",
    data={},
)
UNCORRELATED = CAUSE.model_copy(update={"correlation_id": None})


def _ref(name: str) -> str:
    return name.encode().hex().ljust(32, "0")[:32]


def _case(*signals: SignalFacts) -> Case:
    case = Case(
        case_id=_ref("case"),
        household_id=_ref("household"),
        opened_on=D,
        signals={s.signal_ref: s for s in signals},
    )
    return evaluate(case, [], POLICY, REGION, D).case


def _expected(
    got: outbox.OutgoingMessage, topic: str, cause: Envelope, payload: BaseModel, key: str
) -> outbox.OutgoingMessage:
    # Envelope time is "now": take the one the message carries.
    time = datetime.fromisoformat(json.loads(got.value)["time"])
    envelope = cause.follow(payload, key=key, id=got.event_id).model_copy(update={"time": time})
    return outbox.envelope_message(topic, envelope)


CASES = {
    "one signal": lambda: _case(make_signal(_ref("rent"), bedrag=1500, bsn="x")),
    "two creditors, crisis": lambda: _case(
        make_signal(_ref("rent"), bedrag=900),
        make_signal(
            _ref("energy"),
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            pc4="3401",
            datum=D + timedelta(days=2),
            crisis=True,
        ),
    ),
    "unknown amount": lambda: _case(make_signal(_ref("rent"), bedrag=None)),
    "below minimum": lambda: _case(make_signal(_ref("rent"), bedrag=10)),
    "all resolved": lambda: resolve_signal(
        _case(make_signal(_ref("rent"), bedrag=400)), _ref("rent"), D + timedelta(days=3)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cause", [CAUSE, UNCORRELATED], ids=["correlated", "uncorrelated"])
def test_case_events_are_what_the_contract_models_give(name: str, cause: Envelope) -> None:
    case = CASES[name]()
    assert case.routing is not None
    postcode_area = (case.open_signals or tuple(case.signals.values()))[-1].postcode_area
    facts: dict[str, Any] = {
        "case_ref": case.case_id,
        "household_ref": case.household_id,
        "gemeentecode": case.routing.gemeentecode,
        "team": case.routing.team,
        "postcode_area": postcode_area,
        "signal_refs": sorted(case.signals),
        "partner_types": sorted({s.partner_type for s in case.signals.values()}),
        "total_bedrag": (
            None
            if not case.open_signals or any(s.bedrag is None for s in case.open_signals)
            else sum(s.bedrag or 0 for s in case.open_signals)
        ),
        "crisis": any(s.crisissignaal for s in case.open_signals),
    }
    other_zone = AT.astimezone(timezone(timedelta(hours=1)))
    opened = case_events.case_opened(cause, case, AT)
    assert opened == _expected(
        opened, CASES_TOPIC, cause, CaseOpened(**facts, opened_at=AT), case.household_id
    )
    for change in CaseChange:
        for previous in ([], [_ref("old-case")], [_ref("absorbed"), _ref("renamed")]):
            updated = case_events.case_updated(
                cause, case, change, other_zone, about="x:r2", previous_case_refs=previous
            )
            assert updated.event_id == f"case-updated:{case.case_id}:{change.value}:x:r2"
            expected = CaseUpdated(
                **facts, change=change, updated_at=other_zone, previous_case_refs=previous
            )
            assert updated == _expected(updated, CASES_TOPIC, cause, expected, case.household_id)

    decided = case_events.outreach_decided(cause, case, AT)
    decision = case.decision
    assert decision is not None
    if not decision.picked_up:
        assert decided is None
    else:
        assert decided is not None and decision.deadline is not None
        assert decided.event_id.startswith(f"outreach-decided:{case.case_id}:")
        expected_decision = OutreachDecided(
            case_ref=case.case_id,
            household_ref=case.household_id,
            gemeentecode=case.routing.gemeentecode,
            team=case.routing.team,
            postcode_area=postcode_area,
            outreach=decision.outreach,
            urgency=decision.urgency,
            deadline=decision.deadline,
            priority=decision.priority,
            rule_ids=list(decision.rule_ids),
            decided_at=AT,
            partner_codes=sorted({s.partner_code for s in case.open_signals}),
        )
        assert decided == _expected(
            decided, CASES_TOPIC, cause, expected_decision, case.household_id
        )

    closed_case = (
        close_case(replace(case, opgepakt_on=None), Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN, D)
        if case.is_open
        else case  # resolving its last signal closed it
    )
    assert closed_case.resultaat is not None
    closed = case_events.case_closed(cause, closed_case, AT)
    expected_closed = CaseClosed(
        case_ref=case.case_id,
        household_ref=case.household_id,
        gemeentecode=case.routing.gemeentecode,
        team=case.routing.team,
        signal_refs=sorted(case.signals),
        resultaat=closed_case.resultaat,
        closed_at=AT,
    )
    # Told twice: downstream on the cases topic, intake on its own topic -- the same event
    # under its own id, keyed like the creditor feedback there, at the same envelope time.
    assert [m.event_id for m in closed] == [
        f"case-closed:{case.case_id}",
        f"case-closed:{case.case_id}:intake",
    ]
    for_downstream, for_intake = closed
    assert for_downstream == _expected(
        for_downstream, CASES_TOPIC, cause, expected_closed, case.household_id
    )
    assert for_intake == _expected(
        for_intake, CREDITOR_FEEDBACK_TOPIC, cause, expected_closed, case.household_id
    )
    downstream_envelope = json.loads(for_downstream.value)
    intake_envelope = json.loads(for_intake.value)
    assert intake_envelope.pop("id") != downstream_envelope.pop("id")
    assert intake_envelope == downstream_envelope

    statuses = {ref: creditor_status(closed_case, ref) for ref in closed_case.signals}
    feedback = [
        case_events.creditor_feedback(cause, closed_case.household_id, ref, status)
        for ref, status in sorted(statuses.items())
        if status is not None
    ]
    assert [m.event_id for m in feedback] == [
        f"creditor-feedback:{ref}:{status.value}"
        for ref, status in sorted(statuses.items())
        if status is not None
    ]
    assert feedback
    for message, ref in zip(feedback, sorted(closed_case.signals), strict=True):
        status = statuses[ref]
        expected_feedback = CreditorFeedbackRequested(signal_ref=ref, status=status)
        assert message == _expected(
            message, CREDITOR_FEEDBACK_TOPIC, cause, expected_feedback, case.household_id
        )


def test_envelope_time_is_now_in_utc() -> None:
    before = datetime.now(UTC)
    message = case_events.case_opened(CAUSE, CASES["one signal"](), AT)
    time = Envelope.from_bytes(message.value).time
    assert before <= time <= datetime.now(UTC)
    assert time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 7, 10, 30, tzinfo=UTC),
        datetime(2026, 1, 7, 10, 30, 0, 5000, tzinfo=UTC),
        datetime(2026, 1, 7, 10, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 7, 10, 30, tzinfo=timezone(timedelta(0))),
    ],
)
def test_timestamps_are_written_as_pydantic_writes_them(value: datetime) -> None:
    class Stamp(BaseModel):
        at: datetime

    assert f'{{"at":"{case_events.timestamp(value)}"}}' == Stamp(at=value).model_dump_json()


def test_one_instant_in_two_zones_is_written_in_each_zone() -> None:
    utc = datetime(2026, 1, 7, 9, 30, tzinfo=UTC)
    amsterdam = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == amsterdam  # equal datetimes ...
    assert case_events.timestamp(utc) == "2026-01-07T09:30:00Z"
    assert case_events.timestamp(amsterdam) == "2026-01-07T10:30:00+01:00"  # ... other text


def test_now_is_written_as_pydantic_writes_it() -> None:
    for _ in range(3):
        message = case_events.case_opened(CAUSE, CASES["one signal"](), AT)
        text = json.loads(message.value)["time"]
        assert case_events.timestamp(datetime.fromisoformat(text)) == text
