"""Matching's use cases against the in-memory unit of work (no database, no broker): what the
handler tests see through PostgreSQL and the outbox -- cases, aliases and the events queued
-- from the service layer down."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat, Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseChange,
    CaseClosed,
    CaseOpened,
    CaseOutcomeRecorded,
    CaseUpdated,
    ContactAttemptRecorded,
    CreditorFeedbackRequested,
    CreditorStatus,
    OutreachDecided,
    OutreachKind,
    OutreachPlanned,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC
from eropaf_matching.domain.cases import Case, CaseState
from eropaf_matching.service_layer import services
from eropaf_platform.consumer import PoisonMessage
from eropaf_platform.outbox import OutgoingMessage

from ..conftest import Household
from .conftest import POLICY
from .fakes import FakeMatchingUnitOfWork

pytestmark = pytest.mark.unit

D = date(2026, 10, 5)
MODELS: dict[str, type[BaseModel]] = {
    m.EVENT_TYPE: m
    for m in (
        SignalAccepted,
        SignalUpdated,
        SignalResolved,
        OutreachPlanned,
        ContactAttemptRecorded,
        CaseOutcomeRecorded,
        CaseOpened,
        CaseUpdated,
        CaseClosed,
        OutreachDecided,
        CreditorFeedbackRequested,
    )
}


def parsed(*envelopes: Envelope) -> list[tuple[Envelope, Any]]:
    return [(e, e.payload(MODELS[e.type])) for e in envelopes]


async def signals(uow: FakeMatchingUnitOfWork, *envelopes: Envelope) -> None:
    await services.handle_signal_events(uow, parsed(*envelopes))


async def reports(uow: FakeMatchingUnitOfWork, household_ref: str, *payloads: BaseModel) -> None:
    envelopes = [Envelope.wrap(p, key=household_ref) for p in payloads]
    await services.handle_visit_events(uow, parsed(*envelopes))


def case_of(uow: FakeMatchingUnitOfWork, signal_ref: str) -> Case:
    case = uow.matching.cases.of_signal(signal_ref)
    assert case is not None, "no case holds the signal"
    return case


def events(uow: FakeMatchingUnitOfWork, *, containing: str = "") -> list[OutgoingMessage]:
    return [m for m in uow.published if containing in m.event_id]


def payload(message: OutgoingMessage) -> Any:
    """The message read back as the contracts read it (envelope, then its payload model)."""
    envelope = Envelope.from_bytes(message.value)
    assert envelope.id == message.event_id and envelope.key == message.key
    return envelope.payload(MODELS[envelope.type])


def closure_told(uow: FakeMatchingUnitOfWork, case_id: str) -> CaseClosed:
    closed = events(uow, containing=f"case-closed:{case_id}")
    assert sorted((m.topic, m.event_id) for m in closed) == [
        (CASES_TOPIC, f"case-closed:{case_id}"),
        (CREDITOR_FEEDBACK_TOPIC, f"case-closed:{case_id}:intake"),
    ]
    downstream, for_intake = sorted(closed, key=lambda m: m.topic != CASES_TOPIC)
    event = payload(downstream)
    assert payload(for_intake) == event
    assert downstream.key == for_intake.key == event.household_ref
    return event


def ids(messages: Sequence[OutgoingMessage]) -> list[str]:
    return [m.event_id for m in messages]


@pytest.fixture
def h() -> Household:
    return Household("service-layer")


# --- signals ---------------------------------------------------------------------------------


async def test_rent_energy_and_health_insurance_become_one_case_with_a_home_visit(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow, h.accepted("rent", bedrag=1200, datum=D, bsn="anna", surname="anna", address="f1")
    )
    await signals(
        uow,
        h.accepted(
            "energy",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=3),
            bsn="anna",
            address="f1",
        ),
        # Her partner's health insurance: another person, the same address.
        h.accepted(
            "zorg",
            partner="zilveren-kruis",
            type=Signaalpartner.ZORG,
            bedrag=400,
            datum=D + timedelta(days=6),
            bsn="bram",
            address="f1",
        ),
    )
    case = case_of(uow, h.ref("rent"))
    assert set(case.signals) == {h.ref("rent"), h.ref("energy"), h.ref("zorg")}
    assert case.state is CaseState.OPEN and case.gemeentecode == "0356"
    assert case.decision is not None and case.decision.outreach is OutreachKind.HOME_VISIT
    assert "huisbezoek.meerdere_schuldeisers" in case.decision.rule_ids
    assert uow.commits == 2 and uow.locked == 2

    mine = events(uow, containing=case.case_id)
    assert len([m for m in mine if m.event_id.startswith("case-opened:")]) == 1
    assert all(m.key == case.household_id for m in uow.published)  # ordered per household
    decided = [payload(m) for m in mine if m.event_id.startswith("outreach-decided:")]
    assert decided[-1].outreach is OutreachKind.HOME_VISIT
    assert decided[-1].postcode_area == "3431"
    assert decided[-1].partner_codes == ["eneco", "mitros", "zilveren-kruis"]
    picked = {m.event_id.split(":")[1] for m in events(uow, containing=":picked_up")}
    assert set(case.signals) <= picked
    for message in uow.published:  # every event reads back as its contract model
        payload(message)


async def test_signals_arriving_together_open_one_case_under_its_final_id(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow,
        *(
            h.accepted(f"s{i}", partner=f"p-{i}", bedrag=100, datum=D + timedelta(days=i), bsn="g")
            for i in (3, 2, 1)  # latest first: applied by business date
        ),
    )
    case = case_of(uow, h.ref("s1"))
    assert len(case.signals) == 3
    assert len(events(uow, containing="case-opened:")) == 1
    updates = [payload(m) for m in events(uow, containing="case-updated:")]
    assert [(u.change, u.previous_case_refs) for u in updates] == [
        (CaseChange.SIGNAL_ADDED, [])
    ] * 2  # joined, never renamed
    assert uow.matching.aliases == {}


async def test_an_earlier_dated_signal_renames_the_case_and_reports_on_the_old_id_arrive(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("late", bedrag=700, datum=D + timedelta(days=10), bsn="k"))
    first = case_of(uow, h.ref("late"))
    await signals(uow, h.accepted("early", bedrag=700, datum=D, bsn="k"))
    case = case_of(uow, h.ref("late"))
    assert case.case_id != first.case_id  # ids derive from the earliest signal
    assert uow.matching.aliases == {first.case_id: case.case_id}
    assert first.case_id not in uow.matching.cases
    updates = [payload(m) for m in events(uow, containing=f"case-updated:{case.case_id}:")]
    assert [(u.change, u.previous_case_refs) for u in updates] == [
        (CaseChange.SIGNAL_ADDED, [first.case_id])
    ]
    # Scheduling still knows the case by its first id.
    await reports(uow, case.household_id, OutreachPlanned(case_ref=first.case_id, planned_on=D))
    assert case_of(uow, h.ref("late")).state is CaseState.OUTREACH_PLANNED


async def test_a_merge_of_two_households_cases_names_both_old_refs(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow,
        h.accepted("rent", bedrag=700, datum=D + timedelta(days=4), bsn="m1", address="m-a1"),
        h.accepted(
            "energy",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=6),
            bsn="m2",
            address="m-a2",
        ),
    )
    rent, energy = case_of(uow, h.ref("rent")), case_of(uow, h.ref("energy"))
    assert rent.case_id != energy.case_id
    await signals(
        uow,
        h.accepted(
            "water", partner="vitens", type=Signaalpartner.WATER, datum=D, bsn="m1", address="m-a2"
        ),
    )
    merged = case_of(uow, h.ref("water"))
    assert set(merged.signals) == {h.ref("rent"), h.ref("energy"), h.ref("water")}
    updates = [payload(m) for m in events(uow, containing=f"case-updated:{merged.case_id}:")]
    assert [(u.change, u.previous_case_refs) for u in updates] == [
        (CaseChange.MERGED, sorted((rent.case_id, energy.case_id)))
    ]
    assert {uow.matching.aliases[rent.case_id], uow.matching.aliases[energy.case_id]} == {
        merged.case_id
    }


async def test_twins_at_one_address_are_two_persons_in_one_household(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow,
        h.accepted("twin-a", bsn="bsn-a", surname="twins", initials="j", address="flat-2"),
        h.accepted(
            "twin-b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            datum=D + timedelta(days=1),
            bsn="bsn-b",
            surname="twins",
            initials="j",
            address="flat-2",
        ),
    )
    a, b = (uow.matching.links.assignments[h.ref(n)] for n in ("twin-a", "twin-b"))
    assert a.person_id != b.person_id and a.household_id == b.household_id
    assert case_of(uow, h.ref("twin-a")) == case_of(uow, h.ref("twin-b"))


async def test_different_bsns_at_different_addresses_stay_apart(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow,
        h.accepted("one", bsn="x1", surname="de-vries-1990", address="street-1"),
        h.accepted("two", bsn="x2", surname="de-vries-1990", address="street-2"),
    )
    assert case_of(uow, h.ref("one")).case_id != case_of(uow, h.ref("two")).case_id
    links = uow.matching.links.assignments
    assert links[h.ref("one")] != links[h.ref("two")]


async def test_a_new_tenant_two_years_later_is_another_household_and_case(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(
        uow,
        h.accepted("former", bedrag=900, datum=D - timedelta(days=730), bsn="f", address="9"),
    )
    former = case_of(uow, h.ref("former"))
    await signals(
        uow,
        h.accepted("tenant", bedrag=700, datum=D, bsn="tenant", address="9"),
        h.accepted(
            "housemate",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=200),
            bsn="housemate",
            address="9",
        ),
    )
    tenant = case_of(uow, h.ref("tenant"))
    assert set(tenant.signals) == {h.ref("tenant"), h.ref("housemate")}
    assert tenant.household_id != former.household_id
    assert case_of(uow, h.ref("former")) == former
    assert not any(
        h.ref("former") in m.value.decode() for m in events(uow, containing=tenant.case_id)
    )


async def test_a_mover_keeps_the_open_case_beyond_the_address_window(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("old-flat", bedrag=1500, datum=D, bsn="mover", address="10"))
    before = case_of(uow, h.ref("old-flat"))
    later = D + timedelta(days=400)
    await signals(
        uow,
        h.accepted(
            "new-flat",
            partner="vitens",
            type=Signaalpartner.WATER,
            bedrag=200,
            datum=later,
            bsn="mover",
            address="11",
        ),
        h.accepted(
            "successor",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            datum=later,
            bsn="successor",
            address="10",
        ),
    )
    case = case_of(uow, h.ref("old-flat"))
    assert case.case_id == before.case_id and case.is_open
    assert set(case.signals) == {h.ref("old-flat"), h.ref("new-flat")}
    assert case_of(uow, h.ref("successor")).case_id != case.case_id


async def test_a_repeat_signal_is_not_picked_up_again(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("first", bedrag=500, bsn="c", address="a3"))
    await signals(
        uow, h.accepted("again", bedrag=500, datum=D + timedelta(days=30), bsn="c", address="a3")
    )
    case = case_of(uow, h.ref("first"))
    assert h.ref("again") in case.herhaalde_meldingen
    told = set(ids(events(uow, containing="creditor-feedback:")))
    assert told == {
        f"creditor-feedback:{h.ref('first')}:{CreditorStatus.PICKED_UP.value}",
        f"creditor-feedback:{h.ref('again')}:{CreditorStatus.NOT_PICKED_UP.value}",
    }


async def test_a_stale_revision_changes_nothing_and_tells_nothing(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("twice", bedrag=900, bsn="f", revision=2))
    before, told = case_of(uow, h.ref("twice")), list(uow.published)
    await signals(uow, h.accepted("twice", bedrag=950, bsn="f", revision=1))
    await signals(uow, h.accepted("twice", bedrag=950, bsn="f", revision=2))
    assert case_of(uow, h.ref("twice")) == before
    assert uow.published == told


async def test_the_decision_is_told_again_when_its_creditors_change(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    """Scheduling picks the duo's employee by the creditors (``partner_codes``)."""
    await signals(uow, h.accepted("rent", bedrag=1200, bsn="n"))
    await signals(
        uow,
        h.accepted(
            "energy",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=1),
            bsn="n",
        ),
    )
    # The same creditor again with the same debt (a repeat): no new decision, same creditors.
    await signals(uow, h.accepted("rent-2", bedrag=1200, datum=D + timedelta(days=2), bsn="n"))
    case = case_of(uow, h.ref("rent"))
    decided = events(uow, containing=f"outreach-decided:{case.case_id}:")
    assert [payload(m).partner_codes for m in decided] == [["mitros"], ["eneco", "mitros"]]
    # The energy debt is cleared: the decision stands, its creditors do not.
    await signals(uow, h.resolved("energy", D + timedelta(days=3)))
    decided = events(uow, containing=f"outreach-decided:{case.case_id}:")
    assert [payload(m).partner_codes for m in decided][-1] == ["mitros"]
    assert len(set(ids(decided))) == len(decided) == 3
    assert payload(decided[-1]).priority == payload(decided[-2]).priority


