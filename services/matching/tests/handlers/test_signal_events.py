"""The signal-events handler on the real broker and PostgreSQL: one matching service runs for
the whole module; each test feeds intake's events to ``INTAKE_SIGNALS_TOPIC`` and looks at
matching's tables and outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from eropaf_contracts.ddas import Eindresultaat, Signaalpartner, Signaalstatus
from eropaf_contracts.events import (
    CaseChange,
    CaseUpdated,
    CreditorStatus,
    OutreachDecided,
    OutreachKind,
)
from eropaf_contracts.topics import CASES_TOPIC, INTAKE_SIGNALS_TOPIC
from eropaf_matching.adapters.repository import load_cases, resolve_case_ids
from eropaf_matching.domain.cases import Case, CaseState
from eropaf_platform.service import Service
from eropaf_platform.tables import processed_message
from eropaf_platform.testing.wait import wait_until_async

from ..conftest import Household, assignments, case_of, closure_told, outbox_events, publish


@pytest.fixture(scope="module")
def matching_options() -> dict[str, Any]:
    return {"consume_visits": False}  # only intake's events here: one group join less


pytestmark = pytest.mark.integration

D = date(2026, 10, 5)


async def settled_case(service: Service, ref: str, n_signals: int = 1, **more: object) -> Case:
    """Poll until the signal's case holds ``n_signals`` signals (and matches ``more``)."""

    async def ready() -> Case | None:
        case = await case_of(service, ref)
        if case is None or len(case.signals) < n_signals:
            return None
        if any(getattr(case, k) != v for k, v in more.items()):
            return None
        return case

    return await wait_until_async(ready, timeout=30, interval=0.1)


async def test_rent_energy_and_health_insurance_become_one_case_with_a_home_visit(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    # Name/address variants reach matching as equal tokens (intake normalises them).
    await publish(
        kafka_bootstrap_servers,
        h.accepted("rent", bedrag=1200, datum=D, bsn="anna", surname="anna", address="flat-1"),
    )
    await settled_case(matching, h.ref("rent"))
    await publish(
        kafka_bootstrap_servers,
        h.accepted(
            "energy",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=3),
            bsn="anna",
            address="flat-1",
        ),
        # Her partner's health insurance: another person, the same address -> same household.
        h.accepted(
            "zorg",
            partner="zilveren-kruis",
            type=Signaalpartner.ZORG,
            bedrag=400,
            datum=D + timedelta(days=6),
            bsn="bram",
            address="flat-1",
        ),
    )
    case = await settled_case(matching, h.ref("rent"), 3)
    assert set(case.signals) == {h.ref("rent"), h.ref("energy"), h.ref("zorg")}
    assert case.state is CaseState.OPEN and case.gemeentecode == "0356"
    assert case.decision is not None and case.decision.outreach is OutreachKind.HOME_VISIT
    assert "huisbezoek.meerdere_schuldeisers" in case.decision.rule_ids

    events = await outbox_events(matching, containing=case.case_id)
    opened = [e for e in events if e.event_id.startswith("case-opened:")]
    assert len(opened) == 1
    assert all(e.key == case.household_id for e in events)  # ordered per household
    decided = [e.payload(OutreachDecided) for e in events if e.event_id.startswith("outreach-")]
    assert decided[-1].outreach is OutreachKind.HOME_VISIT
    assert decided[-1].team and decided[-1].postcode_area == "3431"
    feedback = [e for e in await outbox_events(matching, containing="creditor-feedback:")]
    picked = {e.event_id.split(":")[1] for e in feedback if e.event_id.endswith(":picked_up")}
    assert set(case.signals) <= picked

    # The relay publishes them: the case's events arrive on the cases topic, in order.
    records = await read_key(kafka_bootstrap_servers, CASES_TOPIC, case.household_id, len(events))
    types = [r for r in records if b'"eropaf.matching.case.opened"' in r]
    assert len(types) == 1


