"""Matching's Kafka channels, declared once: the AsyncAPI document is generated from this."""

from __future__ import annotations

from eropaf_contracts.events import (
    CaseClosed,
    CaseOpened,
    CaseUpdated,
    CreditorFeedbackRequested,
    OutreachDecided,
    SignalAccepted,
    SignalResolved,
    SignalUpdated,
)
from eropaf_contracts.topics import (
    CASES_TOPIC,
    CREDITOR_FEEDBACK_TOPIC,
    INTAKE_SIGNALS_TOPIC,
    VISITS_TOPIC,
)
from eropaf_matching.scheduling_events import (
    CaseOutcomeRecorded,
    ContactAttemptRecorded,
    OutreachPlanned,
)
from eropaf_platform.asyncapi import Channel, Message

CHANNELS = [
    Channel(
        address=INTAKE_SIGNALS_TOPIC,
        action="receive",
        key="signal_ref",
        description="Pseudonymous signal events from intake, with keyed match tokens.",
        messages=(
            Message("SignalAccepted", SignalAccepted, "A new signal was accepted"),
            Message("SignalUpdated", SignalUpdated, "A later version of an accepted signal"),
            Message("SignalResolved", SignalResolved, "The partner reported the arrears cleared"),
        ),
    ),
    Channel(
        address=CASES_TOPIC,
        action="send",
        key="household_ref (one household's events stay in order)",
        description="Case lifecycle and outreach decisions, for scheduling and notification.",
        messages=(
            Message("CaseOpened", CaseOpened, "A household got a case"),
            Message("CaseUpdated", CaseUpdated, "A signal joined, amounts or routing changed"),
            Message("OutreachDecided", OutreachDecided, "Who goes, how, by when, and why"),
            Message("CaseClosed", CaseClosed, "The case closed with a DDAS end result"),
        ),
    ),
    Channel(
        address=CREDITOR_FEEDBACK_TOPIC,
        action="send",
        key="household_ref (one household's events stay in order)",
        description=(
            "For intake: what a creditor may be told by law (its signal was picked up or not), "
            "and each case closure (the same CaseClosed as on the cases topic, under its own "
            "id), from which intake times the retention of personal data."
        ),
        messages=(
            Message("CreditorFeedbackRequested", CreditorFeedbackRequested, "Picked up or not"),
            Message("CaseClosed", CaseClosed, "The case closed with a DDAS end result"),
        ),
    ),
    Channel(
        address=VISITS_TOPIC,
        action="receive",
        key="case_ref",
        description="Contact attempts and outcomes reported by scheduling (provisional payloads).",
        messages=(
            Message("OutreachPlanned", OutreachPlanned, "A visit or call was planned"),
            Message("ContactAttemptRecorded", ContactAttemptRecorded, "A contact attempt"),
            Message("CaseOutcomeRecorded", CaseOutcomeRecorded, "The outcome of the contact"),
        ),
    ),
]
