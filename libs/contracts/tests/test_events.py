from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner
from eropaf_contracts.events import (
    EVENT_PAYLOADS,
    BacklogReason,
    CaseClosed,
    CaseOpened,
    CaseOutcomeRecorded,
    CaseUnplanned,
    CaseUpdated,
    ContactAttemptRecorded,
    CreditorFeedbackRequested,
    DeliveryChannel,
    EventPayload,
    MatchTokenKind,
    NotificationDelivered,
    NotificationFailed,
    OutreachDecided,
    OutreachKind,
    OutreachPlanned,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
    StaffChanged,
    StaffRole,
    Urgency,
    VisitCancelled,
    VisitCancelReason,
    VisitCompleted,
    VisitPlanned,
    VisitRescheduled,
    payload_type,
)

pytestmark = pytest.mark.unit

REF = "0123456789abcdef" * 2
NOW = datetime(2025, 1, 5, 10, 30, tzinfo=UTC)
AMS = timezone(timedelta(hours=1))
VISIT_ID = "a1b2c3d4e5f60718"

SIGNAL: dict[str, Any] = {
    "signal_ref": REF,
    "partner_code": "mitros",
    "partner_type": Signaalpartner.HUUR,
    "gemeentecode": "0356",
    "postcode_area": "3431",
    "bedrag": 450,
    "ontstaansdatum": date(2024, 12, 10),
    "signaaldatum": date(2025, 1, 5),
    "crisissignaal": False,
    "warme_overdracht": True,
    "match_tokens": {MatchTokenKind.BSN: REF, MatchTokenKind.ADDRESS: REF},
    "received_at": NOW,
    "revision": 1,
}
CASE: dict[str, Any] = {
    "case_ref": REF,
    "household_ref": REF,
    "gemeentecode": "0356",
    "team": "wil",
    "postcode_area": "3431",
    "signal_refs": [REF],
    "partner_types": [Signaalpartner.HUUR],
}
VISIT: dict[str, Any] = {
    "visit_id": VISIT_ID,
    "case_ref": REF,
    "gemeentecode": "0356",
    "team": "wil",
    "postcode_area": "3431",
    "datum": date(2025, 1, 7),
    "dagdeel": Dagdeel.OCHTEND,
    "start": datetime(2025, 1, 7, 9, 0, tzinfo=AMS),
    "end": datetime(2025, 1, 7, 10, 0, tzinfo=AMS),
    "staff": ["mitros-jan", "wil-anna"],
    "sequence": 0,
    "attempt": 1,
    "deadline": date(2025, 1, 19),
}
SAMPLES: list[BaseModel] = [
    SignalAccepted(**SIGNAL),
    SignalUpdated(**(SIGNAL | {"revision": 2})),
    SignalResolved(signal_ref=REF, datum_opgelost=date(2025, 2, 1)),
    CaseOpened(**CASE, opened_at=NOW),
    CaseUpdated(**CASE, change="signal_added", updated_at=NOW),
    CaseUpdated(
        **CASE, change="merged", updated_at=NOW, previous_case_refs=["fedcba9876543210" * 2]
    ),
    OutreachDecided(
        case_ref=REF,
        household_ref=REF,
        gemeentecode="0356",
        team="wil",
        postcode_area="3431",
        outreach=OutreachKind.HOME_VISIT,
        urgency=Urgency.HIGH,
        deadline=date(2025, 1, 19),
        priority=10,
        rule_ids=["amount>=400", "crisis"],
        decided_at=NOW,
    ),
    CaseClosed(
        case_ref=REF,
        household_ref=REF,
        gemeentecode="0356",
        team="wil",
        signal_refs=[REF],
        resultaat=Eindresultaat.BUDGETADVIES_OF_QUICK_FIX,
        closed_at=NOW,
    ),
    CreditorFeedbackRequested(signal_ref=REF, status="picked_up"),
    VisitPlanned(**VISIT),
    VisitRescheduled(
        **(VISIT | {"sequence": 1, "staff": ["mitros-jan", "wil-bert"]}),
        previous_datum=date(2025, 1, 7),
        previous_dagdeel=Dagdeel.OCHTEND,
        previous_start=datetime(2025, 1, 7, 9, 0, tzinfo=AMS),
        previous_end=datetime(2025, 1, 7, 10, 0, tzinfo=AMS),
        previous_staff=["mitros-jan", "wil-anna"],
    ),
    VisitCancelled(**(VISIT | {"sequence": 2}), reason=VisitCancelReason.CASE_CLOSED),
    VisitCompleted(
        visit_id=VISIT_ID,
        case_ref=REF,
        gemeentecode="0356",
        datum=date(2025, 1, 7),
        staff=["mitros-jan", "wil-anna"],
        attempt=1,
        bereikt=False,
    ),
    OutreachPlanned(case_ref=REF, planned_on=date(2025, 1, 7)),
    ContactAttemptRecorded(
        case_ref=REF,
        soort=Contactsoort.KAARTJE,
        bereikt=False,
        datum=date(2025, 1, 7),
        dagdeel=Dagdeel.OCHTEND,
        attempt=1,
        visit_id=VISIT_ID,
        gemeentecode="0356",
        recorded_by="wil-anna",
    ),
    CaseOutcomeRecorded(
        case_ref=REF, resultaat=Eindresultaat.DEFINITIEF_GEEN_CONTACT, datum=date(2025, 1, 21)
    ),
    CaseUnplanned(
        case_ref=REF,
        gemeentecode="0356",
        team="wil",
        deadline=date(2025, 1, 19),
        attempt=1,
        reason=BacklogReason.CAPACITY_EXHAUSTED,
        detected_at=NOW,
    ),
    StaffChanged(
        code="wil-anna",
        naam="Anna de Vries",
        email="anna@wil.example",
        organisatie="wil",
        rol=StaffRole.SCHULDHULPVERLENER,
        gemeenten=["0356", "0353"],
        taal="nl",
        bericht="direct",
        changed_at=NOW,
    ),
    NotificationDelivered(
        notification_id=VISIT_ID,
        fact="visit.planned",
        recipient="wil-anna",
        channel=DeliveryChannel.EMAIL,
        case_ref=REF,
        message_id="<x@eropaf>",
        attempts=1,
        delivered_at=NOW,
    ),
    NotificationFailed(
        notification_id=VISIT_ID,
        fact="visit.planned",
        recipient="wil-anna",
        channel=DeliveryChannel.WEBHOOK,
        message_id="<x@eropaf>",
        attempts=3,
        reason="550 mailbox unavailable",
        failed_at=NOW,
    ),
]
# Staff are not data subjects: their name and address may travel (CONTRACT §4.1).
STAFF_PAYLOADS = {StaffChanged}

