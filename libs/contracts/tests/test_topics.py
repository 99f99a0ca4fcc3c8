from __future__ import annotations

import pytest

from eropaf_contracts.topics import (
    INTERNAL_TOPICS,
    SIGNALS_TOPIC_RE,
    dlq_topic,
    feedback_topic,
    is_valid_partner_code,
    partner_code_from_topic,
    signals_topic,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("code", ["mitros", "wbv-lopik", "wil", "zilveren-kruis", "a" * 32])
def test_valid_codes(code: str) -> None:
    assert is_valid_partner_code(code)
    assert partner_code_from_topic(signals_topic(code)) == code
    assert feedback_topic(code) == f"arrears.feedback.{code}"


@pytest.mark.parametrize("code", ["m", "Mitros", "wbv_lopik", "a.b", "a" * 33, "wil\n", ""])
def test_invalid_codes(code: str) -> None:
    assert not is_valid_partner_code(code)
    with pytest.raises(ValueError):
        signals_topic(code)


def test_signal_pattern_excludes_other_topics() -> None:
    for topic in [
        "arrears.feedback.mitros",
        dlq_topic("arrears.signals.mitros"),
        "arrears.signals.",
        "xarrears.signals.mitros",
        *INTERNAL_TOPICS,
    ]:
        assert SIGNALS_TOPIC_RE.match(topic) is None
        assert partner_code_from_topic(topic) is None


def test_dlq_naming() -> None:
    assert dlq_topic("eropaf.intake.signals.v1") == "eropaf.intake.signals.v1.dlq"
    with pytest.raises(ValueError):
        dlq_topic("eropaf.intake.signals.v1.dlq")
