"""Kafka topic names: partner topics (CONTRACT §2), dead-letter topics, internal topics."""

from __future__ import annotations

import re

__all__ = [
    "CASES_TOPIC",
    "CREDITOR_FEEDBACK_TOPIC",
    "FEEDBACK_PREFIX",
    "INTAKE_SIGNALS_TOPIC",
    "INTERNAL_TOPICS",
    "NOTIFICATION_DELIVERIES_TOPIC",
    "PARTNER_CODE_PATTERN",
    "SIGNALS_PREFIX",
    "SIGNALS_TOPIC_PATTERN",
    "SIGNALS_TOPIC_RE",
    "STAFF_TOPIC",
    "VISITS_TOPIC",
    "dlq_topic",
    "feedback_topic",
    "is_valid_partner_code",
    "partner_code_from_topic",
    "signals_topic",
    "validate_partner_code",
]

PARTNER_CODE_PATTERN = r"[a-z0-9-]{2,32}"
_PARTNER_CODE_RE = re.compile(PARTNER_CODE_PATTERN)

SIGNALS_PREFIX = "arrears.signals."
FEEDBACK_PREFIX = "arrears.feedback."
# Anchored and without "." in the code part, so "<topic>.dlq" never matches as a signals topic.
SIGNALS_TOPIC_PATTERN = rf"^arrears\.signals\.({PARTNER_CODE_PATTERN})$"
SIGNALS_TOPIC_RE = re.compile(SIGNALS_TOPIC_PATTERN)

DLQ_SUFFIX = ".dlq"

# Internal topics: pseudonymous only. The ".v1" is the topic's contract generation.
INTAKE_SIGNALS_TOPIC = "eropaf.intake.signals.v1"  # intake -> matching: signal events
CASES_TOPIC = "eropaf.matching.cases.v1"  # matching -> scheduling/notification: case events
# matching -> intake: lifecycle feedback and case closures (CaseClosed is also on CASES_TOPIC;
# this copy spares intake reading every other case event).
CREDITOR_FEEDBACK_TOPIC = "eropaf.matching.feedback.v1"
VISITS_TOPIC = "eropaf.scheduling.visits.v1"  # scheduling -> notification/matching, by case
STAFF_TOPIC = "eropaf.scheduling.staff.v1"  # scheduling -> notification: roster, by staff code
NOTIFICATION_DELIVERIES_TOPIC = "eropaf.notification.deliveries.v1"  # delivery status
INTERNAL_TOPICS = (
    INTAKE_SIGNALS_TOPIC,
    CASES_TOPIC,
    CREDITOR_FEEDBACK_TOPIC,
    VISITS_TOPIC,
    STAFF_TOPIC,
    NOTIFICATION_DELIVERIES_TOPIC,
)


def is_valid_partner_code(code: str) -> bool:
    return _PARTNER_CODE_RE.fullmatch(code) is not None


def validate_partner_code(code: str) -> str:
    """Return ``code`` when valid; raise ValueError otherwise (it becomes part of topic names)."""
    if not is_valid_partner_code(code):
        raise ValueError(f"invalid partner code {code!r}: must match {PARTNER_CODE_PATTERN}")
    return code


def signals_topic(code: str) -> str:
    return SIGNALS_PREFIX + validate_partner_code(code)


def feedback_topic(code: str) -> str:
    return FEEDBACK_PREFIX + validate_partner_code(code)


def partner_code_from_topic(topic: str) -> str | None:
    """The partner code of a signals topic, or None if ``topic`` is not one."""
    match = SIGNALS_TOPIC_RE.fullmatch(topic)
    return match.group(1) if match else None


def dlq_topic(topic: str) -> str:
    """Dead-letter topic of ``topic``."""
    if topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{topic!r} is already a dead-letter topic")
    return topic + DLQ_SUFFIX
