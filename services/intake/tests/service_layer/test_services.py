"""Intake's use cases against the in-memory unit of work: the feedback every partner message
gets, what is stored, and the events queued (no database, no broker)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from eropaf_contracts.cloudevents import SIGNAL_RESOLVED_TYPE, format_ce_time
from eropaf_contracts.ddas import Eindresultaat, Signaalpartner
from eropaf_contracts.envelope import Envelope
from eropaf_contracts.events import (
    CaseClosed,
    CreditorFeedbackRequested,
    CreditorStatus,
    MatchTokenKind,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.region import load_region
from eropaf_contracts.topics import INTAKE_SIGNALS_TOPIC, feedback_topic
from eropaf_intake.adapters import jws
from eropaf_intake.adapters.crypto import parse_keyring
from eropaf_intake.domain.admission import PartnerMessage
from eropaf_intake.domain.match_tokens import signal_ref
from eropaf_intake.domain.validation import Limits
from eropaf_intake.service_layer import services
from eropaf_intake.service_layer.services import IntakeConfig
from eropaf_platform.outbox import OutgoingMessage

from .fakes import FakeIntakeUnitOfWork

pytestmark = pytest.mark.unit

CODE = "fake-corp"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
KEY = b"service-layer-pseudonym-key-" + b"k" * 32
CONFIG = IntakeConfig(
    region=load_region(None),
    pseudonym_key=KEY,
    keyring=parse_keyring("s1:" + base64.b64encode(b"s" * 32).decode()),
    limits=Limits(max_value_bytes=4096),
    today=lambda: TODAY,
    now=lambda: NOW,
)


class Partner:
    """A partner registered in the fake directory, sending through the Kafka channel."""

    def __init__(self, uow: FakeIntakeUnitOfWork, code: str = CODE) -> None:
        self.code = code
        self.private, self.kid = uow.partners.onboard(code, Signaalpartner.HUUR)
        self.sent = 0

    def message(
        self,
        body: dict[str, Any] | bytes,
        *,
        ce_id: str | None = "auto",
        ce_type: str = "nl.vroegsignalering.signal.submitted.v1",
        signed: bool = True,
        private: jws.Ed25519PrivateKey | None = None,
        kid: str | None = None,
        ce_source: str | None = None,
    ) -> PartnerMessage:
        self.sent += 1
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        signature = (
            jws.sign_detached(value, private or self.private, kid or self.kid) if signed else None
        )
        return PartnerMessage(
            partner_code=self.code,
            value=value,
            ce_type=ce_type,
            ce_id=f"ce-{self.sent}" if ce_id == "auto" else ce_id,
            ce_source=ce_source or self.code,
            signature=signature,
            fallback_key=f"arrears.signals.{self.code}:0:{self.sent}",
            message_id=f"msg-{self.code}-{self.sent}",
        )


def a_signal(signal_id: str, *, signaaldatum: str = "2026-11-10", bedrag: int = 120) -> Any:
    return {
        "ID": signal_id,
        "bedrag": bedrag,
        "ontstaansdatum": "2026-08-01",
        "signaaldatum": signaaldatum,
        "signaalpartner": {"type": "Huur"},
        "client": {
            "Burgerservicenummer": "111222333",
            "Achternaam": "Dijk",
            "Geboortedatum": "1980-04-01",
            "Postcode": "3431 AB",
            "Huisnummer": "1",
        },
    }


def ref_of(signal_id: str, code: str = CODE) -> str:
    return signal_ref(KEY, code, signal_id)


def feedback_of(uow: FakeIntakeUnitOfWork) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in uow.published if m.topic.startswith("arrears.feedback.")]


def events_of(uow: FakeIntakeUnitOfWork) -> list[Envelope]:
    return [Envelope.from_bytes(m.value) for m in uow.published if m.topic == INTAKE_SIGNALS_TOPIC]


def reason_codes(feedback: dict[str, Any]) -> set[str]:
    return {r["code"] for r in feedback["reasons"]}


async def accept(uow: FakeIntakeUnitOfWork, *messages: PartnerMessage) -> list[Any]:
    return await services.accept_partner_messages(uow, CONFIG, list(messages))


@pytest.fixture
def uow() -> FakeIntakeUnitOfWork:
    return FakeIntakeUnitOfWork()


@pytest.fixture
def partner(uow: FakeIntakeUnitOfWork) -> Partner:
    return Partner(uow)


# --- accepted -------------------------------------------------------------------------------


async def test_an_accepted_signal_is_stored_told_and_announced(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    message = partner.message(a_signal("S-1"))
    [feedback] = await accept(uow, message)

    assert (feedback.id, feedback.ce_id, feedback.status, feedback.reasons) == (
        "S-1",
        "ce-1",
        "accepted",
        [],
    )
    ref = ref_of("S-1")
    stored = uow.signals.rows[ref]
    assert (stored.partner_code, stored.signal_id, stored.revision) == (CODE, "S-1", 1)
    assert stored.signaaldatum == date(2026, 11, 10) and stored.accepted_at == NOW
    # Personal data goes to the personal store, under the household's key: the address token.
    record = uow.personal_data.records[ref]
    assert record.fields["client"]["Achternaam"] == "Dijk"
    assert stored.household_key == record.household_key
    [event] = events_of(uow)
    assert (event.type, event.key, event.id) == (
        SignalAccepted.EVENT_TYPE,
        ref,
        f"signal:{ref}:1",
    )
    assert event.correlation_id == "ce-1"
    accepted = event.payload(SignalAccepted)
    assert accepted.revision == 1 and accepted.gemeentecode == "0356" and accepted.bedrag == 120
    assert stored.household_key == accepted.match_tokens[MatchTokenKind.ADDRESS]
    assert "Dijk" not in event.to_bytes().decode()  # pseudonymous: no personal data
    assert uow.commits == 1


async def test_the_feedback_message_follows_the_contract(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    message = partner.message(a_signal("S-2"))
    await accept(uow, message)

    [sent] = [m for m in uow.published if m.topic == feedback_topic(CODE)]
    assert sent.key == "S-2"
    # One feedback per partner message however often it is redelivered: the outbox
    # deduplicates on this id.
    assert sent.event_id == f"feedback:{CODE}:{message.message_id}"
    # CloudEvents headers as on partner messages: ce_time in UTC with Z, no signature.
    assert sent.headers == [
        ("ce_specversion", "1.0"),
        ("ce_id", f"feedback:{message.message_id}"),
        ("ce_source", "eropaf-intake"),
        ("ce_type", "nl.vroegsignalering.signal.feedback.v1"),
        ("ce_time", "2026-11-20T10:00:00Z"),
        ("content-type", "application/json"),
    ]
    assert json.loads(sent.value) == {
        "ID": "S-2",
        "ce_id": "ce-1",
        "status": "accepted",
        "reasons": [],
        "time": json.loads(sent.value)["time"],
    }


async def test_one_feedback_per_message_keyed_as_the_contract_says(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    good = a_signal("S-3")
    messages = [
        partner.message(good, ce_id="ce-a"),
        partner.message(b"not json", ce_id="ce-b"),
        partner.message(b"not json either", ce_id=None),  # no ID, no ce_id: topic:part:offset
        partner.message(good, ce_id="ce-d", signed=False),
    ]
    feedbacks = await accept(uow, *messages)

    assert [(f.ce_id, f.status) for f in feedbacks] == [
        ("ce-a", "accepted"),
        ("ce-b", "rejected"),
        (None, "rejected"),
        ("ce-d", "rejected"),
    ]
    keys = [m.key for m in uow.published if m.topic == feedback_topic(CODE)]
    assert keys == [
        "S-3",
        "ce-b",
        messages[2].fallback_key,
        "ce-d",  # unauthenticated content is not read, not even its ID
    ]
    bodies = feedback_of(uow)
    assert reason_codes(bodies[1]) == {"invalid_json"}
    assert reason_codes(bodies[3]) == {"missing_signature"}
    assert [e.type for e in events_of(uow)] == [SignalAccepted.EVENT_TYPE]


async def test_the_whole_batch_is_one_lookup_one_write_per_table_and_one_commit(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, *(partner.message(a_signal(f"B-{n}")) for n in range(20)))
    assert uow.signals.lookups == 1
    assert uow.signals.writes == 1
    assert uow.personal_data.writes == 1
    assert uow.partners.loads == 1
    assert uow.commits == 1
    assert len(uow.signals.rows) == 20 and len(events_of(uow)) == 20
    # Event then feedback, message by message: the publishing order follows the batch.
    topics = [m.topic for m in uow.published]
    assert topics == [INTAKE_SIGNALS_TOPIC, feedback_topic(CODE)] * 20


async def test_nothing_is_written_for_a_batch_of_rejections(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(b"{}"), partner.message(b"[]"))
    assert uow.signals.writes == 0 and uow.personal_data.writes == 0
    assert [f["status"] for f in feedback_of(uow)] == ["rejected", "rejected"]
    assert events_of(uow) == []


# --- revisions ------------------------------------------------------------------------------


async def test_the_same_content_again_is_a_duplicate(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-4")))
    # Normalised before comparing: the postcode spelt differently is the same content.
    again = a_signal("S-4")
    again["client"]["Postcode"] = "3431ab"
    [feedback] = await accept(uow, partner.message(again))

    assert feedback.status == "duplicate" and feedback.reasons == []
    assert len(events_of(uow)) == 1
    assert uow.signals.rows[ref_of("S-4")].revision == 1
    assert uow.signals.writes == 1  # nothing new to save


async def test_a_later_signaaldatum_with_other_content_is_a_new_revision(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-5")))
    newer = a_signal("S-5", signaaldatum="2026-11-15", bedrag=300)
    [feedback] = await accept(uow, partner.message(newer))

    assert feedback.status == "accepted"
    ref = ref_of("S-5")
    _, second = events_of(uow)
    assert (second.type, second.id) == (SignalUpdated.EVENT_TYPE, f"signal:{ref}:2")
    updated = second.payload(SignalUpdated)
    assert (updated.revision, updated.bedrag) == (2, 300)
    stored = uow.signals.rows[ref]
    assert (stored.revision, stored.signaaldatum) == (2, date(2026, 11, 15))


@pytest.mark.parametrize(
    "signaaldatum",
    ["2026-11-10", "2026-11-01"],  # the same date (a clash), an earlier one (a stale version)
)
async def test_other_content_that_is_not_later_is_a_conflict_and_changes_nothing(
    uow: FakeIntakeUnitOfWork, partner: Partner, signaaldatum: str
) -> None:
    await accept(uow, partner.message(a_signal("S-6")))
    before = uow.signals.rows[ref_of("S-6")]
    stale = a_signal("S-6", signaaldatum=signaaldatum, bedrag=999)
    [feedback] = await accept(uow, partner.message(stale))

    assert feedback.status == "rejected"
    assert [(r.code, r.field) for r in feedback.reasons] == [("conflict", "ID")]
    assert uow.signals.rows[ref_of("S-6")] == before
    assert uow.personal_data.records[ref_of("S-6")].updated_at == NOW
    assert [e.type for e in events_of(uow)] == [SignalAccepted.EVENT_TYPE]


async def test_versions_of_one_signal_in_one_batch_are_decided_in_order(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    feedbacks = await accept(
        uow,
        partner.message(a_signal("S-7")),
        partner.message(a_signal("S-7")),
        partner.message(a_signal("S-7", signaaldatum="2026-11-12", bedrag=200)),
        partner.message(a_signal("S-7", signaaldatum="2026-11-11", bedrag=150)),
    )
    assert [f.status for f in feedbacks] == ["accepted", "duplicate", "accepted", "rejected"]
    accepted, updated = events_of(uow)
    assert accepted.payload(SignalAccepted).revision == 1
    assert updated.payload(SignalUpdated).revision == 2
    assert uow.signals.rows[ref_of("S-7")].revision == 2
    assert uow.signals.writes == 1


async def test_the_same_id_of_two_partners_is_two_signals(uow: FakeIntakeUnitOfWork) -> None:
    one, other = Partner(uow, "one-corp"), Partner(uow, "other-corp")
    feedbacks = await accept(uow, one.message(a_signal("X-1")), other.message(a_signal("X-1")))
    assert [f.status for f in feedbacks] == ["accepted", "accepted"]
    assert set(uow.signals.rows) == {ref_of("X-1", "one-corp"), ref_of("X-1", "other-corp")}


# --- resolutions ----------------------------------------------------------------------------


def resolution(signal_id: str, datum: str = "2026-11-18") -> dict[str, Any]:
    return {"ID": signal_id, "datumOpgelost": datum}


async def test_a_resolution_of_an_unknown_signal_is_rejected(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    [feedback] = await accept(
        uow, partner.message(resolution("NOPE"), ce_type=SIGNAL_RESOLVED_TYPE)
    )
    assert feedback.id == "NOPE" and feedback.status == "rejected"
    assert [(r.code, r.field) for r in feedback.reasons] == [("unknown_signal", "ID")]
    assert events_of(uow) == [] and uow.signals.rows == {}


async def test_a_resolution_is_stored_and_announced_once(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-8")))
    first, second = await accept(
        uow,
        partner.message(resolution("S-8"), ce_type=SIGNAL_RESOLVED_TYPE),
        partner.message(resolution("S-8", "2026-11-19"), ce_type=SIGNAL_RESOLVED_TYPE),
    )
    assert (first.status, second.status) == ("accepted", "duplicate")
    ref = ref_of("S-8")
    assert uow.signals.rows[ref].resolved_on == date(2026, 11, 18)
    resolved = events_of(uow)[-1]
    assert (resolved.type, resolved.id) == (SignalResolved.EVENT_TYPE, f"resolved:{ref}")
    assert resolved.payload(SignalResolved).datum_opgelost == date(2026, 11, 18)
    assert len(events_of(uow)) == 2

    # A later revision keeps the resolution.
    await accept(uow, partner.message(a_signal("S-8", signaaldatum="2026-11-19", bedrag=9)))
    assert uow.signals.rows[ref].resolved_on == date(2026, 11, 18)


async def test_a_signal_and_its_resolution_in_one_batch(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    feedbacks = await accept(
        uow,
        partner.message(a_signal("S-9")),
        partner.message(resolution("S-9"), ce_type=SIGNAL_RESOLVED_TYPE),
    )
    assert [f.status for f in feedbacks] == ["accepted", "accepted"]
    stored = uow.signals.rows[ref_of("S-9")]
    assert (stored.revision, stored.resolved_on) == (1, date(2026, 11, 18))
    assert [e.type for e in events_of(uow)] == [
        SignalAccepted.EVENT_TYPE,
        SignalResolved.EVENT_TYPE,
    ]


# --- who sent it ----------------------------------------------------------------------------


async def test_signatures_and_senders_are_checked(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    other = Partner(uow, "other-corp")
    stranger_key, stranger_kid = jws.generate_key_pair()[0], "not-registered"
    old_key, old_kid = partner.private, partner.kid
    partner.private, partner.kid = uow.partners.add_key(CODE)
    uow.partners.revoke(CODE, old_kid)
    body = a_signal("S-10")
    value = json.dumps(body).encode()
    tampered = partner.message(body)
    tampered = PartnerMessage(
        partner_code=CODE,
        value=value + b" ",
        ce_id="ce-t",
        ce_source=CODE,
        signature=tampered.signature,
        message_id="tampered",
    )
    feedbacks = await accept(
        uow,
        partner.message(body, private=stranger_key, kid=stranger_kid),
        partner.message(body, private=other.private, kid=other.kid),
        partner.message(body, private=old_key, kid=old_kid),
        partner.message(body, ce_source="other-corp"),
        PartnerMessage(partner_code=CODE, value=value, signature="abc..def", message_id="m"),
        tampered,
        PartnerMessage(partner_code="nobody", value=value, message_id="n"),
    )
    assert [f.status for f in feedbacks] == ["rejected"] * 7
    fields = [[(r.code, r.field) for r in f.reasons] for f in feedbacks]
    assert fields[:6] == [[("invalid_signature", "ce_signature")]] * 3 + [
        [("invalid_signature", "ce_source")],
        [("invalid_signature", "ce_signature")],
        [("invalid_signature", "ce_signature")],
    ]
    messages = [r.message for f in feedbacks for r in f.reasons]
    assert "not a key of this partner" in messages[0] and "not a key of this partner" in messages[1]
    assert "revoked" in messages[2]
    assert "malformed signature" in messages[4]
    assert "does not match" in messages[5]
    assert fields[6] == [("unknown_partner", None)]
    assert all(f.id is None for f in feedbacks)  # unauthenticated content is not read
    assert uow.signals.rows == {} and events_of(uow) == []
    # With the new key, the same signal passes.
    [ok] = await accept(uow, partner.message(body))
    assert ok.status == "accepted"


async def test_size_type_and_disabled_partner(uow: FakeIntakeUnitOfWork, partner: Partner) -> None:
    huge = a_signal("S-11")
    huge["client"]["Straatnaam"] = "x" * 5000
    feedbacks = await accept(
        uow,
        partner.message(huge),
        partner.message(a_signal("S-12"), ce_type="nl.vroegsignalering.signal.other.v1"),
    )
    assert [reason_codes(f.model_dump()) for f in feedbacks] == [{"too_large"}, {"invalid_schema"}]

    uow.partners.partners[CODE].disabled = True
    [disabled] = await accept(uow, partner.message(a_signal("S-13")))
    assert disabled.status == "rejected" and disabled.id == "S-13"
    assert reason_codes(disabled.model_dump()) == {"partner_disabled"}
    assert uow.signals.rows == {}


async def test_the_http_channel_sends_parsed_items_without_signature(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    directory = await services.load_partner_directory(uow)
    messages = [
        PartnerMessage(partner_code=CODE, value=a_signal("H-1"), require_signature=False),
        PartnerMessage(partner_code=CODE, value={"ID": "H-2"}, require_signature=False),
    ]
    feedbacks = await services.accept_partner_messages(uow, CONFIG, messages, directory)
    assert [(f.id, f.status) for f in feedbacks] == [("H-1", "accepted"), ("H-2", "rejected")]
    assert uow.partners.loads == 1  # the directory the token was checked with
    assert ref_of("H-1") in uow.signals.rows


# --- matching's events ----------------------------------------------------------------------


async def test_creditor_feedback_is_passed_on_for_our_signals_only(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-20")))
    ref = ref_of("S-20")
    picked = Envelope.wrap(
        CreditorFeedbackRequested(signal_ref=ref, status=CreditorStatus.PICKED_UP), key="h"
    )
    unknown = Envelope.wrap(
        CreditorFeedbackRequested(signal_ref="ab" * 32, status=CreditorStatus.NOT_PICKED_UP),
        key="h",
    )
    before = len(uow.published)
    await services.record_matching_events(
        uow,
        [],
        [
            (picked, picked.payload(CreditorFeedbackRequested)),
            (unknown, unknown.payload(CreditorFeedbackRequested)),
        ],
    )
    [told] = uow.published[before:]
    assert isinstance(told, OutgoingMessage)
    assert (told.topic, told.key, told.event_id) == (
        feedback_topic(CODE),
        "S-20",
        f"lifecycle:{picked.id}",
    )
    headers = dict(told.headers)
    assert headers["ce_id"] == f"lifecycle:{picked.id}"
    assert headers["ce_time"] == format_ce_time(picked.time)  # the fact's time, UTC with Z
    body = json.loads(told.value)
    assert body == {
        "ID": "S-20",
        "ce_id": None,
        "status": "picked_up",
        "reasons": [],
        "time": body["time"],
    }
    assert datetime.fromisoformat(body["time"].replace("Z", "+00:00")) == picked.time
    assert uow.signals.lookups == 2  # one for the batch of partner messages, one for these


async def test_a_case_closure_times_the_retention_of_its_signals(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-21")), partner.message(a_signal("S-22")))
    refs = [ref_of("S-21"), ref_of("S-22")]
    closed_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    closed = CaseClosed(
        case_ref="cd" * 16,
        household_ref="ef" * 16,
        gemeentecode="0356",
        team="wil",
        signal_refs=refs,
        resultaat=Eindresultaat.NIET_OPGEPAKT_ANDERE_REDEN,
        closed_at=closed_at,
    )
    before = len(uow.published)
    await services.record_matching_events(uow, [closed], [])
    assert uow.signals.case_closed_at == {refs[0]: closed_at, refs[1]: closed_at}
    assert uow.published[before:] == []  # nothing to tell anyone
    assert uow.commits == 2


# --- personal data --------------------------------------------------------------------------


async def test_a_read_of_personal_data_is_recorded_with_who_and_why(
    uow: FakeIntakeUnitOfWork, partner: Partner
) -> None:
    await accept(uow, partner.message(a_signal("S-30")))
    ref, unknown = ref_of("S-30"), "ab" * 32
    data = await services.read_personal_data(
        uow, [ref, unknown], accessor="matching", purpose="ddas export"
    )
    assert set(data) == {ref}
    assert data[ref]["client"]["Burgerservicenummer"] == "111222333"
    assert uow.personal_data.audit == [
        ("matching", "ddas export", ref),
        ("matching", "ddas export", unknown),
    ]
    for accessor, purpose in (("", "ddas export"), ("matching", "  ")):
        with pytest.raises(ValueError, match="accessor and a purpose"):
            await services.read_personal_data(uow, [ref], accessor=accessor, purpose=purpose)
    assert len(uow.personal_data.audit) == 2