async def test_resolution_before_contact_closes_the_case_as_self_resolved(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("paid", bedrag=800, bsn="d"))
    await signals(uow, h.resolved("paid", D + timedelta(days=4)))
    case = case_of(uow, h.ref("paid"))
    assert case.state is CaseState.CLOSED
    assert case.resultaat is Eindresultaat.ZELF_BETAALD_OF_REGELING
    told = closure_told(uow, case.case_id)
    assert told.resultaat is Eindresultaat.ZELF_BETAALD_OF_REGELING
    assert told.signal_refs == [h.ref("paid")]
    # Again (a redelivery the inbox missed): nothing new.
    published = list(uow.published)
    await signals(uow, h.resolved("paid", D + timedelta(days=4)))
    await signals(uow, h.resolved("unknown", D))
    assert uow.published == published


async def test_a_move_keeps_the_open_case_and_reroutes_it(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("before", bedrag=1500, pc4="3431", bsn="e", address="n-1"))
    before = case_of(uow, h.ref("before"))
    await signals(
        uow,
        h.accepted(
            "after",
            partner="vitens",
            type=Signaalpartner.WATER,
            bedrag=200,
            pc4="3401",
            datum=D + timedelta(days=20),
            bsn="e",
            address="ij-9",
        ),
    )
    case = case_of(uow, h.ref("before"))
    assert case.case_id == before.case_id and case.gemeentecode == "0353"
    updates = [payload(m) for m in events(uow, containing=f"case-updated:{case.case_id}")]
    assert [u.change for u in updates] == [CaseChange.REROUTED]
    assert updates[0].gemeentecode == "0353" and updates[0].postcode_area == "3401"