# Any of these in a field name would mean personal data leaks out of intake.
PERSONAL = re.compile(
    r"bsn|burgerservice|naam|name|voorletter|initial|geboorte|birth|straat|street|huisnummer|"
    r"house_?number|postcode$|email|telefoon|phone|contact",
    re.IGNORECASE,
)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trips_through_json(payload: BaseModel) -> None:
    data = json.loads(json.dumps(payload.model_dump(mode="json", by_alias=True)))
    assert type(payload).model_validate(data) == payload


def test_every_payload_is_registered_and_sampled() -> None:
    assert {type(p) for p in SAMPLES} == set(EVENT_PAYLOADS.values())
    for event_type, cls in EVENT_PAYLOADS.items():
        assert payload_type(event_type) is cls
        assert issubclass(cls, EventPayload)
        assert cls.EVENT_TYPE.startswith("eropaf.") and cls.VERSION >= 1


@pytest.mark.parametrize(
    "cls",
    [c for c in EVENT_PAYLOADS.values() if c not in STAFF_PAYLOADS],
    ids=lambda c: c.__name__,
)
def test_no_personal_fields(cls: type[BaseModel]) -> None:
    def names(schema: dict[str, Any]) -> set[str]:
        found = set(schema.get("properties", {}))
        for sub in schema.get("$defs", {}).values():
            found |= names(sub)
        return found

    leaks = {n for n in names(cls.model_json_schema()) if PERSONAL.search(n)}
    assert leaks == set()


@pytest.mark.parametrize(
    "changes",
    [
        {"signal_ref": "Jansen"},
        {"postcode_area": "3431AB"},
        {"gemeentecode": "356"},
        {"bedrag": "450"},
        {"revision": 0},
        {"match_tokens": {"name": REF}},
        {"received_at": "2025-01-05T10:30:00"},
        {"achternaam": "Jansen"},
    ],
)
def test_signal_accepted_rejects(changes: dict[str, Any]) -> None:
    data = SignalAccepted(**SIGNAL).model_dump(mode="json") | changes
    with pytest.raises(ValidationError):
        SignalAccepted.model_validate(data)


def test_a_case_update_without_previous_refs_names_none() -> None:
    # Version 1 had no previous_case_refs: such a payload still reads, as "no rename".
    data = CaseUpdated(**CASE, change="signal_added", updated_at=NOW).model_dump(mode="json")
    del data["previous_case_refs"]
    assert CaseUpdated.model_validate(data).previous_case_refs == []


def test_previous_case_refs_are_pseudonyms() -> None:
    data = CaseUpdated(**CASE, change="merged", updated_at=NOW).model_dump(mode="json")
    with pytest.raises(ValidationError):
        CaseUpdated.model_validate(data | {"previous_case_refs": ["Jansen"]})


def test_update_needs_a_later_revision() -> None:
    with pytest.raises(ValidationError):
        SignalUpdated(**SIGNAL)
