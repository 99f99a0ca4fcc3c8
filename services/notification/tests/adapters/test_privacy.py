"""Every template, in both languages, rendered with realistic data: no personal value of the
household whose signal started it appears anywhere in the message, headers included."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, time

import pytest
from pydantic import ValidationError

from eropaf_contracts.events import OutreachKind, StaffRole
from eropaf_notification.adapters.mail import MailIdentity, compose
from eropaf_notification.adapters.rendering import LANGUAGES, Recipient, Renderer
from eropaf_notification.domain import rules
from eropaf_notification.domain.model import Intent, MessageFacts, MessageKind

from ..factories import AMS, cancelled, decided, member, planned, rescheduled, unplanned
from ..mailparse import all_text, parse
from ..privacy import HOUSEHOLD, leaks

pytestmark = pytest.mark.unit


def pseudonym(*values: str) -> str:
    # What intake and matching carry instead of the household (keyed HMAC).
    return hmac.new(b"pipeline-key", "|".join(values).encode(), hashlib.sha256).hexdigest()[:32]


def every_intent() -> list[Intent]:
    case = pseudonym(HOUSEHOLD["bsn"], HOUSEHOLD["geboortedatum"])
    roster = [member("coord", StaffRole.COORDINATOR), member("shv1")]
    first = planned(day=date(2026, 11, 10), duo=("ann", "bob"))
    first = first.model_copy(update={"case_ref": case})
    moved = rescheduled(first, day=date(2026, 11, 12), duo=("ann", "cas"))
    opened = decided(outreach=OutreachKind.PHONE).model_copy(update={"case_ref": case})
    intents = [
        *rules.visit_planned(first),
        *rules.visit_rescheduled(moved),
        *rules.visit_cancelled(cancelled(moved)),
        *rules.case_opened(opened, roster),
        *rules.case_unplanned(unplanned().model_copy(update={"case_ref": case}), roster),
        *rules.reminders([rules.visit_of(first)], datetime(2026, 11, 9, 9, tzinfo=AMS), time(8)),
    ]
    held = [i for i in intents if i.kind is MessageKind.CASE_OPENED]
    daily = member("ann", bericht="dagelijks")
    past = rules.visit_of(
        planned("old", day=date(2026, 11, 2)).model_copy(update={"case_ref": case})
    )
    digest = rules.digest(daily, date(2026, 11, 9), held, [rules.visit_of(first), past])
    assert digest is not None
    intents.append(digest)
    assert {i.kind for i in intents} == set(MessageKind)
    return intents


@pytest.mark.parametrize("taal", LANGUAGES)
def test_no_personal_value_in_any_message(taal: str) -> None:
    renderer = Renderer({"0356": "Nieuwegein"})
    identity = MailIdentity("noreply@eropaf.test", "planning@eropaf.test", "eropaf.test")
    for intent in every_intent():
        people = [
            Recipient(c, f"Collega {c}", f"{c}@staff.example.org", taal)
            for c in ("ann", "bob", "cas", "coord", "shv1")
        ]
        by_code = {p.code: p for p in people}
        message = compose(
            kind=intent.kind,
            facts=intent.facts,
            recipient=by_code[intent.recipient],
            attendees=[by_code[c] for c in intent.facts.attendees],
            notification_id=intent.notification_id,
            identity=identity,
            renderer=renderer,
            now=datetime(2026, 11, 9, 7, tzinfo=UTC),
        )
        text = all_text(parse(message))
        assert (
            intent.facts.case_ref is None
            or intent.facts.case_ref in text
            or intent.kind is MessageKind.DIGEST
        )
        assert leaks(text) == [], (intent.kind, leaks(text))


def test_the_scan_finds_a_leak() -> None:
    # The scan itself must be able to fail.
    assert leaks(f"Bezoek aan {HOUSEHOLD['straat']} {HOUSEHOLD['huisnummer']}") == [
        "straat",
        "huisnummer",
    ]
    assert leaks("bel 0628734519") == ["telefoon"]
    assert leaks("Boundary===1371 ref a137f") == []


@pytest.mark.parametrize(
    "field", ["naam", "bsn", "straat", "huisnummer", "bedrag", "email", "telefoon"]
)
def test_message_facts_cannot_carry_household_fields(field: str) -> None:
    with pytest.raises(ValidationError):
        MessageFacts.model_validate({"case_ref": "ab" * 16, field: HOUSEHOLD.get(field, "x")})
