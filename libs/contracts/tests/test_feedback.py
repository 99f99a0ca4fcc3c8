from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from eropaf_contracts.feedback import (
    Feedback,
    FeedbackReason,
    FeedbackStatus,
    ReasonCode,
    feedback_key,
)
from eropaf_contracts.signals import dump_ddas

pytestmark = pytest.mark.unit


def test_key_prefers_signal_id_then_ce_id_then_position() -> None:
    assert feedback_key("VS-1", "ce-1", "arrears.signals.mitros", 0, 7) == "VS-1"
    assert feedback_key(None, "ce-1", "arrears.signals.mitros", 0, 7) == "ce-1"
    assert feedback_key("", "", "arrears.signals.mitros", 2, 7) == "arrears.signals.mitros:2:7"


def test_reason_codes_cover_the_contract() -> None:
    contract = {
        "invalid_json",
        "invalid_schema",
        "missing_signature",
        "invalid_signature",
        "partner_type_mismatch",
        "out_of_region",
        "too_large",
        "conflict",
        "unknown_signal",
    }
    assert contract <= {c.value for c in ReasonCode}
    assert {"partner_disabled", "unknown_partner"} <= {c.value for c in ReasonCode}
    assert {s.value for s in FeedbackStatus} == {
        "accepted",
        "duplicate",
        "rejected",
        "picked_up",
        "not_picked_up",
    }


def test_wire_shape() -> None:
    fb = Feedback(
        id=None,
        ce_id="ce-1",
        status=FeedbackStatus.REJECTED,
        reasons=[FeedbackReason(code=ReasonCode.INVALID_SCHEMA, field="bedrag", message="int")],
        time=datetime(2025, 1, 5, 10, 30, tzinfo=UTC),
    )
    wire = dump_ddas(fb) | {"ID": None}  # dump_ddas drops nulls; the topic keeps them
    assert fb.model_dump(mode="json", by_alias=True) == wire
    assert wire == {
        "ID": None,
        "ce_id": "ce-1",
        "status": "rejected",
        "reasons": [{"code": "invalid_schema", "field": "bedrag", "message": "int"}],
        "time": "2025-01-05T10:30:00Z",
    }
    assert Feedback.model_validate(wire) == fb
    assert Feedback.model_validate_json(fb.model_dump_json(by_alias=True)) == fb


def test_rejection_needs_a_reason_and_time_an_offset() -> None:
    with pytest.raises(ValidationError, match="at least one reason"):
        Feedback.now(FeedbackStatus.REJECTED, signal_id="VS-1", ce_id=None)
    with pytest.raises(ValidationError):
        Feedback.model_validate(
            {"ID": "x", "ce_id": None, "status": "accepted", "time": "2025-01-05T10:30:00"}
        )
    assert Feedback.now(FeedbackStatus.PICKED_UP, signal_id="VS-1", ce_id=None).reasons == []