async def read_key(bootstrap: str, topic: str, key: str, expect: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and len(found) < expect:
            batch = await consumer.getmany(timeout_ms=200)
            found += [r.value for recs in batch.values() for r in recs if r.key == key.encode()]
    finally:
        await consumer.stop()
    return found


async def test_signals_arriving_together_open_one_case_under_its_final_id(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    # Published latest first: within a batch they are applied by business date.
    await publish(
        kafka_bootstrap_servers,
        *(
            h.accepted(
                f"s{i}",
                partner=f"p-{i}",
                bedrag=100,
                datum=D + timedelta(days=i),
                bsn="g",
                address="a7",
            )
            for i in (3, 2, 1)
        ),
    )
    case = await settled_case(matching, h.ref("s1"), 3)
    events = await outbox_events(matching, containing=case.case_id)
    assert sum(e.event_id.startswith("case-opened:") for e in events) == 1


async def test_an_earlier_dated_signal_renames_the_case_and_old_ids_still_resolve(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(
        kafka_bootstrap_servers,
        h.accepted("late", bedrag=700, datum=D + timedelta(days=10), bsn="k", address="a8"),
    )
    first = await settled_case(matching, h.ref("late"))
    await publish(kafka_bootstrap_servers, h.accepted("early", bedrag=700, datum=D, bsn="k"))
    case = await settled_case(matching, h.ref("late"), 2)
    assert case.case_id != first.case_id  # ids derive from the earliest signal
    async with matching.sessions() as s:
        current = await resolve_case_ids(s, [first.case_id])
        assert current == {first.case_id: case.case_id}
        assert await load_cases(s, case_ids=[first.case_id]) == []
    # Downstream learns the new ref from the update, with the one it replaces.
    updates = [
        e.payload(CaseUpdated)
        for e in await outbox_events(matching, containing=f"case-updated:{case.case_id}:")
    ]
    assert [(u.change, u.previous_case_refs) for u in updates] == [
        (CaseChange.SIGNAL_ADDED, [first.case_id])
    ]
    assert updates[0].case_ref == case.case_id


async def test_a_merge_of_two_households_cases_names_both_old_refs(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(
        kafka_bootstrap_servers,
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
    rent = await settled_case(matching, h.ref("rent"))
    energy = await settled_case(matching, h.ref("energy"))
    assert rent.case_id != energy.case_id
    # m1 moved in at m2's address; the creditor's signal is dated before both: the case
    # that survives the merge gets a new id too.
    await publish(
        kafka_bootstrap_servers,
        h.accepted(
            "water", partner="vitens", type=Signaalpartner.WATER, datum=D, bsn="m1", address="m-a2"
        ),
    )
    merged = await settled_case(matching, h.ref("water"), 3)
    assert set(merged.signals) == {h.ref("rent"), h.ref("energy"), h.ref("water")}
    assert merged.case_id not in (rent.case_id, energy.case_id)
    updates = [
        e.payload(CaseUpdated)
        for e in await outbox_events(matching, containing=f"case-updated:{merged.case_id}:")
    ]
    assert [(u.change, u.previous_case_refs) for u in updates] == [
        (CaseChange.MERGED, sorted((rent.case_id, energy.case_id)))
    ]
    async with matching.sessions() as s:
        current = await resolve_case_ids(s, [rent.case_id, energy.case_id])
    assert set(current.values()) == {merged.case_id}


async def test_twins_at_one_address_are_two_persons_in_one_household(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    # Same birth date and surname, same address -- but two citizen service numbers.
    await publish(
        kafka_bootstrap_servers,
        h.accepted("twin-a", bsn="bsn-a", surname="twins", initials="j-flat", address="flat-2"),
        h.accepted(
            "twin-b",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            datum=D + timedelta(days=1),
            bsn="bsn-b",
            surname="twins",
            initials="j-flat",
            address="flat-2",
        ),
    )
    await settled_case(matching, h.ref("twin-a"), 2)
    linked = await assignments(matching, h.ref("twin-a"), h.ref("twin-b"))
    (person_a, household_a), (person_b, household_b) = (
        linked[h.ref("twin-a")],
        linked[h.ref("twin-b")],
    )
    assert person_a != person_b
    assert household_a == household_b


async def test_different_bsns_at_different_addresses_stay_apart(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    # Same surname token (a common name and birth date), different BSN and address.
    await publish(
        kafka_bootstrap_servers,
        h.accepted("one", bsn="x1", surname="de-vries-1990", address="street-1"),
        h.accepted("two", bsn="x2", surname="de-vries-1990", address="street-2"),
    )
    one = await settled_case(matching, h.ref("one"))
    two = await settled_case(matching, h.ref("two"))
    assert one.case_id != two.case_id
    linked = await assignments(matching, h.ref("one"), h.ref("two"))
    assert linked[h.ref("one")] != linked[h.ref("two")]


async def test_a_repeat_signal_is_not_picked_up_again(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(kafka_bootstrap_servers, h.accepted("first", bedrag=500, bsn="c", address="a3"))
    first = await settled_case(matching, h.ref("first"))
    assert first.decision is not None and first.decision.picked_up
    # A month later the same creditor signals the same (not grown) debt again.
    await publish(
        kafka_bootstrap_servers,
        h.accepted("again", bedrag=500, datum=D + timedelta(days=30), bsn="c", address="a3"),
    )
    case = await settled_case(matching, h.ref("first"), 2)
    assert case.case_id == first.case_id
    assert h.ref("again") in case.herhaalde_meldingen
    assert case.signal_status(h.ref("again")) is Signaalstatus.NIET_OPGEPAKT_HERHAALDE_MELDING
    assert case.signal_status(h.ref("first")) is None  # picked up
    ids = {e.event_id for e in await outbox_events(matching, containing="creditor-feedback:")}
    assert f"creditor-feedback:{h.ref('again')}:{CreditorStatus.NOT_PICKED_UP.value}" in ids
    assert f"creditor-feedback:{h.ref('first')}:{CreditorStatus.PICKED_UP.value}" in ids
    assert f"creditor-feedback:{h.ref('again')}:picked_up" not in ids


async def test_resolution_before_contact_closes_the_case_as_self_resolved(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(kafka_bootstrap_servers, h.accepted("paid", bedrag=800, bsn="d", address="a4"))
    opened = await settled_case(matching, h.ref("paid"))
    assert opened.is_open
    await publish(kafka_bootstrap_servers, h.resolved("paid", D + timedelta(days=4)))
    case = await settled_case(matching, h.ref("paid"), state=CaseState.CLOSED)
    assert case.resultaat is Eindresultaat.ZELF_BETAALD_OF_REGELING
    assert case.resultaat.value == "Inwoner heeft zelf al betaald/betalingsregeling getroffen"
    payload = await closure_told(matching, case.case_id)
    assert payload.resultaat is Eindresultaat.ZELF_BETAALD_OF_REGELING
    assert payload.signal_refs == [h.ref("paid")]


async def test_a_move_keeps_the_open_case_and_reroutes_it(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(
        kafka_bootstrap_servers,
        h.accepted("before-move", bedrag=1500, pc4="3431", bsn="e", address="nieuwegein-1"),
    )
    before = await settled_case(matching, h.ref("before-move"))
    assert before.gemeentecode == "0356"
    # Same person (BSN), new address in IJsselstein, another creditor.
    await publish(
        kafka_bootstrap_servers,
        h.accepted(
            "after-move",
            partner="vitens",
            type=Signaalpartner.WATER,
            bedrag=200,
            pc4="3401",
            datum=D + timedelta(days=20),
            bsn="e",
            address="ijsselstein-9",
        ),
    )
    case = await settled_case(matching, h.ref("before-move"), 2)
    assert case.case_id == before.case_id and case.is_open
    assert case.gemeentecode == "0353"  # handled where the household lives now
    updates = [
        e.payload(CaseUpdated)
        for e in await outbox_events(matching, containing=f"case-updated:{case.case_id}")
    ]
    assert [u.change for u in updates] == [CaseChange.REROUTED]
    assert updates[0].gemeentecode == "0353" and updates[0].postcode_area == "3401"


async def test_a_new_tenant_two_years_later_is_another_household_and_case(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    two_years_ago = D - timedelta(days=2 * 365)
    await publish(
        kafka_bootstrap_servers,
        h.accepted("former", bedrag=900, datum=two_years_ago, bsn="former", address="flat-9"),
    )
    former = await settled_case(matching, h.ref("former"))
    # The next tenant of the same flat, and (in the same batch) a housemate signalled within
    # the window: one household of their own, one case of their own.
    await publish(
        kafka_bootstrap_servers,
        h.accepted("tenant", bedrag=700, datum=D, bsn="tenant", address="flat-9"),
        h.accepted(
            "housemate",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            bedrag=300,
            datum=D + timedelta(days=200),
            bsn="housemate",
            address="flat-9",
        ),
    )
    tenant = await settled_case(matching, h.ref("tenant"), 2)
    assert set(tenant.signals) == {h.ref("tenant"), h.ref("housemate")}
    assert tenant.case_id != former.case_id
    assert tenant.household_id != former.household_id
    former_now = await settled_case(matching, h.ref("former"))
    assert set(former_now.signals) == {h.ref("former")}
    assert former_now.case_id == former.case_id
    linked = await assignments(matching, h.ref("former"), h.ref("tenant"), h.ref("housemate"))
    assert linked[h.ref("tenant")][1] == linked[h.ref("housemate")][1] == tenant.household_id
    assert linked[h.ref("former")][1] == former.household_id
    # The new case's events never carry the former tenant's signal.
    events = await outbox_events(matching, containing=tenant.case_id)
    assert sum(e.event_id.startswith("case-opened:") for e in events) == 1
    assert not any(h.ref("former") in json.dumps(e.envelope) for e in events)


async def test_a_mover_keeps_the_open_case_beyond_the_address_window(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    await publish(
        kafka_bootstrap_servers,
        h.accepted("old-flat", bedrag=1500, datum=D, bsn="mover", address="flat-10"),
    )
    before = await settled_case(matching, h.ref("old-flat"))
    later = D + timedelta(days=400)  # more than the window after the first signal
    await publish(
        kafka_bootstrap_servers,
        # The same person (BSN) at a new address ...
        h.accepted(
            "new-flat",
            partner="vitens",
            type=Signaalpartner.WATER,
            bedrag=200,
            datum=later,
            bsn="mover",
            address="flat-11",
        ),
        # ... and whoever lives at the old address now.
        h.accepted(
            "successor",
            partner="eneco",
            type=Signaalpartner.ENERGIE,
            datum=later,
            bsn="successor",
            address="flat-10",
        ),
    )
    case = await settled_case(matching, h.ref("old-flat"), 2)
    assert case.case_id == before.case_id and case.is_open
    assert set(case.signals) == {h.ref("old-flat"), h.ref("new-flat")}
    successor = await settled_case(matching, h.ref("successor"))
    assert successor.case_id != case.case_id
    linked = await assignments(matching, h.ref("old-flat"), h.ref("new-flat"))
    assert linked[h.ref("old-flat")] == linked[h.ref("new-flat")]  # one person, one household


async def test_a_redelivered_event_has_no_second_effect(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    h = household
    same = h.accepted("twice", bedrag=900, bsn="f", address="a6", id="fixed-" + h.salt)
    await publish(kafka_bootstrap_servers, same)
    case = await settled_case(matching, h.ref("twice"))
    before = await outbox_events(matching, containing=case.case_id)
    # The same envelope again (as after a broker restart), then a later signal of the same
    # key so that we know the copy has been consumed by the time the later one is in.
    await publish(kafka_bootstrap_servers, same, same)
    await publish(
        kafka_bootstrap_servers,
        h.accepted("twice", bedrag=950, bsn="f", address="a6", revision=2),
    )

    async def revised() -> bool:
        c = await case_of(matching, h.ref("twice"))
        return c is not None and c.signals[h.ref("twice")].revision == 2

    await wait_until_async(revised, timeout=30, interval=0.1)
    after = await outbox_events(matching, containing=case.case_id)
    assert [e.event_id for e in after if e.event_id.startswith("case-opened")] == [
        e.event_id for e in before if e.event_id.startswith("case-opened")
    ]
    async with matching.sessions() as s:
        seen = await s.scalar(
            sa.select(sa.func.count())
            .select_from(processed_message)
            .where(processed_message.c.message_id == same.id)
        )
    assert seen == 1
    case = await settled_case(matching, h.ref("twice"))
    assert len(case.signals) == 1


async def test_an_unparseable_message_goes_to_the_dead_letter_topic(
    matching: Service, kafka_bootstrap_servers: str, household: Household
) -> None:
    await publish(kafka_bootstrap_servers, raw=[b"{not json " + household.salt.encode()])

    async def dead_lettered() -> bool:
        events = await outbox_events(matching, containing="dlq:matching-signals:")
        return any(e.topic == f"{INTAKE_SIGNALS_TOPIC}.dlq" for e in events)

    await wait_until_async(dead_lettered, timeout=30, interval=0.1)
