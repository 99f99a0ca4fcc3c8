"""What intake subscribes to, as ``app.build`` wires it (no broker, no database needed)."""

from __future__ import annotations

import base64

import pytest
from faststream.kafka.subscriber.usecase import LogicSubscriber

from eropaf_contracts.events import (
    CaseClosed,
    CaseOpened,
    CaseUpdated,
    CreditorFeedbackRequested,
    OutreachDecided,
)
from eropaf_contracts.topics import CASES_TOPIC, CREDITOR_FEEDBACK_TOPIC
from eropaf_intake.app import IntakeSettings, build
from eropaf_intake.handlers import MATCHING_EVENT_TYPES, of_types
from eropaf_platform.consumer import Incoming

pytestmark = pytest.mark.unit


def _settings() -> IntakeSettings:
    return IntakeSettings(
        database_url="postgresql+psycopg://unused/unused",
        pseudonym_key="wiring-test-pseudonym-key-" + "w" * 32,
        master_keys="w1:" + base64.b64encode(b"w" * 32).decode(),
        internal_api_token="wiring-token",
    )


def test_intake_does_not_read_the_cases_topic() -> None:
    service, _ = build(_settings())
    subscribers = service.broker.subscribers
    assert all(isinstance(sub, LogicSubscriber) for sub in subscribers)
    subscribed = {
        name for sub in subscribers if isinstance(sub, LogicSubscriber) for name in sub.topic_names
    }
    assert CASES_TOPIC not in subscribed
    assert CASES_TOPIC not in service.topics
    # Matching's events for intake: one topic, read by one consumer.
    assert CREDITOR_FEEDBACK_TOPIC in subscribed
    assert sorted(service.processors) == ["intake-creditor-feedback", "intake-partner-signals"]


def _record(event_type: str | None) -> Incoming:
    headers = {} if event_type is None else {"ce_type": event_type.encode()}
    return Incoming(CREDITOR_FEEDBACK_TOPIC, 0, 0, None, b"{}", headers, 0)


def test_intake_takes_feedback_requests_and_closures_and_skips_the_rest() -> None:
    wanted = of_types(*MATCHING_EVENT_TYPES)
    assert set(MATCHING_EVENT_TYPES) == {
        CreditorFeedbackRequested.EVENT_TYPE,
        CaseClosed.EVENT_TYPE,
    }
    assert wanted(_record(CreditorFeedbackRequested.EVENT_TYPE))
    assert wanted(_record(CaseClosed.EVENT_TYPE))
    for other in (CaseOpened, CaseUpdated, OutreachDecided):
        assert not wanted(_record(other.EVENT_TYPE))
    assert wanted(_record(None))  # malformed: let it fail as a poison message