async def test_an_address_the_region_does_not_serve_is_poison_and_nothing_is_kept(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    envelope = h.accepted("far", bsn="z")
    data = {**envelope.data, "postcode_area": "9999"}
    far = envelope.model_copy(update={"data": data})
    with pytest.raises(PoisonMessage, match="9999"):
        async with uow:  # as the batch processor: the batch's transaction rolls back
            await signals(uow, h.accepted("near", bsn="y"), far)
    assert uow.published == [] and uow.commits == 0
    assert not uow.matching.cases and not uow.matching.links.signals


# --- scheduling's reports ---------------------------------------------------------------------


async def test_visit_reports_close_the_case_and_tell_it_both_ways(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("huur", bedrag=1400, bsn="p"))
    case = case_of(uow, h.ref("huur"))
    attempt = ContactAttemptRecorded(
        case_ref=case.case_id,
        soort=Contactsoort.HUISBEZOEK,
        bereikt=False,
        datum=D + timedelta(days=4),
        dagdeel=Dagdeel.MIDDAG,
    )
    await reports(
        uow,
        case.household_id,
        OutreachPlanned(case_ref=case.case_id, planned_on=D + timedelta(days=3)),
        attempt,
        attempt,  # sent twice: recorded once
        ContactAttemptRecorded(
            case_ref=case.case_id,
            soort=Contactsoort.HUISBEZOEK,
            bereikt=True,
            datum=D + timedelta(days=6),
            dagdeel=Dagdeel.AVOND,
            attempt=2,
            recorded_by="mw-01",
        ),
        CaseOutcomeRecorded(
            case_ref=case.case_id,
            resultaat=Eindresultaat.BUDGETADVIES_OF_QUICK_FIX,
            datum=D + timedelta(days=6),
        ),
    )
    closed = case_of(uow, h.ref("huur"))
    assert closed.resultaat is Eindresultaat.BUDGETADVIES_OF_QUICK_FIX
    assert [a.bereikt for a in closed.contactpogingen] == [False, True]
    assert closed.outreach_planned_on == D + timedelta(days=3)
    assert closure_told(uow, case.case_id).resultaat is Eindresultaat.BUDGETADVIES_OF_QUICK_FIX

    # A late report on the closed case changes nothing and is no error.
    published = list(uow.published)
    await reports(uow, case.household_id, OutreachPlanned(case_ref=case.case_id, planned_on=D))
    assert case_of(uow, h.ref("huur")) == closed and uow.published == published


async def test_a_report_on_an_unknown_case_or_against_an_open_one_is_poison(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    await signals(uow, h.accepted("huur", bedrag=1400, bsn="p"))
    case = case_of(uow, h.ref("huur"))
    with pytest.raises(PoisonMessage, match="unknown case"):
        await reports(uow, case.household_id, OutreachPlanned(case_ref="f" * 32, planned_on=D))
    # An end result that needs contact, with none made.
    with pytest.raises(PoisonMessage, match="needs a contact attempt"):
        await reports(
            uow,
            case.household_id,
            CaseOutcomeRecorded(
                case_ref=case.case_id, resultaat=Eindresultaat.GEEN_HULP_NODIG, datum=D
            ),
        )
    assert case_of(uow, h.ref("huur")) == case


# --- the sweep -----------------------------------------------------------------------------------

WAIT = timedelta(days=POLICY.for_gemeente("0356").niet_opgepakt_sluiten_na_dagen)


async def test_the_sweep_closes_a_case_not_picked_up_once_its_wait_is_over(
    uow: FakeMatchingUnitOfWork, h: Household
) -> None:
    opened = date(2026, 3, 2)
    await signals(
        uow,
        h.accepted("small", bedrag=20, datum=opened, bsn="small", address="s-1"),
        h.accepted("big", bedrag=2000, datum=opened, bsn="big", address="b-1"),
    )
    small, big = case_of(uow, h.ref("small")), case_of(uow, h.ref("big"))
    assert small.opgepakt_on is None and big.opgepakt_on is not None

    assert await services.sweep_not_picked_up(uow, opened + WAIT - timedelta(days=1)) == []
    assert case_of(uow, h.ref("small")).state is CaseState.OPEN

    at = datetime(2026, 4, 1, 3, tzinfo=UTC)
    assert await services.sweep_not_picked_up(uow, opened + WAIT, at=at) == [small.case_id]
    after = case_of(uow, h.ref("small"))
    assert after.resultaat is Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN
    assert after.closed_on == opened + WAIT
    assert case_of(uow, h.ref("big")) == big  # picked up: not the sweep's
    told = closure_told(uow, small.case_id)
    assert told.closed_at == at
    feedback = events(uow, containing=f"creditor-feedback:{h.ref('small')}:")
    assert [payload(m).status for m in feedback] == [CreditorStatus.NOT_PICKED_UP]
    assert json.loads(feedback[0].value)["causation_id"] == (
        f"sweep-not-picked-up:{(opened + WAIT).isoformat()}"
    )

    published = list(uow.published)
    assert await services.sweep_not_picked_up(uow, opened + WAIT) == []
    assert await services.sweep_not_picked_up(uow, opened + WAIT + timedelta(days=1)) == []
    assert uow.published == published
